/*
 * POST /token: RFC 8693 token exchange.
 *
 * Order of checks (first failure answers):
 *   form -> grant_type -> client authentication -> parameters -> subject
 *   token (by type) -> actor token -> who may act (client, holder, policy,
 *   may_act, delegate_to) -> chain (cycle, depth) -> scope -> audience ->
 *   task -> binding (subject token's cnf, then DPoP / mTLS for the new
 *   token) -> lifetime -> mint, record in the ledger, audit.
 *
 * Error codes (RFC 6749 section 5.2, RFC 8693 section 2.2.2):
 *   invalid_request      malformed or missing parameters, unsupported token types
 *   invalid_client       no or failed client authentication (401)
 *   invalid_grant        subject/actor token invalid, expired, revoked, wrongly
 *                        bound, unknown; delegation chain would repeat an agent or
 *                        exceed the maximum depth; may_act not satisfied
 *   unauthorized_client  policy does not let this client or actor do this
 *   invalid_scope        requested scope not within parent and policy
 *   invalid_target       requested audience/resource not within parent and policy
 *   unsupported_grant_type
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "exchange.h"

#define TASK_ID_MAX 128
#define TASK_DESC_MAX 256

/* What the subject token says, whatever its type. */
struct subject {
	json_t *claims; /* verified claims (own reference) */
	const char *principal; /* sub */
	const char *ext_issuer; /* external IdP issuer, for user subjects */
	const char *holder; /* who may present it: current actor, or the agent itself */
	struct agentid_chain *chain; /* act chain (access tokens) */
	struct agentid_scopes *scopes; /* parent scopes (NULL = unbounded) */
	json_t *aud; /* parent audiences (NULL = unbounded) */
	const char *parent_jti;
	char *root_jti;
	const char *task;
	const char *task_description;
	int64_t exp;
	struct agentid_token *svid; /* when a JWT-SVID */
	struct xc_ledger_entry led; /* when one of our access tokens */
};

struct client_ctx {
	struct xc_client client;
	struct agentid_token *assertion;
};

static void
subject_clear(struct subject *s)
{
	json_decref(s->claims);
	json_decref(s->aud);
	agentid_chain_free(s->chain);
	agentid_scopes_free(s->scopes);
	agentid_token_free(s->svid);
	free(s->root_jti);
	xc_ledger_entry_clear(&s->led);
	memset(s, 0, sizeof(*s));
}

static const char *
err_text(const struct agentid_error *e)
{
	return e->detail[0] != '\0' ? e->detail : agentid_reason_text(e->reason);
}

/* ---------------------------------------------------------------- client authentication */

/*
 * Verified client assertions, per worker thread.  A client on a keep-alive
 * connection sends the same JWT-SVID assertion with every request until it
 * renews it, and verifying its signature each time would make JWT-SVID
 * client authentication cost what mTLS costs once per connection.  A hit
 * needs the SHA-256 of the exact assertion bytes, the same runtime
 * generation (a reload or bundle refresh changes the keys that verified
 * it), and the current time inside [nbf, exp) without leeway, so a hit
 * only accepts what verifying again would accept: the verifier has no
 * other time-dependent check and client assertions are not single-use.
 * Only the client assertion is cached, never subject or actor tokens.
 */
#define ACACHE_SLOTS 64
#define ACACHE_ID_MAX 256

struct acache_entry {
	unsigned char hash[32];
	unsigned generation;
	int used;
	int64_t nbf, exp;
	char id[ACACHE_ID_MAX];
};

static _Thread_local struct acache_entry acache[ACACHE_SLOTS];
static EVP_MD *acache_md;
static pthread_once_t acache_once = PTHREAD_ONCE_INIT;

