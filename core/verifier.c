/*
 * The token verifier: an immutable configuration and the fixed verification
 * order documented in include/agentid/verify.h.
 *
 * Every check reads only the verifier, the trust it is given and the token
 * being verified, so one verifier serves any number of threads without
 * locks.  Rejection details name claims and configured values, never the
 * content of the token: they end up in HTTP error descriptions and PAM
 * messages an attacker can read.
 */
#include "config.h"

#include <string.h>

#include <agentid/verify.h>

#include "internal.h"
#include "verify_int.h"

#define LEEWAY_MAX 86400 /* one day; more is a misconfiguration, not clock skew */

/* ---- profiles ---- */

AGENTID_EXPORT int
agentid_profile_from_name(const char *name, enum agentid_profile *out)
{
	if (name == NULL || out == NULL)
		return AGENTID_EINVAL;
	if (strcmp(name, "jwt-svid") == 0)
		*out = AGENTID_PROFILE_JWT_SVID;
	else if (strcmp(name, "access") == 0)
		*out = AGENTID_PROFILE_ACCESS;
	else if (strcmp(name, "any") == 0)
		*out = AGENTID_PROFILE_ANY;
	else
		return AGENTID_EINVAL;
	return 0;
}

AGENTID_EXPORT const char *
agentid_profile_name(enum agentid_profile p)
{
	switch (p) {
	case AGENTID_PROFILE_ANY:
		return "any";
	case AGENTID_PROFILE_JWT_SVID:
		return "jwt-svid";
	case AGENTID_PROFILE_ACCESS:
		return "access";
	}
	return "unknown";
}

static unsigned
profile_algs(enum agentid_profile p)
{
	/* JWT-SVID.md allows RS*, ES* and PS* only; RFC 9068 leaves the choice to us. */
	return p == AGENTID_PROFILE_JWT_SVID ? AGENTID_ALGS_JWT_SVID : AGENTID_ALGS_ALL;
}

/* ---- configuration ---- */

AGENTID_EXPORT void
agentid_verifier_config_init(struct agentid_verifier_config *cfg)
{
	if (cfg == NULL)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->profile = AGENTID_PROFILE_ANY;
	cfg->algs = 0;
	cfg->leeway = AGENTID_DEFAULT_LEEWAY;
	agentid_limits_init(&cfg->limits);
	cfg->max_chain_depth = AGENTID_DEFAULT_MAX_CHAIN_DEPTH;
	cfg->chain_require_spiffe = 1;
	cfg->chain_require_trusted = 0;
}

static int
cfg_fail(struct agentid_error *err, const char *what)
{
	agentid_error_set(err, AGENTID_R_MALFORMED, "verifier configuration: %s", what);
	return AGENTID_EINVAL;
}

static void
strv_free(struct agentid_strv *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		agentid_free(s->v[i]);
	agentid_free(s->v);
	agentid_free(s->len);
	s->v = NULL;
	s->len = NULL;
	s->n = 0;
}

/* Copies n non-empty strings; what names the list in the error detail. */
static int
strv_copy(struct agentid_strv *dst, const char *const *src, size_t n, const char *what,
    struct agentid_error *err)
{
	size_t i;

	if (n == 0)
		return 0;
	if (src == NULL) {
		agentid_error_set(
		    err, AGENTID_R_MALFORMED, "verifier configuration: %s list is NULL", what);
		return AGENTID_EINVAL;
	}
	for (i = 0; i < n; i++) {
		if (src[i] == NULL || src[i][0] == '\0') {
			agentid_error_set(err, AGENTID_R_MALFORMED,
			    "verifier configuration: %s entry %zu is empty", what, i);
			return AGENTID_EINVAL;
		}
	}
	if ((dst->v = agentid_calloc(n, sizeof(*dst->v))) == NULL
	    || (dst->len = agentid_calloc(n, sizeof(*dst->len))) == NULL)
		return AGENTID_ENOMEM;
	for (i = 0; i < n; i++) {
		dst->len[i] = strlen(src[i]);
		if ((dst->v[i] = agentid_strndup(src[i], dst->len[i])) == NULL)
			return AGENTID_ENOMEM;
		dst->n = i + 1;
	}
	return 0;
}

static int
compile_patterns(
    const struct agentid_strv *s, struct agentid_spiffe_patterns **out, struct agentid_error *err)
{
	int r;

	if (s->n == 0)
		return 0;
	r = agentid_spiffe_patterns_parse((const char *const *)s->v, s->n, out, err);
	return r == AGENTID_EREJECTED ? AGENTID_EINVAL : r;
}

