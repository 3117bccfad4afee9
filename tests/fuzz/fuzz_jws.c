/*
 * Fuzz target: the whole verification path (JWS parse, header rules, key
 * lookup, signature, time claims, iss/aud/typ, profile rules, act chain,
 * agent/subject patterns, scopes, required claims) with a fixed trust: the
 * fixed P-256 and Ed25519 keys of fuzz_util.h in the bundle of example.org.
 *
 * An input without a newline (but a final one) is a token.  An input "HEADER\nPAYLOAD" is
 * signed by the target (EdDSA when the header names EdDSA or Ed25519, else ES256), so
 * that mutations of the claims get past the signature; the seeds carry
 * kid "fz-ec" / "fz-ed".  Two verifiers see every token: a permissive one
 * and one with agent/actor/subject patterns and required claim values.
 */
#include "fuzz_util.h"

static struct agentid_verifier *verifier, *strict;

static void
setup(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_trust *trust = NULL;
	struct agentid_bundle *b = NULL;
	struct agentid_key *k1 = fz_key(FZ_EC_JWK_PRIVATE), *k2 = fz_key(FZ_ED_JWK_PRIVATE);
	static const char *aud[] = { "api" };
	static const char *iss[] = { "https://issuer.example" };
	static const char *scopes[] = { "read" };
	static const char *any_scopes[] = { "write", "admin" };
	static const char *actors[] = { "spiffe://example.org/agent/*" };
	static const char *agents[]
	    = { "spiffe://example.org/agent/a", "spiffe://example.org/agent/b/*" };
	static const char *subjects[] = { "spiffe://example.org/*", "alice" };
	static const char *required[] = { "jti" };
	static const char *names[] = { "task" }, *values[] = { "t-1" };

	if (agentid_bundle_new("example.org", &b) != 0 || agentid_bundle_add_jwt_key(b, k1) != 0
	    || agentid_bundle_add_jwt_key(b, k2) != 0 || agentid_trust_new(&trust) != 0
	    || agentid_trust_add_bundle(trust, b) != 0)
		abort();
	agentid_bundle_free(b);
	/* The same keys as issuer keys (a bundle of no trust domain) for access tokens. */
	if (agentid_bundle_new(NULL, &b) != 0 || agentid_bundle_add_jwt_key(b, k1) != 0
	    || agentid_bundle_add_jwt_key(b, k2) != 0 || agentid_trust_add_bundle(trust, b) != 0)
		abort();
	agentid_verifier_config_init(&cfg);
	cfg.trust = trust;
	cfg.audiences = aud;
	cfg.n_audiences = 1;
	cfg.issuers = iss;
	cfg.n_issuers = 1;
	cfg.required_scopes = scopes;
	cfg.n_required_scopes = 1;
	if (agentid_verifier_new(&cfg, &verifier, NULL) != 0)
		abort();
	cfg.profile = AGENTID_PROFILE_ACCESS;
	cfg.required_scopes = any_scopes;
	cfg.n_required_scopes = 2;
	cfg.scope_any = 1;
	cfg.max_chain_depth = 3;
	cfg.chain_require_trusted = 1;
	cfg.allow_actors = actors;
	cfg.n_allow_actors = 1;
	cfg.allow_agents = agents;
	cfg.n_allow_agents = 2;
	cfg.allow_subjects = subjects;
	cfg.n_allow_subjects = 2;
	cfg.required_claims = required;
	cfg.n_required_claims = 1;
	cfg.claim_names = names;
	cfg.claim_values = values;
	cfg.n_claim_values = 1;
	if (agentid_verifier_new(&cfg, &strict, NULL) != 0)
		abort();
	agentid_key_free(k1);
	agentid_key_free(k2);
	agentid_bundle_free(b);
	agentid_trust_free(trust);
}

static void
verify(const struct agentid_verifier *v, const char *tok, size_t len)
{
	struct agentid_token *t = NULL;
	struct agentid_error err;
	char *s = NULL;

	if (agentid_verify(v, tok, len, FZ_NOW, &t, &err) != 0)
		return;
	/* What hosts read from a verified token must be there and consistent. */
	if (agentid_token_sub(t) == NULL || agentid_token_agent(t) == NULL
	    || agentid_token_scopes(t) == NULL || agentid_token_chain(t) == NULL)
		abort();
	if (agentid_chain_len(agentid_token_chain(t)) > 0
	    && strcmp(agentid_token_agent(t), agentid_chain_get(agentid_token_chain(t), 0)) != 0)
		abort();
	if (agentid_chain_to_string(agentid_token_chain(t), ",", &s) != 0)
		abort();
	agentid_free(s);
	if (agentid_scopes_to_string(agentid_token_scopes(t), &s) != 0)
		abort();
	agentid_free(s);
	agentid_token_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agentid_jws *jws = NULL;
	struct agentid_error err;
	const uint8_t *nl;
	char *tok;

	if (verifier == NULL)
		setup();
	/* A token file's final newline is not a header/payload separator. */
	if (size > 0 && data[size - 1] == '\n' && memchr(data, '\n', size - 1) == NULL)
		size--;
	if ((nl = memchr(data, '\n', size)) == NULL) {
		verify(verifier, (const char *)data, size);
		if (agentid_jws_parse((const char *)data, size, NULL, &jws, &err) == 0)
			agentid_jws_free(jws);
		return 0;
	}
	{
		size_t hlen = (size_t)(nl - data);
		int ed = memmem(data, hlen, "\"EdDSA\"", 7) != NULL
		    || memmem(data, hlen, "\"Ed25519\"", 9) != NULL;
		static struct agentid_key *ec, *edk;

		if (ec == NULL) {
			ec = fz_key(FZ_EC_JWK_PRIVATE);
			edk = fz_key(FZ_ED_JWK_PRIVATE);
		}
		tok = fz_sign_compact(ed ? edk : ec, ed ? AGENTID_ALG_EDDSA : AGENTID_ALG_ES256,
		    data, hlen, nl + 1, size - hlen - 1);
		if (tok == NULL)
			abort();
	}
	verify(verifier, tok, strlen(tok));
	verify(strict, tok, strlen(tok));
	free(tok);
	return 0;
}