static void
acache_init(void)
{
	/* Fetched once: EVP_sha256() would fetch it again on every digest. */
	acache_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int
acache_hash(const char *assertion, unsigned char hash[32])
{
	unsigned int n = 0;

	pthread_once(&acache_once, acache_init);
	return acache_md != NULL
	        && EVP_Digest(assertion, strlen(assertion), hash, &n, acache_md, NULL) == 1
	        && n == 32
	    ? 0
	    : -1;
}

static struct acache_entry *
acache_slot(const unsigned char hash[32])
{
	return &acache[hash[0] % ACACHE_SLOTS];
}

static const char *
acache_get(const struct xc_runtime *rt, const unsigned char hash[32], time_t now)
{
	const struct acache_entry *e = acache_slot(hash);

	if (!e->used || e->generation != rt->generation || CRYPTO_memcmp(e->hash, hash, 32) != 0)
		return NULL;
	if ((int64_t)now >= e->exp || (e->nbf >= 0 && (int64_t)now < e->nbf))
		return NULL;
	return e->id;
}

static void
acache_put(
    const struct xc_runtime *rt, const unsigned char hash[32], const struct agentid_token *tok)
{
	struct acache_entry *e = acache_slot(hash);
	const char *id = agentid_token_sub(tok);

	e->used = 0;
	if (strlen(id) >= sizeof(e->id))
		return;
	memcpy(e->hash, hash, 32);
	e->generation = rt->generation;
	e->nbf = agentid_token_nbf(tok);
	e->exp = agentid_token_exp(tok);
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->used = 1;
}

void
xc_client_clear(struct xc_client *c)
{
	free(c->id);
	memset(c, 0, sizeof(*c));
}

int
xc_client_authenticate(struct xc_req *r, const struct xc_form *f, struct xc_client *out)
{
	const char *atype = xc_form_get(f, "client_assertion_type");
	const char *assertion = xc_form_get(f, "client_assertion");
	const char *client_id = xc_form_get(f, "client_id");
	struct agentid_token *tok = NULL;
	struct agentid_error err;
	unsigned char hash[32];
	time_t now = time(NULL);
	const char *id;
	int cached;

	memset(out, 0, sizeof(*out));
	agentid_error_clear(&err);
	if (atype != NULL || assertion != NULL) {
		if (atype == NULL || assertion == NULL) {
			xc_send_oauth_error(r, 400, "invalid_request",
			    "client_assertion and client_assertion_type go together");
			return -1;
		}
		if (strcmp(atype, XC_ASSERTION_JWT_SPIFFE) != 0) {
			xc_send_oauth_error(r, 401, "invalid_client",
			    "unsupported client_assertion_type (use " XC_ASSERTION_JWT_SPIFFE ")");
			return -1;
		}
		cached = acache_hash(assertion, hash) == 0;
		if (!cached || (id = acache_get(r->rt, hash, now)) == NULL) {
			if (agentid_verify(
			        r->rt->svid_verifier, assertion, strlen(assertion), now, &tok, &err)
			    != 0) {
				xc_send_oauth_error(r, 401, "invalid_client",
				    "client assertion rejected: %s: %s",
				    agentid_reason_code(err.reason), err_text(&err));
				return -1;
			}
			id = agentid_token_sub(tok);
			if (cached)
				acache_put(r->rt, hash, tok);
		}
		if (r->peer_id != NULL && strcmp(r->peer_id, id) != 0) {
			agentid_token_free(tok);
			xc_send_oauth_error(r, 401, "invalid_client",
			    "client certificate and client assertion name different clients");
			return -1;
		}
		out->id = strdup(id);
		out->via_mtls = r->peer_id != NULL;
		agentid_token_free(tok);
	} else if (r->peer_id != NULL) {
		out->id = strdup(r->peer_id);
		out->via_mtls = 1;
	} else if (r->peer_cert_bad) {
		xc_send_oauth_error(r, 401, "invalid_client", "client certificate rejected: %s: %s",
		    agentid_reason_code(r->peer_err.reason), err_text(&r->peer_err));
		return -1;
	} else {
		xc_send_oauth_error(r, 401, "invalid_client",
		    "client authentication required: mTLS with an X.509-SVID or a JWT-SVID "
		    "client assertion");
		return -1;
	}
	if (out->id == NULL) {
		xc_send_plain_error(r, 503, "out of memory");
		return -1;
	}
	if (client_id != NULL && strcmp(client_id, out->id) != 0) {
		xc_client_clear(out);
		xc_send_oauth_error(
		    r, 401, "invalid_client", "client_id does not match the authenticated client");
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- token verification */

static int
check_times(
    const json_t *claims, time_t now, long leeway, int allow_expired, struct agentid_error *err)
{
	const json_t *exp = json_object_get(claims, "exp");
	const json_t *nbf = json_object_get(claims, "nbf");

	if (!json_is_integer(exp))
		return agentid_error_set(
		    err, AGENTID_R_MISSING_CLAIM, "exp missing or not an integer");
	if (!allow_expired && json_integer_value(exp) <= (json_int_t)now - leeway)
		return agentid_error_set(err, AGENTID_R_EXPIRED, "token has expired");
	if (nbf != NULL
	    && (!json_is_integer(nbf) || json_integer_value(nbf) > (json_int_t)now + leeway))
		return agentid_error_set(err, AGENTID_R_NOT_YET_VALID, "token is not yet valid");
	return 0;
}

static int
no_embedded_keys(const json_t *hdr, struct agentid_error *err)
{
	static const char *const bad[] = { "jwk", "jku", "x5u", "x5c" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (json_object_get(hdr, bad[i]) != NULL)
			return agentid_error_set(err, AGENTID_R_HEADER_NOT_ALLOWED,
			    "header '%s' is not allowed", bad[i]);
	return 0;
}

/* Signature with a key of ks selected by kid (or the only key when there is no kid). */
static int
verify_with(
    const struct agentid_keyset *ks, const struct agentid_jws *jws, struct agentid_error *err)
{
	const struct agentid_key *k = NULL;

	if (jws->kid != NULL)
		k = agentid_keyset_find(ks, jws->kid, strlen(jws->kid));
	else if (agentid_keyset_count(ks) == 1)
		k = agentid_keyset_get(ks, 0);
	if (k == NULL)
		return agentid_error_set(err, AGENTID_R_UNKNOWN_KID, "no key for this kid");
	if (!agentid_key_supports_alg(k, jws->alg))
		return agentid_error_set(err, AGENTID_R_KEY_MISMATCH, "key does not fit alg");
	return agentid_jws_verify(jws, k, err);
}

int
xc_own_token_verify(const struct xc_runtime *rt, const char *tok, time_t now, int allow_expired,
    json_t **claims, struct agentid_error *err)
{
	struct agentid_jws *jws = NULL;
	const json_t *iss;
	int r;

	*claims = NULL;
	if ((r = agentid_jws_parse(tok, strlen(tok), NULL, &jws, err)) != 0)
		return r;
	if ((r = no_embedded_keys(jws->header, err)) != 0)
		goto out;
	if (jws->typ == NULL || strcmp(jws->typ, "at+jwt") != 0) {
		r = agentid_error_set(err, AGENTID_R_TYP_MISMATCH, "typ must be at+jwt");
		goto out;
	}
	if ((r = verify_with(rt->issuer->verify, jws, err)) != 0)
		goto out;
	if ((r = check_times(jws->payload, now, 0, allow_expired, err)) != 0)
		goto out;
	iss = json_object_get(jws->payload, "iss");
	if (!json_is_string(iss) || strcmp(json_string_value(iss), rt->cfg->issuer) != 0) {
		r = agentid_error_set(err, AGENTID_R_ISS_MISMATCH, "not issued by this server");
		goto out;
	}
	if (!json_is_string(json_object_get(jws->payload, "jti"))
	    || !json_is_string(json_object_get(jws->payload, "sub"))) {
		r = agentid_error_set(err, AGENTID_R_MISSING_CLAIM, "jti or sub missing");
		goto out;
	}
	*claims = json_incref(jws->payload);
out:
	agentid_jws_free(jws);
	return r;
}

static const struct xc_external *
external_for(const struct xc_runtime *rt, const char *tok)
{
	struct agentid_error err;
	struct agentid_jws *jws = NULL;
	const struct xc_external *found = NULL;
	const json_t *iss;
	size_t i;

	/* Only to pick the key set: everything is verified afterwards. */
	if (agentid_jws_parse(tok, strlen(tok), NULL, &jws, &err) != 0)
		return NULL;
	iss = json_object_get(jws->payload, "iss");
	for (i = 0; json_is_string(iss) && i < rt->n_ext; i++)
		if (strcmp(rt->ext[i].cfg->issuer, json_string_value(iss)) == 0)
			found = &rt->ext[i];
	agentid_jws_free(jws);
	return found;
}

static int
aud_contains_any(const json_t *aud, char *const *want, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		if (json_is_string(aud) && strcmp(json_string_value(aud), want[i]) == 0)
			return 1;
		for (j = 0; json_is_array(aud) && j < json_array_size(aud); j++) {
			const json_t *a = json_array_get(aud, j);

			if (json_is_string(a) && strcmp(json_string_value(a), want[i]) == 0)
				return 1;
		}
	}
	return 0;
}

static int
external_verify(const struct xc_runtime *rt, const struct xc_external *ext, const char *tok,
    time_t now, json_t **claims, struct agentid_error *err)
{
	const struct xc_external_issuer *cfg = ext->cfg;
	struct agentid_jws *jws = NULL;
	const char *subclaim = cfg->subject_claim != NULL ? cfg->subject_claim : "sub";
	int r;

	*claims = NULL;
	if (ext->keys == NULL)
		return agentid_error_set(err, AGENTID_R_NO_KEYS, "issuer keys not available");
	if ((r = agentid_jws_parse(tok, strlen(tok), NULL, &jws, err)) != 0)
		return r;
	if ((r = no_embedded_keys(jws->header, err)) != 0
	    || (r = verify_with(ext->keys, jws, err)) != 0
	    || (r = check_times(jws->payload, now, rt->cfg->leeway, 0, err)) != 0)
		goto out;
	if (!aud_contains_any(
	        json_object_get(jws->payload, "aud"), cfg->audiences, cfg->n_audiences)) {
		r = agentid_error_set(err, AGENTID_R_AUD_MISMATCH, "token is not addressed to us");
		goto out;
	}
	if (!json_is_string(json_object_get(jws->payload, subclaim))) {
		r = agentid_error_set(err, AGENTID_R_MISSING_CLAIM, "subject claim missing");
		goto out;
	}
	*claims = json_incref(jws->payload);
out:
	agentid_jws_free(jws);
	return r;
}

/* ---------------------------------------------------------------- helpers */

/*
 * jti: 48 bits of milliseconds since the epoch, big-endian, then 80 random
 * bits, base64url (22 characters).  Unique without coordination (80 random
 * bits per millisecond), and tokens issued close together get neighbouring
 * keys in the ledger's primary-key index, so a batch of rows dirties a
 * page or two of it instead of one page per row -- every dirtied page is
 * written to the WAL at each commit and again by each checkpoint.  The
 * random bytes come from a per-thread buffer filled by RAND_bytes 32 jtis
 * at a time: a jti is an identifier, not a secret.
 */
#define JTI_RAND 10
#define JTI_POOL (JTI_RAND * 32)

static _Thread_local unsigned char jti_pool[JTI_POOL];
static _Thread_local size_t jti_pool_left;

static int
random_jti(char out[32])
{
	unsigned char b[6 + JTI_RAND];
	struct timespec ts;
	uint64_t ms;
	size_t i, n;

	if (jti_pool_left < JTI_RAND) {
		if (RAND_bytes(jti_pool, sizeof(jti_pool)) != 1)
			return -1;
		jti_pool_left = sizeof(jti_pool);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	for (i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (8 * (5 - i)));
	memcpy(b + 6, jti_pool + sizeof(jti_pool) - jti_pool_left, JTI_RAND);
	jti_pool_left -= JTI_RAND;
	return agentid_b64url_encode(b, sizeof(b), out, 32, &n);
}

static int
cert_thumbprint(X509 *cert, char out[AGENTID_THUMBPRINT_LEN + 1])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	size_t n;

	if (X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32)
		return -1;
	return agentid_b64url_encode(md, 32, out, AGENTID_THUMBPRINT_LEN + 1, &n);
}

/* The act claim for chain c (index 0 outermost). */
static json_t *
act_from_chain(const char *const *hops, size_t n)
{
	json_t *act = NULL, *o;
	size_t i;

	for (i = n; i-- > 0;) {
		if ((o = json_object()) == NULL
		    || json_object_set_new(o, "sub", json_string(hops[i])) != 0) {
			json_decref(o);
			json_decref(act);
			return NULL;
		}
		if (act != NULL && json_object_set_new(o, "act", act) != 0) {
			json_decref(o);
			return NULL;
		}
		act = o;
	}
	return act;
}

/*
 * The ledger keeps the act claim and the audiences as JSON text.  Both are
 * lists of identifiers that need no escaping (SPIFFE IDs, configured
 * audiences), so they are written directly, byte for byte what
 * json_dumps(JSON_COMPACT) would write; a string that would need escaping
 * leaves it to json_dumps.
 */
static int
json_plain(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == '"'
		    || *s == '\\')
			return 0;
	return 1;
}

/* A growing string; err is set by the first failure and makes the rest no-ops. */
struct sbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	size_t cap;
	char *p;

	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		for (cap = b->cap != 0 ? b->cap : 1024; cap < b->len + n + 1; cap *= 2)
			;
		if ((p = realloc(b->p, cap)) == NULL) {
			b->err = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_lit(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/*
 * A JSON string as json_dumps writes it.  Strings that need escaping (or
 * are not valid UTF-8, which json_string refuses) go through jansson, so
 * the bytes and the failures stay exactly its own.
 */
static void
sb_str(struct sbuf *b, const char *v)
{
	json_t *j;
	char *t;

	if (v != NULL && json_plain(v)) {
		sb_add(b, "\"", 1);
		sb_lit(b, v);
		sb_add(b, "\"", 1);
		return;
	}
	j = v != NULL ? json_string(v) : NULL;
	if ((t = j != NULL ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL) == NULL)
		b->err = 1;
	else
		sb_lit(b, t);
	free(t);
	json_decref(j);
}

static void
sb_int(struct sbuf *b, int64_t v)
{
	char t[32];
	int n = snprintf(t, sizeof(t), "%lld", (long long)v);

	if (n < 0 || (size_t)n >= sizeof(t))
		b->err = 1;
	else
		sb_add(b, t, (size_t)n);
}

/* The text built in b (the empty string when nothing was added), or NULL after a failure. */
static char *
sb_take(struct sbuf *b)
{
	if (b->err) {
		free(b->p);
		return NULL;
	}
	return b->p != NULL ? b->p : strdup("");
}

static char *
act_text(const char *const *hops, size_t n)
{
	struct sbuf b;
	size_t i;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < n; i++) {
		sb_lit(&b, i > 0 ? ",\"act\":{\"sub\":" : "{\"sub\":");
		sb_str(&b, hops[i]);
	}
	for (i = 0; i < n; i++)
		sb_add(&b, "}", 1);
	return sb_take(&b);
}

static char *
aud_text(const json_t *aud)
{
	struct sbuf b;
	size_t i;

	for (i = 0; i < json_array_size(aud); i++)
		if (!json_is_string(json_array_get(aud, i)))
			return json_dumps(aud, JSON_COMPACT);
	memset(&b, 0, sizeof(b));
	sb_add(&b, "[", 1);
	for (i = 0; i < json_array_size(aud); i++) {
		if (i > 0)
			sb_add(&b, ",", 1);
		sb_str(&b, json_string_value(json_array_get(aud, i)));
	}
	sb_add(&b, "]", 1);
	return sb_take(&b);
}

static int
json_str_in(const json_t *arr, const char *s)
{
	size_t i;

	if (json_is_string(arr))
		return strcmp(json_string_value(arr), s) == 0;
	for (i = 0; json_is_array(arr) && i < json_array_size(arr); i++)
		if (json_is_string(json_array_get(arr, i))
		    && strcmp(json_string_value(json_array_get(arr, i)), s) == 0)
			return 1;
	return 0;
}

/* may_act (RFC 8693 section 4.4): an object, or (our extension) an array of objects. */
static int
may_act_allows(const json_t *may_act, const char *actor)
{
	const json_t *sub;
	size_t i;

	if (may_act == NULL)
		return 1;
	if (json_is_object(may_act)) {
		sub = json_object_get(may_act, "sub");
		return json_is_string(sub) && strcmp(json_string_value(sub), actor) == 0;
	}
	for (i = 0; json_is_array(may_act) && i < json_array_size(may_act); i++)
		if (may_act_allows(json_array_get(may_act, i), actor)
		    && json_is_object(json_array_get(may_act, i)))
			return 1;
	return 0;
}

static int
task_id_ok(const char *t)
{
	size_t i, n = strlen(t);

	if (n == 0 || n > TASK_ID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		        || c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '@'))
			return 0;
	}
	return 1;
}

/* ---------------------------------------------------------------- subject token */

static int
load_subject(struct xc_req *r, const struct xc_form *f, const char *dpop_jkt, struct subject *s)
{
	const char *tok = xc_form_get(f, "subject_token");
	const char *type = xc_form_get(f, "subject_token_type");
	const struct xc_runtime *rt = r->rt;
	struct agentid_chain_rules rules;
	struct agentid_error err;
	const struct xc_external *ext;
	const json_t *j, *cnf;
	time_t now = time(NULL);
	int rc;

	agentid_error_clear(&err);
	if (strcmp(type, XC_TT_ACCESS) == 0) {
		if (xc_own_token_verify(rt, tok, now, 0, &s->claims, &err) != 0) {
			xc_send_oauth_error(r, 400, "invalid_grant",
			    "subject_token rejected: %s: %s", agentid_reason_code(err.reason),
			    err_text(&err));
			return -1;
		}
		s->parent_jti = json_string_value(json_object_get(s->claims, "jti"));
		rc = xc_store_ledger_get(r->store, s->parent_jti, &s->led);
		if (rc == AGENTID_ENOTFOUND) {
			xc_send_oauth_error(
			    r, 400, "invalid_grant", "subject_token rejected: unknown token");
			return -1;
		}
		if (rc != 0) {
			xc_send_plain_error(r, 503, "store unavailable");
			return -1;
		}
		if (s->led.revoked) {
			xc_send_oauth_error(r, 400, "invalid_grant",
			    "subject_token rejected: revoked: token has been revoked");
			return -1;
		}
		memset(&rules, 0, sizeof(rules));
		rules.max_depth = AGENTID_DEFAULT_MAX_CHAIN_DEPTH * 4;
		rules.require_spiffe = 1;
		if (agentid_chain_parse(s->claims, &rules, &s->chain, &err) != 0) {
			xc_send_oauth_error(r, 400, "invalid_grant", "subject_token chain: %s: %s",
			    agentid_reason_code(err.reason), err_text(&err));
			return -1;
		}
		s->principal = json_string_value(json_object_get(s->claims, "sub"));
		s->ext_issuer = s->led.subject_iss;
		s->holder = agentid_chain_len(s->chain) > 0 ? agentid_chain_get(s->chain, 0)
		                                            : s->principal;
		j = json_object_get(s->claims, "scope");
		if (agentid_scopes_parse(json_is_string(j) ? json_string_value(j) : "",
		        json_is_string(j) ? json_string_length(j) : 0, &s->scopes, &err)
		    != 0) {
			xc_send_oauth_error(
			    r, 400, "invalid_grant", "subject_token scope is malformed");
			return -1;
		}
		s->aud = json_incref(json_object_get(s->claims, "aud"));
		if (s->aud == NULL)
			s->aud = json_array();
		s->root_jti = strdup(s->led.root_jti != NULL ? s->led.root_jti : s->parent_jti);
		s->task = json_string_value(json_object_get(s->claims, "task"));
		s->task_description
		    = json_string_value(json_object_get(s->claims, "task_description"));
		/* A bound subject token is only usable with its key (RFC 9449, RFC 8705). */
		cnf = json_object_get(s->claims, "cnf");
		if (json_is_object(cnf)) {
			const json_t *jkt = json_object_get(cnf, "jkt");
			const json_t *x5t = json_object_get(cnf, "x5t#S256");
			char tp[AGENTID_THUMBPRINT_LEN + 1];

			if (json_is_string(jkt)
			    && (dpop_jkt == NULL
			        || strcmp(dpop_jkt, json_string_value(jkt)) != 0)) {
				xc_send_oauth_error(r, 400, "invalid_grant",
				    "subject_token is DPoP-bound: a DPoP proof with its key is "
				    "required");
				return -1;
			}
			if (json_is_string(x5t)
			    && (r->peer_cert == NULL || r->peer_id == NULL
			        || cert_thumbprint(r->peer_cert, tp) != 0
			        || strcmp(tp, json_string_value(x5t)) != 0)) {
				xc_send_oauth_error(r, 400, "invalid_grant",
				    "subject_token is certificate-bound: present its client "
				    "certificate");
				return -1;
			}
		}
	} else if (strcmp(type, XC_TT_JWT) == 0) {
		if ((ext = external_for(rt, tok)) != NULL) {
			if (external_verify(rt, ext, tok, now, &s->claims, &err) != 0) {
				xc_send_oauth_error(r, 400, "invalid_grant",
				    "subject_token rejected: %s: %s",
				    agentid_reason_code(err.reason), err_text(&err));
				return -1;
			}
			s->principal = json_string_value(json_object_get(s->claims,
			    ext->cfg->subject_claim != NULL ? ext->cfg->subject_claim : "sub"));
			s->ext_issuer = ext->cfg->issuer;
			s->holder = NULL;
			j = json_object_get(s->claims, "scope");
			if (json_is_string(j)
			    && agentid_scopes_parse(
			           json_string_value(j), json_string_length(j), &s->scopes, &err)
			        != 0)
				s->scopes = NULL;
		} else {
			if (agentid_verify(rt->svid_verifier, tok, strlen(tok), now, &s->svid, &err)
			    != 0) {
				xc_send_oauth_error(r, 400, "invalid_grant",
				    "subject_token rejected: %s: %s",
				    agentid_reason_code(err.reason), err_text(&err));
				return -1;
			}
			s->claims = json_incref((json_t *)agentid_token_claims(s->svid));
			s->principal = agentid_token_sub(s->svid);
			s->holder = s->principal;
		}
	} else {
		xc_send_oauth_error(r, 400, "invalid_request",
		    "unsupported subject_token_type (use " XC_TT_JWT " or " XC_TT_ACCESS ")");
		return -1;
	}
	j = json_object_get(s->claims, "exp");
	s->exp = json_is_integer(j) ? (int64_t)json_integer_value(j) : (int64_t)now;
	return 0;
}

/* ---------------------------------------------------------------- the handler */

struct grant {
	const struct xc_rule *rule;
	const char **hops; /* new chain, current actor first */
	size_t n_hops;
	struct agentid_scopes *scopes;
	json_t *aud;
	char *scope_str;
	const char *task;
	const char *task_description;
	json_t *cnf;
	const char *token_type;
	int64_t exp;
};

static void
grant_clear(struct grant *g)
{
	free(g->hops);
	agentid_scopes_free(g->scopes);
	json_decref(g->aud);
	free(g->scope_str);
	json_decref(g->cnf);
	memset(g, 0, sizeof(*g));
}

static void
deny(struct xc_req *r, const char *client, const struct subject *s, const char *actor,
    const char *reason)
{
	struct xc_audit_event ev = {
		.event = "exchange.denied",
		.agent = actor,
		.subject = s != NULL ? s->principal : NULL,
		.parent_jti = s != NULL ? s->parent_jti : NULL,
		.task = s != NULL ? s->task : NULL,
		.decision = "deny",
		.reason = reason,
		.client = client,
	};

	xc_audit_record(&ev);
}

/* Requested targets: every audience and resource value. */
static int
requested_targets(const struct xc_form *f, json_t **out)
{
	static const char *const names[] = { "audience", "resource" };
	json_t *a = json_array();
	size_t i, k;

	*out = NULL;
	if (a == NULL)
		return -1;
	for (k = 0; k < 2; k++)
		for (i = 0; i < xc_form_count(f, names[k]); i++) {
			const char *v = xc_form_get_nth(f, names[k], i);

			if (!json_str_in(a, v) && json_array_append_new(a, json_string(v)) != 0) {
				json_decref(a);
				return -1;
			}
		}
	*out = a;
	return 0;
}

/*
 * An issued token waiting for its ledger row: the response and what the
 * audit record and the log line need, copied out of the request.
 */
struct issued {
	struct xc_req r; /* req stays valid until answered; rt is a reference */
	char *body; /* the JSON response, with the token: wiped when freed */
	json_t *act, *aud;
	char *agent, *subject, *task, *jti, *parent_jti, *scope, *scope_requested, *client;
	size_t depth;
};

static void
issued_free(struct issued *is)
{
	if (is == NULL)
		return;
	if (is->body != NULL) {
		OPENSSL_cleanse(is->body, strlen(is->body));
		free(is->body);
	}
	json_decref(is->act);
	json_decref(is->aud);
	free(is->agent);
	free(is->subject);
	free(is->task);
	free(is->jti);
	free(is->parent_jti);
	free(is->scope);
	free(is->scope_requested);
	free(is->client);
	xc_runtime_unref(is->r.rt);
	free(is);
}

static int
opt_dup(char **dst, const char *src)
{
	*dst = NULL;
	return src == NULL || (*dst = strdup(src)) != NULL ? 0 : -1;
}

static struct issued *
issued_new(struct xc_req *r, char *body, json_t *act, const struct grant *g,
    const struct subject *s, const char *jti, const struct xc_client *client,
    const char *scope_requested)
{
	struct issued *is;

	if ((is = calloc(1, sizeof(*is))) == NULL)
		return NULL;
	is->r = *r;
	xc_runtime_ref(is->r.rt);
	is->act = json_incref(act);
	is->aud = json_incref(g->aud);
	is->depth = g->n_hops;
	if (opt_dup(&is->agent, g->hops[0]) != 0 || opt_dup(&is->subject, s->principal) != 0
	    || opt_dup(&is->task, g->task) != 0 || opt_dup(&is->jti, jti) != 0
	    || opt_dup(&is->parent_jti, s->parent_jti) != 0
	    || opt_dup(&is->scope, g->scope_str) != 0
	    || opt_dup(&is->scope_requested, scope_requested) != 0
	    || opt_dup(&is->client, client->id) != 0) {
		issued_free(is);
		return NULL;
	}
	is->body = body;
	return is;
}

/* The ledger row is committed (rc 0) or not: answer, count, audit, log. */
static void
issued_done(int rc, void *arg)
{
	struct issued *is = arg;
	struct timespec t1;

	if (rc == AGENTID_EREJECTED) {
		xc_log(AGENTID_LOG_INFO, "not issued jti=%s: parent jti=%s was revoked meanwhile",
		    is->jti, is->parent_jti != NULL ? is->parent_jti : "-");
		xc_send_oauth_error(&is->r, 400, "invalid_grant",
		    "subject_token rejected: revoked: token has been revoked");
	} else if (rc != 0)
		xc_send_plain_error(&is->r, 503, "temporarily unable to issue tokens");
	else {
		struct xc_audit_event ev = {
			.event = "exchange.granted",
			.agent = is->agent,
			.subject = is->subject,
			.act = is->act,
			.task = is->task,
			.jti = is->jti,
			.parent_jti = is->parent_jti,
			.iss = is->r.rt->cfg->issuer,
			.aud = is->aud,
			.scope = is->scope,
			.scope_requested = is->scope_requested,
			.decision = "allow",
			.reason = "ok",
			.client = is->client,
		};

		xc_send_json_text(&is->r, 200, is->body, NULL, 0);
		xc_metrics_issued();
		xc_audit_record(&ev);
		xc_log(AGENTID_LOG_INFO, "issued jti=%s sub=%s agent=%s client=%s depth=%zu",
		    is->jti, is->subject, is->agent, is->client, is->depth);
	}
	if (is->r.deferred) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		xc_metrics_request(XC_EP_TOKEN, is->r.status);
		xc_metrics_exchange_latency((double)(t1.tv_sec - is->r.t0.tv_sec)
		    + (double)(t1.tv_nsec - is->r.t0.tv_nsec) / 1e9);
	}
	issued_free(is);
}

