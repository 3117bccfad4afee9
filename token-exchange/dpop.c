/*
 * DPoP proofs at the token endpoint (RFC 9449 section 4.3): the proof is a
 * JWS with typ dpop+jwt whose header carries the public key (jwk) that
 * signed it; it names the request (htm, htu), is fresh (iat) and unique
 * (jti).  Uniqueness is checked in the store's replay cache, so a proof
 * cannot be replayed against another node or after a restart.  The issued
 * token is bound to the key's RFC 7638 thumbprint (cnf.jkt).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"

#define DPOP_JTI_MAX 256
#define DPOP_MAX_LEN 8192

/* htu compares without query and fragment (RFC 9449 section 4.3, item 9). */
static int
htu_matches(const char *htu, const char *want)
{
	size_t n = strcspn(htu, "?#");

	return strlen(want) == n && strncmp(htu, want, n) == 0;
}

int
xc_dpop_verify(struct xc_store *store, const char *proof, const char *htm, const char *htu,
    time_t now, long window, char jkt[AGENTID_THUMBPRINT_LEN + 1], struct agentid_error *err)
{
	struct agentid_limits lim;
	struct agentid_jws *jws = NULL;
	struct agentid_key *key = NULL;
	const json_t *jwk, *j;
	char seen[AGENTID_THUMBPRINT_LEN + DPOP_JTI_MAX + 2];
	int64_t iat;
	int r;

	jkt[0] = '\0';
	agentid_limits_init(&lim);
	lim.max_token_len = DPOP_MAX_LEN;
	if ((r = agentid_jws_parse(proof, strlen(proof), &lim, &jws, err)) != 0)
		goto fail;
	if (jws->typ == NULL || strcmp(jws->typ, "dpop+jwt") != 0) {
		r = agentid_error_set(err, AGENTID_R_DPOP_INVALID, "typ must be dpop+jwt");
		goto out;
	}
	jwk = json_object_get(jws->header, "jwk");
	if (!json_is_object(jwk)) {
		r = agentid_error_set(err, AGENTID_R_DPOP_INVALID, "jwk header missing");
		goto out;
	}
	if (json_object_get(jwk, "d") != NULL || json_object_get(jwk, "p") != NULL
	    || json_object_get(jwk, "k") != NULL) {
		r = agentid_error_set(err, AGENTID_R_DPOP_INVALID, "jwk must be a public key");
		goto out;
	}
	if ((r = agentid_key_from_jwk(jwk, &key, err)) != 0) {
		if (r != AGENTID_EREJECTED)
			agentid_error_set(err, AGENTID_R_DPOP_INVALID, "unusable jwk");
		r = AGENTID_EREJECTED;
		goto out;
	}
	if (agentid_key_is_private(key) || !agentid_key_supports_alg(key, jws->alg)) {
		r = agentid_error_set(err, AGENTID_R_DPOP_INVALID, "jwk does not fit alg");
		goto out;
	}
	if ((r = agentid_jws_verify(jws, key, err)) != 0)
		goto out;
	j = json_object_get(jws->payload, "htm");
	if (!json_is_string(j) || strcmp(json_string_value(j), htm) != 0) {
		r = agentid_error_set(err, AGENTID_R_DPOP_INVALID, "htm does not match");
		goto out;
	}
	j = json_object_get(jws->payload, "htu");
	if (!json_is_string(j) || !htu_matches(json_string_value(j), htu)) {
		r = agentid_error_set(err, AGENTID_R_DPOP_INVALID, "htu does not match %s", htu);
		goto out;
	}
	j = json_object_get(jws->payload, "iat");
	if (!json_is_integer(j)) {
		r = agentid_error_set(err, AGENTID_R_DPOP_INVALID, "iat missing");
		goto out;
	}
	iat = (int64_t)json_integer_value(j);
	if (iat > (int64_t)now + window || iat < (int64_t)now - window) {
		r = agentid_error_set(
		    err, AGENTID_R_DPOP_INVALID, "iat outside the accepted window");
		goto out;
	}
	j = json_object_get(jws->payload, "jti");
	if (!json_is_string(j) || json_string_length(j) == 0
	    || json_string_length(j) > DPOP_JTI_MAX) {
		r = agentid_error_set(err, AGENTID_R_DPOP_INVALID, "jti missing or too long");
		goto out;
	}
	if (agentid_key_thumbprint(key, jkt, AGENTID_THUMBPRINT_LEN + 1) != 0) {
		r = agentid_error_set(err, AGENTID_R_INTERNAL, "thumbprint failed");
		goto out;
	}
	/*
	 * Remember the jti until no proof with this iat can be accepted any
	 * more.  Keyed by key and jti, so one client cannot burn another's jti.
	 */
	snprintf(seen, sizeof(seen), "%s:%s", jkt, json_string_value(j));
	r = xc_store_replay_check(store, seen, iat + window + 1);
	if (r == AGENTID_EREJECTED)
		agentid_error_set(err, AGENTID_R_DPOP_REPLAY, "proof jti was already used");
	else if (r != 0)
		r = agentid_error_set(err, AGENTID_R_INTERNAL, "replay cache unavailable");
	goto out;
fail:
	if (r != AGENTID_EREJECTED)
		r = agentid_error_set(err, AGENTID_R_DPOP_INVALID, "malformed proof");
out:
	if (r != 0)
		jkt[0] = '\0';
	agentid_key_free(key);
	agentid_jws_free(jws);
	return r;
}