/*
 * Subjects of access tokens need not be SPIFFE IDs (a user of an external
 * IdP), so an allow_subjects entry that does not look like a SPIFFE pattern
 * is kept as a literal.  One that looks like a pattern must be a valid one:
 * a typo there would otherwise turn into a literal that silently never
 * matches.
 */
static int
compile_subjects(struct agentid_verifier *v, struct agentid_error *err)
{
	const char **pats;
	size_t i, n = 0;
	int r;

	if (v->subjects.n == 0)
		return 0;
	if ((pats = agentid_calloc(v->subjects.n, sizeof(*pats))) == NULL)
		return AGENTID_ENOMEM;
	for (i = 0; i < v->subjects.n; i++) {
		if (strcmp(v->subjects.v[i], "*") == 0)
			v->subjects_any = 1;
		if (strcmp(v->subjects.v[i], "*") == 0
		    || strncmp(v->subjects.v[i], "spiffe:", 7) == 0)
			pats[n++] = v->subjects.v[i];
	}
	r = 0;
	if (n != 0) {
		r = agentid_spiffe_patterns_parse(pats, n, &v->allow_subjects, err);
		if (r == AGENTID_EREJECTED)
			r = AGENTID_EINVAL;
	}
	agentid_free(pats);
	return r;
}

AGENTID_EXPORT void
agentid_verifier_free(struct agentid_verifier *v)
{
	if (v == NULL)
		return;
	agentid_trust_free(v->trust);
	strv_free(&v->issuers);
	strv_free(&v->audiences);
	strv_free(&v->required_scopes);
	strv_free(&v->subjects);
	strv_free(&v->required_claims);
	strv_free(&v->claim_names);
	strv_free(&v->claim_values);
	agentid_spiffe_patterns_free(v->allow_actors);
	agentid_spiffe_patterns_free(v->allow_agents);
	agentid_spiffe_patterns_free(v->allow_subjects);
	agentid_free(v);
}

AGENTID_EXPORT int
agentid_verifier_new(const struct agentid_verifier_config *cfg, struct agentid_verifier **out,
    struct agentid_error *err)
{
	struct agentid_verifier *v = NULL;
	struct agentid_strv tmp = { NULL, NULL, 0 };
	unsigned allowed;
	size_t i;
	int r;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	agentid_error_clear(err);
	if (cfg == NULL)
		return cfg_fail(err, "no configuration");
	if (cfg->profile != AGENTID_PROFILE_ANY && cfg->profile != AGENTID_PROFILE_JWT_SVID
	    && cfg->profile != AGENTID_PROFILE_ACCESS)
		return cfg_fail(err, "unknown profile");
	if (cfg->trust == NULL)
		return cfg_fail(err, "trust is required");
	if (cfg->n_audiences == 0)
		return cfg_fail(err, "at least one audience is required");
	if (cfg->profile == AGENTID_PROFILE_ACCESS && cfg->n_issuers == 0)
		return cfg_fail(err, "the access profile requires at least one issuer");
	allowed = profile_algs(cfg->profile);
	if (cfg->algs != 0 && (cfg->algs & ~allowed) != 0)
		return cfg_fail(err, "an algorithm is not allowed for the profile");
	if (cfg->leeway < 0 || cfg->leeway > LEEWAY_MAX)
		return cfg_fail(err, "leeway must be between 0 and 86400 seconds");
	if (cfg->limits.max_token_len == 0 || cfg->limits.max_json_depth < 1)
		return cfg_fail(err, "limits must be positive");
	if (cfg->max_chain_depth < 0)
		return cfg_fail(err, "max_chain_depth must not be negative");
	if (cfg->n_claim_values != 0 && (cfg->claim_names == NULL || cfg->claim_values == NULL))
		return cfg_fail(err, "claim_names and claim_values must both be set");
	for (i = 0; i < cfg->n_required_scopes; i++) {
		if (cfg->required_scopes == NULL || cfg->required_scopes[i] == NULL)
			return cfg_fail(err, "required scope is NULL");
	}
	if (cfg->n_required_scopes != 0) {
		/* Each required scope must be one valid scope token. */
		struct agentid_scopes *probe = NULL;

		if ((r = agentid_scopes_new(&probe)) != 0)
			return r;
		for (i = 0; i < cfg->n_required_scopes; i++) {
			r = agentid_scopes_add(
			    probe, cfg->required_scopes[i], strlen(cfg->required_scopes[i]));
			if (r != 0)
				break;
		}
		agentid_scopes_free(probe);
		if (r == AGENTID_ENOMEM)
			return r;
		if (r != 0)
			return cfg_fail(err, "a required scope is not a valid scope token");
	}

