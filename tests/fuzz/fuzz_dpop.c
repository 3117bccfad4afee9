/*
 * Fuzz target: DPoP proofs at the token endpoint (token-exchange/dpop.c,
 * xc_dpop_verify), compiled in unchanged.  The store's replay cache is
 * replaced by a stub below (a jti ending in "replayed" counts as seen), so
 * the target needs no database and stays deterministic.
 *
 * An input without a newline is the proof itself (compact JWS).  An input
 * "HEADER\nPAYLOAD" is signed by the target: with the fixed P-256 key when
 * the header names ES256, else with the fixed Ed25519 key.  The header
 * must carry the matching public jwk to pass (the seeds do), so mutations
 * reach every check after the signature: htm, htu, iat, jti, thumbprint.
 *
 * fuzz-sources: token-exchange/dpop.c
 */
#include "fuzz_util.h"

#include "exchange.h"

static struct agentid_key *ed_key, *ec_key;

int
xc_store_replay_check(struct xc_store *store, const char *jti, int64_t exp)
{
	size_t n = strlen(jti);

	(void)store;
	if (exp <= 0 || strchr(jti, ':') == NULL)
		abort(); /* dpop.c keys the cache by "<jkt>:<jti>" until iat + window */
	return n >= 8 && strcmp(jti + n - 8, "replayed") == 0 ? AGENTID_EREJECTED : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char jkt[AGENTID_THUMBPRINT_LEN + 1];
	struct agentid_error err;
	const uint8_t *nl;
	char *proof;
	int r;

	if (ed_key == NULL) {
		ed_key = fz_key(FZ_ED_JWK_PRIVATE);
		ec_key = fz_key(FZ_EC_JWK_PRIVATE);
	}
	if ((nl = memchr(data, '\n', size)) == NULL)
		proof = fz_strndup(data, size);
	else {
		size_t hlen = (size_t)(nl - data);
		int es256 = memmem(data, hlen, "\"ES256\"", 7) != NULL;

		proof = fz_sign_compact(es256 ? ec_key : ed_key,
		    es256 ? AGENTID_ALG_ES256 : AGENTID_ALG_EDDSA, data, hlen, nl + 1,
		    size - hlen - 1);
		if (proof == NULL)
			abort();
	}
	memset(&err, 0, sizeof(err));
	r = xc_dpop_verify(NULL, proof, "POST", "https://as.example/token", FZ_NOW, 60, jkt, &err);
	if (r == 0 && strlen(jkt) != 43)
		abort(); /* a base64url SHA-256 thumbprint */
	if (r != 0 && (jkt[0] != '\0' || r != AGENTID_EREJECTED))
		abort();
	free(proof);
	return 0;
}