/*
 * The RFC 8693 section 2.2.1 response, written directly instead of with
 * json_pack and json_dumps: the token is base64url and dots, the types are
 * ours, and a scope is scope-tokens of NQCHAR separated by spaces (RFC 6749
 * appendix A.4, enforced by agentid_scopes_parse), so no value needs JSON
 * escaping.  A string that would is refused rather than escaped.
 */
static char *
response_body(const char *token, const char *issued_type, const char *token_type,
    int64_t expires_in, const char *scope)
{
	const char *strs[] = { token, issued_type, token_type, scope };
	size_t i, n = 128;
	const char *p;
	char *b;
	int w;

	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		for (p = strs[i]; *p != '\0'; p++)
			if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
				return NULL;
		n += (size_t)(p - strs[i]);
	}
	if ((b = malloc(n)) == NULL)
		return NULL;
	w = snprintf(b, n,
	    "{\"access_token\":\"%s\",\"issued_token_type\":\"%s\",\"token_type\":\"%s\","
	    "\"expires_in\":%lld%s%s%s}",
	    token, issued_type, token_type, (long long)expires_in,
	    scope[0] != '\0' ? ",\"scope\":\"" : "", scope, scope[0] != '\0' ? "\"" : "");
	if (w < 0 || (size_t)w >= n) {
		free(b);
		return NULL;
	}
	return b;
}