	if ((v = agentid_calloc(1, sizeof(*v))) == NULL)
		return AGENTID_ENOMEM;
	v->profile = cfg->profile;
	v->algs = cfg->algs != 0 ? cfg->algs : allowed;
	v->leeway = cfg->leeway;
	v->limits = cfg->limits;
	v->scope_any = cfg->scope_any != 0;
	v->max_chain_depth = cfg->max_chain_depth;
	v->chain_require_spiffe = cfg->chain_require_spiffe != 0;
	v->chain_require_trusted = cfg->chain_require_trusted != 0;
	if ((r = strv_copy(&v->issuers, cfg->issuers, cfg->n_issuers, "issuers", err)) != 0
	    || (r = strv_copy(&v->audiences, cfg->audiences, cfg->n_audiences, "audiences", err))
	        != 0
	    || (r = strv_copy(&v->required_scopes, cfg->required_scopes, cfg->n_required_scopes,
	            "required_scopes", err))
	        != 0
	    || (r = strv_copy(&v->subjects, cfg->allow_subjects, cfg->n_allow_subjects,
	            "allow_subjects", err))
	        != 0
	    || (r = strv_copy(&v->required_claims, cfg->required_claims, cfg->n_required_claims,
	            "required_claims", err))
	        != 0
	    || (r = strv_copy(
	            &v->claim_names, cfg->claim_names, cfg->n_claim_values, "claim_names", err))
	        != 0
	    || (r = strv_copy(
	            &v->claim_values, cfg->claim_values, cfg->n_claim_values, "claim_values", err))
	        != 0)
		goto out;
	if ((r = strv_copy(&tmp, cfg->allow_actors, cfg->n_allow_actors, "allow_actors", err)) != 0
	    || (r = compile_patterns(&tmp, &v->allow_actors, err)) != 0)
		goto out;
	strv_free(&tmp);
	if ((r = strv_copy(&tmp, cfg->allow_agents, cfg->n_allow_agents, "allow_agents", err)) != 0
	    || (r = compile_patterns(&tmp, &v->allow_agents, err)) != 0)
		goto out;
	if ((r = compile_subjects(v, err)) != 0)
		goto out;
	v->trust = agentid_trust_ref(cfg->trust);
	*out = v;
	v = NULL;
	r = 0;
out:
	strv_free(&tmp);
	agentid_verifier_free(v);
	return r;
}

