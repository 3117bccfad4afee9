/*
 * Fuzz target: the whole verification path (JWS parse, header rules, key
 * lookup, signature, claims, chain, scopes) with a fixed trust of one EC and
 * one Ed25519 key.  Inputs are token strings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <agentid/agentid.h>

static struct agentid_verifier *verifier;

static void
setup(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_trust *trust = NULL;
	struct agentid_bundle *b = NULL;
	struct agentid_key *k1 = NULL, *k2 = NULL;
	static const char *aud[] = { "api" };
	static const char *iss[] = { "https://issuer.example" };
	static const char *scopes[] = { "read" };

	if (agentid_key_generate(AGENTID_ALG_ES256, &k1) != 0 ||
	    agentid_key_generate(AGENTID_ALG_EDDSA, &k2) != 0 ||
	    agentid_key_set_kid(k1, "k1") != 0 || agentid_key_set_kid(k2, "k2") != 0 ||
	    agentid_bundle_new("example.org", &b) != 0 || agentid_bundle_add_jwt_key(b, k1) != 0 ||
	    agentid_bundle_add_jwt_key(b, k2) != 0 || agentid_trust_new(&trust) != 0 ||
	    agentid_trust_add_bundle(trust, b) != 0)
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
	agentid_key_free(k1);
	agentid_key_free(k2);
	agentid_bundle_free(b);
	agentid_trust_free(trust);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agentid_token *tok = NULL;
	struct agentid_jws *jws = NULL;
	struct agentid_error err;

	if (verifier == NULL)
		setup();
	if (agentid_verify(verifier, (const char *)data, size, 1700000000, &tok, &err) == 0)
		agentid_token_free(tok);
	if (agentid_jws_parse((const char *)data, size, NULL, &jws, &err) == 0)
		agentid_jws_free(jws);
	return 0;
}