/*
 * The new token's claims as compact JSON text, byte for byte what
 * json_dumps(JSON_COMPACT) writes for them, in this order: iss, sub, aud,
 * client_id, iat, nbf, exp, jti, act, status, then scope, task,
 * task_description, parent_jti and cnf when present.  Written directly
 * instead of built as JSON values and serialised by the signer: act, aud
 * and cnf are the ledger's texts already.  NULL on failure.
 */
static char *
claims_text(const struct xc_runtime *rt, const struct subject *s, const struct grant *g,
    const struct xc_client *client, const char *jti, int64_t now, int64_t idx, const char *uri,
    const char *aud_s, const char *act_s, const char *cnf_s, size_t *len)
{
	struct sbuf b;

	memset(&b, 0, sizeof(b));
	sb_lit(&b, "{\"iss\":");
	sb_str(&b, rt->cfg->issuer);
	sb_lit(&b, ",\"sub\":");
	sb_str(&b, s->principal);
	sb_lit(&b, ",\"aud\":");
	if (json_array_size(g->aud) == 1)
		sb_str(&b, json_string_value(json_array_get(g->aud, 0)));
	else
		sb_lit(&b, aud_s);
	sb_lit(&b, ",\"client_id\":");
	sb_str(&b, client->id);
	sb_lit(&b, ",\"iat\":");
	sb_int(&b, now);
	sb_lit(&b, ",\"nbf\":");
	sb_int(&b, now);
	sb_lit(&b, ",\"exp\":");
	sb_int(&b, g->exp);
	sb_lit(&b, ",\"jti\":");
	sb_str(&b, jti);
	sb_lit(&b, ",\"act\":");
	sb_lit(&b, act_s);
	sb_lit(&b, ",\"status\":{\"status_list\":{\"idx\":");
	sb_int(&b, idx % rt->cfg->status_list_size);
	sb_lit(&b, ",\"uri\":");
	sb_str(&b, uri);
	sb_lit(&b, "}}");
	if (g->scope_str[0] != '\0') {
		sb_lit(&b, ",\"scope\":");
		sb_str(&b, g->scope_str);
	}
	if (g->task != NULL) {
		sb_lit(&b, ",\"task\":");
		sb_str(&b, g->task);
	}
	if (g->task_description != NULL) {
		sb_lit(&b, ",\"task_description\":");
		sb_str(&b, g->task_description);
	}
	if (s->parent_jti != NULL) {
		sb_lit(&b, ",\"parent_jti\":");
		sb_str(&b, s->parent_jti);
	}
	if (cnf_s != NULL) {
		sb_lit(&b, ",\"cnf\":");
		sb_lit(&b, cnf_s);
	}
	sb_lit(&b, "}");
	*len = b.len;
	return sb_take(&b);
}