/* Copies at most 64 printable ASCII characters of s into buf for a DEBUG log line. */
static const char *
log_safe(const char *s, char *buf, size_t bufsz)
{
	size_t i;

	if (s == NULL)
		return "-";
	for (i = 0; s[i] != '\0' && i + 1 < bufsz && i < 64; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

static int
check_header(struct agentid_vctx *c, struct agentid_error *err)
{
	static const char *const forbidden[] = { "jwk", "jku", "x5u", "x5c" };
	const struct agentid_verifier *v = c->v;
	const json_t *hdr = c->jws->header;
	unsigned algs;
	size_t i;

	/* The profile decides which algorithms apply, so it comes from the header first. */
	if (v->profile == AGENTID_PROFILE_ANY)
		c->profile = agentid_typ_is_access(c->jws->typ) ? AGENTID_PROFILE_ACCESS
		                                                : AGENTID_PROFILE_JWT_SVID;
	else
		c->profile = v->profile;
	algs = v->algs & profile_algs(c->profile);
	if ((unsigned)c->jws->alg >= AGENTID_ALG__COUNT
	    || (algs & AGENTID_ALG_BIT(c->jws->alg)) == 0)
		return agentid_error_set(err, AGENTID_R_ALG_NOT_ALLOWED,
		    "algorithm %s is not allowed for %s tokens",
		    agentid_alg_name(c->jws->alg) != NULL ? agentid_alg_name(c->jws->alg) : "?",
		    agentid_profile_name(c->profile));
	/*
	 * Keys named by the token itself would let the signer choose its own
	 * trust anchor.  The parser leaves them to us because DPoP proofs do
	 * carry a jwk.
	 */
	for (i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
		if (json_object_get(hdr, forbidden[i]) != NULL)
			return agentid_error_set(err, AGENTID_R_HEADER_NOT_ALLOWED,
			    "header parameter %s is not allowed", forbidden[i]);
	/* The parser rejects crit already; checked again because accepting it would be fatal. */
	if (json_object_get(hdr, "crit") != NULL)
		return agentid_error_set(err, AGENTID_R_CRIT_UNSUPPORTED,
		    "critical header extensions are not supported");
	if (c->jws->kid == NULL)
		return agentid_error_set(err, AGENTID_R_UNKNOWN_KID, "token has no kid");
	return 0;
}

static int
find_key(struct agentid_vctx *c, struct agentid_error *err)
{
	const char *kid = c->jws->kid;
	size_t kid_len = strlen(kid);
	int r;

	if (c->profile == AGENTID_PROFILE_JWT_SVID) {
		/*
		 * An unverified look at sub, used only to choose the trust
		 * domain whose bundle holds the key: a JWT-SVID is only ever
		 * verified with keys of its own trust domain.
		 */
		if ((r = agentid_claim_string(c->claims, "sub", &c->sub, &c->sub_len, err)) != 0)
			return r;
		if (c->sub == NULL)
			return agentid_error_set(err, AGENTID_R_MISSING_CLAIM, "sub is missing");
		if (agentid_spiffe_id_parse(c->sub, c->sub_len, &c->sub_id, NULL) != 0)
			return agentid_error_set(
			    err, AGENTID_R_BAD_SPIFFE_ID, "sub is not a SPIFFE ID");
		c->sub_is_spiffe = 1;
		if (agentid_trust_find(c->trust, c->sub_id.td, c->sub_id.td_len) == NULL)
			return agentid_error_set(err, AGENTID_R_UNTRUSTED_DOMAIN,
			    "the trust domain of sub is not trusted");
		c->key = agentid_trust_find_jwt_key(
		    c->trust, c->sub_id.td, c->sub_id.td_len, kid, kid_len);
	} else
		c->key = agentid_trust_find_jwt_key(c->trust, NULL, 0, kid, kid_len);
	if (c->key == NULL)
		return agentid_error_set(
		    err, AGENTID_R_UNKNOWN_KID, "no trusted key has the token's kid");
	if (!agentid_key_supports_alg(c->key, c->jws->alg))
		return agentid_error_set(err, AGENTID_R_KEY_MISMATCH,
		    "the key with the token's kid cannot verify %s", agentid_alg_name(c->jws->alg));
	return 0;
}

static int
check_profile(struct agentid_vctx *c, struct agentid_error *err)
{
	struct agentid_chain_rules rules;

	if (c->profile == AGENTID_PROFILE_JWT_SVID) {
		/* Established during key lookup; restated so the rule stands on its own. */
		if (!c->sub_is_spiffe)
			return agentid_error_set(
			    err, AGENTID_R_BAD_SPIFFE_ID, "sub is not a SPIFFE ID");
		if (agentid_trust_find(c->trust, c->sub_id.td, c->sub_id.td_len) == NULL)
			return agentid_error_set(err, AGENTID_R_UNTRUSTED_DOMAIN,
			    "the trust domain of sub is not trusted");
	} else if (!c->sub_is_spiffe
	    && agentid_spiffe_id_parse(c->sub, c->sub_len, &c->sub_id, NULL) == 0)
		c->sub_is_spiffe = 1;
	memset(&rules, 0, sizeof(rules));
	rules.max_depth = c->v->max_chain_depth;
	rules.require_spiffe = c->v->chain_require_spiffe;
	rules.trust = c->v->chain_require_trusted ? c->trust : NULL;
	rules.allow_actors = c->v->allow_actors;
	return agentid_chain_parse(c->claims, &rules, &c->chain, err);
}

/*
 * The trust domain of the acting agent.  Every ID involved was parsed by
 * an earlier step (sub by check_profile, the hops by the chain rules), so
 * it is looked up rather than parsed again where that step kept it.
 */
static int
agent_trust_domain(const struct agentid_vctx *c, const char *agent, const char **td, size_t *td_len)
{
	struct agentid_spiffe_id id;
	int known;

	if (agentid_chain_len(c->chain) == 0) {
		*td = c->sub_is_spiffe ? c->sub_id.td : NULL;
		*td_len = c->sub_is_spiffe ? c->sub_id.td_len : 0;
		return *td != NULL;
	}
	if ((known = agentid_chain_hop_td(c->chain, 0, td, td_len)) >= 0)
		return known;
	if (agentid_spiffe_id_parse(agent, strlen(agent), &id, NULL) != 0)
		return 0;
	*td = id.td;
	*td_len = id.td_len;
	return 1;
}

static int
subject_allowed(const struct agentid_verifier *v, const struct agentid_vctx *c)
{
	if (c->sub_is_spiffe)
		return v->allow_subjects != NULL
		    && agentid_spiffe_patterns_match(v->allow_subjects, c->sub, c->sub_len);
	/* Patterns describe SPIFFE IDs; other subjects match "*" or an exact entry. */
	return v->subjects_any || agentid_strv_find(&v->subjects, c->sub, c->sub_len);
}

static int
check_policy(struct agentid_vctx *c, struct agentid_error *err)
{
	const struct agentid_verifier *v = c->v;
	const char *agent = c->sub, *td;
	size_t agent_len = c->sub_len, td_len;

	if (agentid_chain_len(c->chain) != 0) {
		agent = agentid_chain_get(c->chain, 0);
		agent_len = strlen(agent);
	}
	if (v->allow_agents != NULL
	    && (!agent_trust_domain(c, agent, &td, &td_len)
	        || !agentid_spiffe_patterns_match(v->allow_agents, agent, agent_len)))
		return agentid_error_set(
		    err, AGENTID_R_AGENT_NOT_ALLOWED, "the acting agent is not allowed");
	if (v->subjects.n != 0 && !subject_allowed(v, c))
		return agentid_error_set(
		    err, AGENTID_R_SUBJECT_NOT_ALLOWED, "the subject is not allowed");
	return 0;
}

/* The reasons for which agentid_verify_ex hands out the refused token. */
static int
refused_reason(enum agentid_reason reason)
{
	return reason == AGENTID_R_AGENT_NOT_ALLOWED || reason == AGENTID_R_SUBJECT_NOT_ALLOWED
	    || reason == AGENTID_R_INSUFFICIENT_SCOPE || reason == AGENTID_R_CLAIM_MISMATCH;
}

/*
 * A token refused before its scopes were looked at (check_policy) gets them
 * now, so that a refused token, like a verified one, always has a scope set.
 */
static int
refused_scopes(struct agentid_vctx *c)
{
	struct agentid_error e;

	if (c->scopes != NULL || agentid_claims_parse_scopes(c, &e) == 0)
		return 0;
	return agentid_scopes_new(&c->scopes);
}

static int
make_token(struct agentid_vctx *c, struct agentid_token **out)
{
	struct agentid_token *t;
	const char *td;
	size_t td_len;

	if ((t = agentid_calloc(1, sizeof(*t))) == NULL)
		return AGENTID_ENOMEM;
	t->profile = c->profile;
	t->iss = c->iss;
	t->sub = c->sub;
	t->jti = c->jti;
	t->client_id = c->client_id;
	t->task = json_string_value(json_object_get(c->claims, "task"));
	t->agent = agentid_chain_len(c->chain) != 0 ? agentid_chain_get(c->chain, 0) : c->sub;
	t->exp = c->exp;
	t->iat = c->iat;
	t->nbf = c->nbf;
	if (agent_trust_domain(c, t->agent, &td, &td_len)
	    && (t->trust_domain = agentid_strndup(td, td_len)) == NULL) {
		agentid_free(t);
		return AGENTID_ENOMEM;
	}
	/* The key is reference counted; taking a reference does not change it otherwise. */
	t->key = agentid_key_ref((struct agentid_key *)c->key);
	t->jws = c->jws;
	c->jws = NULL;
	t->chain = c->chain;
	c->chain = NULL;
	t->scopes = c->scopes;
	c->scopes = NULL;
	*out = t;
	return 0;
}

AGENTID_EXPORT int
agentid_verify_ex(const struct agentid_verifier *v, const struct agentid_trust *trust,
    const char *token, size_t len, time_t now, struct agentid_token **out,
    struct agentid_token **refused, struct agentid_error *err)
{
	struct agentid_token *t = NULL;
	struct agentid_error local;
	struct agentid_vctx c;
	char b1[80], b2[80], b3[80];
	int r;

	if (out != NULL)
		*out = NULL;
	if (refused != NULL)
		*refused = NULL;
	if (err == NULL)
		err = &local; /* the reason decides whether a refused token is returned */
	agentid_error_clear(err);
	if (v == NULL || token == NULL) {
		agentid_error_set(err, AGENTID_R_INTERNAL, "no verifier or no token");
		return AGENTID_EINVAL;
	}
	memset(&c, 0, sizeof(c));
	c.v = v;
	c.trust = trust != NULL ? trust : v->trust;
	c.now = (int64_t)now;
	c.iat = c.nbf = c.exp = -1;

	if (len > v->limits.max_token_len) {
		r = agentid_error_set(err, AGENTID_R_TOO_LARGE, "token of %zu bytes exceeds %zu",
		    len, v->limits.max_token_len);
		goto out;
	}
	if ((r = agentid_jws_parse(token, len, &v->limits, &c.jws, err)) != 0)
		goto out;
	c.claims = c.jws->payload;
	if ((r = check_header(&c, err)) != 0 || (r = find_key(&c, err)) != 0)
		goto out;
	if ((r = agentid_jws_verify(c.jws, c.key, err)) != 0)
		goto out;
	if ((r = agentid_claims_check_time(&c, err)) != 0
	    || (r = agentid_claims_check_iss(&c, err)) != 0
	    || (r = agentid_claims_check_aud(&c, err)) != 0
	    || (r = agentid_claims_check_typ(&c, err)) != 0
	    || (r = agentid_claims_check_required(&c, err)) != 0
	    || (r = check_profile(&c, err)) != 0)
		goto out;
	/*
	 * The token is authentic and in force; what follows are the rules of
	 * authorization.  A caller that asks gets the token it refuses, to say
	 * who was refused (an audit record); it is still a rejection.
	 */
	if ((r = check_policy(&c, err)) != 0 || (r = agentid_claims_check_scopes(&c, err)) != 0
	    || (r = agentid_claims_check_values(&c, err)) != 0) {
		if (refused != NULL && r == AGENTID_EREJECTED && refused_reason(err->reason)
		    && refused_scopes(&c) == 0 && make_token(&c, &t) == 0) {
			*refused = t;
			t = NULL;
		}
		goto out;
	}
	if (out != NULL && (r = make_token(&c, &t)) != 0)
		goto out;
	/* The arguments cost more than the check: prepared only for a sink that wants them. */
	if (agentid_log_enabled(AGENTID_LOG_DEBUG))
		agentid_log(AGENTID_LOG_DEBUG, "token verified: kid=%s iss=%s sub=%s",
		    log_safe(c.jws != NULL ? c.jws->kid : t->jws->kid, b1, sizeof(b1)),
		    log_safe(c.iss, b2, sizeof(b2)), log_safe(c.sub, b3, sizeof(b3)));
	if (out != NULL) {
		*out = t;
		t = NULL;
	}
	r = 0;
out:
	if (r != 0 && r != AGENTID_EREJECTED)
		agentid_error_set(err, AGENTID_R_INTERNAL, "%s", agentid_strerror(r));
	if (r != 0 && agentid_log_enabled(AGENTID_LOG_DEBUG))
		agentid_log(AGENTID_LOG_DEBUG, "token rejected: %s (%s) kid=%s jti=%s",
		    err != NULL ? agentid_reason_code(err->reason) : "?",
		    err != NULL ? err->detail : "",
		    log_safe(c.jws != NULL ? c.jws->kid : NULL, b1, sizeof(b1)),
		    log_safe(c.jti, b2, sizeof(b2)));
	agentid_token_free(t);
	agentid_jws_free(c.jws);
	agentid_chain_free(c.chain);
	agentid_scopes_free(c.scopes);
	return r;
}

AGENTID_EXPORT int
agentid_verify_with_trust(const struct agentid_verifier *v, const struct agentid_trust *trust,
    const char *token, size_t len, time_t now, struct agentid_token **out,
    struct agentid_error *err)
{
	return agentid_verify_ex(v, trust, token, len, now, out, NULL, err);
}

AGENTID_EXPORT int
agentid_verify(const struct agentid_verifier *v, const char *token, size_t len, time_t now,
    struct agentid_token **out, struct agentid_error *err)
{
	return agentid_verify_ex(v, NULL, token, len, now, out, NULL, err);
}