static int
mint(struct xc_req *r, const struct xc_client *client, const struct subject *s, struct grant *g,
    const char *requested_type, const char *scope_requested)
{
	const struct xc_runtime *rt = r->rt;
	struct xc_ledger_entry led;
	json_t *act = NULL;
	char jti[32], *uri = NULL, *token = NULL, *aud_s = NULL, *act_s = NULL, *cnf_s = NULL;
	char *body = NULL, *claims = NULL;
	size_t claims_len = 0;
	struct issued *is = NULL;
	int64_t idx, now = (int64_t)time(NULL);
	int rc = -1;

	memset(&led, 0, sizeof(led));
	if (random_jti(jti) != 0 || xc_store_status_alloc(r->store, &idx) != 0
	    || xc_status_uri(rt, idx / rt->cfg->status_list_size, &uri) != 0)
		goto fail;
	if ((act = act_from_chain(g->hops, g->n_hops)) == NULL)
		goto fail;
	aud_s = aud_text(g->aud);
	act_s = act_text(g->hops, g->n_hops);
	cnf_s = g->cnf != NULL ? json_dumps(g->cnf, JSON_COMPACT) : NULL;
	if (aud_s == NULL || act_s == NULL || (g->cnf != NULL && cnf_s == NULL))
		goto fail;
	if ((claims = claims_text(
	         rt, s, g, client, jti, now, idx, uri, aud_s, act_s, cnf_s, &claims_len))
	        == NULL
	    || xc_issuer_sign_text(rt->issuer, "at+jwt", claims, claims_len, &token) != 0)
		goto fail;
	snprintf(led.jti, sizeof(led.jti), "%s", jti);
	led.parent_jti = (char *)s->parent_jti;
	led.root_jti = s->root_jti != NULL ? s->root_jti : jti;
	led.subject = (char *)s->principal;
	led.subject_iss = (char *)s->ext_issuer;
	led.actor = (char *)g->hops[0];
	led.client_id = client->id;
	led.task = (char *)g->task;
	led.scope = g->scope_str;
	led.aud = aud_s;
	led.act = act_s;
	led.cnf = cnf_s;
	led.iat = now;
	led.exp = g->exp;
	led.status_idx = idx;
	if ((body = response_body(token,
	         requested_type != NULL && strcmp(requested_type, XC_TT_JWT) == 0 ? XC_TT_JWT
	                                                                          : XC_TT_ACCESS,
	         g->token_type, g->exp - now, g->scope_str))
	    == NULL)
		goto fail;
	if ((is = issued_new(r, body, act, g, s, jti, client, scope_requested)) == NULL)
		goto fail;
	body = NULL;
	/* Answered once the row is committed: with the worker's batch, or at once. */
	if (r->batch != NULL) {
		is->r.deferred = 1;
		if (xc_batch_add(r->batch, &led, issued_done, is) != 0)
			goto fail;
		r->deferred = 1;
	} else
		issued_done(xc_store_ledger_insert(r->store, &led), is);
	is = NULL;
	rc = 0;
	goto out;
fail:
	xc_send_plain_error(r, 503, "temporarily unable to issue tokens");
out:
	issued_free(is);
	if (body != NULL) {
		OPENSSL_cleanse(body, strlen(body));
		free(body);
	}
	free(claims);
	json_decref(act);
	free(uri);
	if (token != NULL) {
		OPENSSL_cleanse(token, strlen(token));
		free(token);
	}
	free(aud_s);
	free(act_s);
	free(cnf_s);
	return rc;
}

void
xc_handle_token(struct xc_req *r)
{
	const struct xc_runtime *rt = r->rt;
	const struct xc_config *cfg = rt->cfg;
	struct xc_form *f = NULL;
	struct xc_client client;
	struct subject s;
	struct grant g;
	struct agentid_token *actor_tok = NULL;
	struct agentid_scopes *allowed = NULL, *requested = NULL;
	struct agentid_error err;
	const char *gt, *actor = NULL, *v, *req_type, *scope_param, *dpop;
	char jkt[AGENTID_THUMBPRINT_LEN + 1], tp[AGENTID_THUMBPRINT_LEN + 1];
	const char *dpop_jkt = NULL;
	json_t *targets = NULL;
	const struct xc_rule *prule;
	const char **old = NULL;
	size_t i, n_old, depth_max;
	time_t now = time(NULL);
	int64_t exp;
	long maxlt;

	memset(&client, 0, sizeof(client));
	memset(&s, 0, sizeof(s));
	memset(&g, 0, sizeof(g));
	agentid_error_clear(&err);
	if (xc_read_form(r, &f) != 0)
		return;
	if ((gt = xc_form_get(f, "grant_type")) == NULL) {
		xc_send_oauth_error(r, 400, "invalid_request", "grant_type is required");
		goto out;
	}
	if (strcmp(gt, XC_TOKEN_EXCHANGE_GRANT) != 0) {
		xc_send_oauth_error(r, 400, "unsupported_grant_type",
		    "only " XC_TOKEN_EXCHANGE_GRANT " is supported");
		goto out;
	}
	if (xc_client_authenticate(r, f, &client) != 0)
		goto out;
	if (xc_form_get(f, "subject_token") == NULL
	    || xc_form_get(f, "subject_token_type") == NULL) {
		xc_send_oauth_error(
		    r, 400, "invalid_request", "subject_token and subject_token_type are required");
		goto out;
	}
	if ((xc_form_get(f, "actor_token") == NULL)
	    != (xc_form_get(f, "actor_token_type") == NULL)) {
		xc_send_oauth_error(
		    r, 400, "invalid_request", "actor_token and actor_token_type go together");
		goto out;
	}
	req_type = xc_form_get(f, "requested_token_type");
	if (req_type != NULL && strcmp(req_type, XC_TT_ACCESS) != 0
	    && strcmp(req_type, XC_TT_JWT) != 0) {
		xc_send_oauth_error(r, 400, "invalid_request",
		    "requested_token_type must be " XC_TT_ACCESS " or " XC_TT_JWT);
		goto out;
	}
	/* DPoP proof first: a DPoP-bound subject token needs its key. */
	{
		struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
		struct evkeyval *kv;
		int n = 0;

		dpop = NULL;
		for (kv = h->tqh_first; kv != NULL; kv = kv->next.tqe_next)
			if (strcasecmp(kv->key, "DPoP") == 0) {
				dpop = kv->value;
				n++;
			}
		if (n > 1) {
			xc_send_oauth_error(
			    r, 400, "invalid_dpop_proof", "more than one DPoP header");
			goto out;
		}
		if (dpop != NULL) {
			if (xc_dpop_verify(r->store, dpop, "POST", cfg->token_endpoint, now,
			        cfg->dpop_window, jkt, &err)
			    != 0) {
				xc_send_oauth_error(r, 400, "invalid_dpop_proof", "%s: %s",
				    agentid_reason_code(err.reason), err_text(&err));
				deny(r, client.id, NULL, NULL, agentid_reason_code(err.reason));
				goto out;
			}
			dpop_jkt = jkt;
		}
	}
	if (load_subject(r, f, dpop_jkt, &s) != 0) {
		deny(r, client.id, &s, NULL, "invalid_grant");
		goto out;
	}

	/* The acting agent. */
	if ((v = xc_form_get(f, "actor_token")) != NULL) {
		if (strcmp(xc_form_get(f, "actor_token_type"), XC_TT_JWT) != 0) {
			xc_send_oauth_error(r, 400, "invalid_request",
			    "actor_token_type must be " XC_TT_JWT " (a JWT-SVID)");
			goto out;
		}
		if (agentid_verify(rt->svid_verifier, v, strlen(v), now, &actor_tok, &err) != 0) {
			xc_send_oauth_error(r, 400, "invalid_grant", "actor_token rejected: %s: %s",
			    agentid_reason_code(err.reason), err_text(&err));
			deny(r, client.id, &s, NULL, agentid_reason_code(err.reason));
			goto out;
		}
		actor = agentid_token_sub(actor_tok);
	} else {
		if (agentid_spiffe_id_parse(client.id, strlen(client.id), NULL, &err) != 0) {
			xc_send_oauth_error(r, 400, "invalid_request",
			    "the client is not an agent: an actor_token is required");
			goto out;
		}
		actor = client.id;
	}

	/* Who may act: policy for (actor, subject). */
	g.rule = xc_policy_match(cfg, actor, s.principal, s.ext_issuer);
	if (g.rule == NULL) {
		xc_send_oauth_error(r, 400, "unauthorized_client",
		    "no policy rule lets %.100s act for %.100s", actor, s.principal);
		deny(r, client.id, &s, actor, "unauthorized_client");
		goto out;
	}
	/*
	 * Who may present the subject token: its holder (the current actor of
	 * one of our tokens, or the agent a JWT-SVID names); for a user's token,
	 * the agent that will act.  Policy may name further clients.
	 */
	if (strcmp(client.id, s.holder != NULL ? s.holder : actor) != 0
	    && (g.rule->client_pats == NULL
	        || !agentid_spiffe_patterns_match(
	            g.rule->client_pats, client.id, strlen(client.id)))) {
		xc_send_oauth_error(r, 400, "unauthorized_client",
		    "client %.100s may not present this subject_token for %.100s", client.id,
		    actor);
		deny(r, client.id, &s, actor, "unauthorized_client");
		goto out;
	}
	if (!may_act_allows(json_object_get(s.claims, "may_act"), actor)) {
		xc_send_oauth_error(
		    r, 400, "invalid_grant", "subject_token's may_act does not name %.100s", actor);
		deny(r, client.id, &s, actor, "agent_not_allowed");
		goto out;
	}

	/*
	 * The new chain.  The previous actors are the subject token's act chain;
	 * an agent's own JWT-SVID counts as a chain of that agent alone, a user
	 * token as an empty chain.
	 */
	n_old = s.chain != NULL ? agentid_chain_len(s.chain) : (s.svid != NULL ? 1 : 0);
	if ((old = calloc(n_old + 1, sizeof(*old))) == NULL
	    || (g.hops = calloc(n_old + 1, sizeof(*g.hops))) == NULL)
		goto oom;
	for (i = 0; i < n_old; i++)
		old[i] = s.chain != NULL ? agentid_chain_get(s.chain, i) : s.principal;
	if (n_old > 0 && strcmp(old[0], actor) == 0) {
		/* The current actor re-exchanges (narrows) its own token: no new hop. */
		for (i = 0; i < n_old; i++)
			g.hops[g.n_hops++] = old[i];
	} else {
		for (i = 0; i < n_old; i++)
			if (strcmp(old[i], actor) == 0) {
				xc_send_oauth_error(r, 400, "invalid_grant",
				    "chain_cycle: %.100s already appears in the delegation chain",
				    actor);
				deny(r, client.id, &s, actor, "chain_cycle");
				goto out;
			}
		if (n_old > 0) {
			/* Delegation: the current actor's rule must allow delegating to actor. */
			prule = xc_policy_match(cfg, old[0], s.principal, s.ext_issuer);
			if (prule == NULL || prule->delegate_pats == NULL
			    || !agentid_spiffe_patterns_match(
			        prule->delegate_pats, actor, strlen(actor))) {
				xc_send_oauth_error(r, 400, "unauthorized_client",
				    "policy does not let %.100s delegate to %.100s", old[0], actor);
				deny(r, client.id, &s, actor, "agent_not_allowed");
				goto out;
			}
		}
		g.hops[g.n_hops++] = actor;
		for (i = 0; i < n_old; i++)
			g.hops[g.n_hops++] = old[i];
	}
	depth_max = (size_t)cfg->max_depth;
	if (g.rule->max_depth > 0 && (size_t)g.rule->max_depth < depth_max)
		depth_max = (size_t)g.rule->max_depth;
	if (g.n_hops > depth_max) {
		xc_send_oauth_error(r, 400, "invalid_grant",
		    "chain_too_deep: delegation depth %zu exceeds the maximum of %zu", g.n_hops,
		    depth_max);
		deny(r, client.id, &s, actor, "chain_too_deep");
		goto out;
	}

	/* Scope: requested must be within policy and parent. */
	if (s.scopes != NULL) {
		if (agentid_scopes_intersect(g.rule->scope_set, s.scopes, &allowed) != 0)
			goto oom;
	} else if (agentid_scopes_intersect(g.rule->scope_set, g.rule->scope_set, &allowed) != 0)
		goto oom;
	scope_param = xc_form_get(f, "scope");
	if (scope_param != NULL) {
		if (agentid_scopes_parse(scope_param, strlen(scope_param), &requested, &err) != 0) {
			xc_send_oauth_error(r, 400, "invalid_scope", "scope is malformed");
			goto out;
		}
		if (!agentid_scopes_subset(requested, allowed)) {
			xc_send_oauth_error(r, 400, "invalid_scope",
			    "requested scope exceeds what the parent token and policy allow");
			deny(r, client.id, &s, actor, "invalid_scope");
			goto out;
		}
		g.scopes = requested;
		requested = NULL;
	} else {
		g.scopes = allowed;
		allowed = NULL;
	}
	{
		/* agentid_scopes_to_string hands out agentid_free() memory: keep a libc copy. */
		char *tmp = NULL;

		if (agentid_scopes_to_string(g.scopes, &tmp) != 0)
			goto oom;
		g.scope_str = strdup(tmp);
		agentid_free(tmp);
		if (g.scope_str == NULL)
			goto oom;
	}

	/* Audiences / resources. */
	if (requested_targets(f, &targets) != 0 || (g.aud = json_array()) == NULL)
		goto oom;
	if (json_array_size(targets) > 0) {
		for (i = 0; i < json_array_size(targets); i++) {
			const char *t = json_string_value(json_array_get(targets, i));
			size_t k;
			int ok = 0;

			for (k = 0; k < g.rule->n_audiences; k++)
				if (strcmp(g.rule->audiences[k], t) == 0)
					ok = 1;
			if (ok && s.aud != NULL && !json_str_in(s.aud, t))
				ok = 0;
			if (!ok) {
				xc_send_oauth_error(r, 400, "invalid_target",
				    "audience %.100s is not within what the parent token and "
				    "policy "
				    "allow",
				    t);
				deny(r, client.id, &s, actor, "invalid_target");
				goto out;
			}
			json_array_append(g.aud, json_array_get(targets, i));
		}
	} else {
		for (i = 0; i < g.rule->n_audiences; i++)
			if (s.aud == NULL || json_str_in(s.aud, g.rule->audiences[i]))
				json_array_append_new(g.aud, json_string(g.rule->audiences[i]));
		if (json_array_size(g.aud) == 0) {
			xc_send_oauth_error(
			    r, 400, "invalid_target", "no audience is allowed for this exchange");
			deny(r, client.id, &s, actor, "invalid_target");
			goto out;
		}
	}

	/* Task context: inherited, or narrowed to a sub-task "parent/child". */
	g.task = s.task;
	g.task_description = s.task_description;
	if ((v = xc_form_get(f, "task_id")) != NULL) {
		size_t pl = s.task != NULL ? strlen(s.task) : 0;

		if (!task_id_ok(v)) {
			xc_send_oauth_error(r, 400, "invalid_request",
			    "task_id must be 1-128 characters of [A-Za-z0-9._:/@-]");
			goto out;
		}
		if (s.task != NULL && strcmp(v, s.task) != 0
		    && !(strncmp(v, s.task, pl) == 0 && v[pl] == '/')) {
			xc_send_oauth_error(r, 400, "invalid_request",
			    "task_id must be the parent's task or a sub-task of it (parent/...)");
			deny(r, client.id, &s, actor, "invalid_request");
			goto out;
		}
		g.task = v;
	}
	if ((v = xc_form_get(f, "task_description")) != NULL) {
		if (strlen(v) > TASK_DESC_MAX) {
			xc_send_oauth_error(r, 400, "invalid_request",
			    "task_description is longer than %d bytes", TASK_DESC_MAX);
			goto out;
		}
		g.task_description = v;
	}

	/* Binding of the new token. */
	g.token_type = "Bearer";
	if (dpop_jkt != NULL) {
		if ((g.cnf = json_pack("{s:s}", "jkt", dpop_jkt)) == NULL)
			goto oom;
		g.token_type = "DPoP";
	} else if (client.via_mtls && r->peer_cert != NULL
	    && (g.rule->require_binding || cfg->bind_mtls)) {
		if (cert_thumbprint(r->peer_cert, tp) != 0
		    || (g.cnf = json_pack("{s:s}", "x5t#S256", tp)) == NULL)
			goto oom;
	} else if (g.rule->require_binding) {
		xc_send_oauth_error(r, 400, "invalid_request",
		    "binding_required: policy requires a DPoP proof or an mTLS client certificate");
		deny(r, client.id, &s, actor, "binding_required");
		goto out;
	}

	/* Lifetime: min(default, policy maximum, subject token's exp). */
	maxlt = cfg->max_lifetime;
	if (g.rule->max_lifetime > 0 && g.rule->max_lifetime < maxlt)
		maxlt = g.rule->max_lifetime;
	exp = (int64_t)now + (cfg->default_lifetime < maxlt ? cfg->default_lifetime : maxlt);
	if (s.exp < exp)
		exp = s.exp;
	if (exp <= (int64_t)now) {
		xc_send_oauth_error(r, 400, "invalid_grant", "subject_token expires now");
		goto out;
	}
	g.exp = exp;
	mint(r, &client, &s, &g, req_type, scope_param);
	goto out;
oom:
	xc_send_plain_error(r, 503, "out of memory");
out:
	free(old);
	json_decref(targets);
	agentid_scopes_free(allowed);
	agentid_scopes_free(requested);
	agentid_token_free(actor_tok);
	grant_clear(&g);
	subject_clear(&s);
	xc_client_clear(&client);
	xc_form_free(f);
}
