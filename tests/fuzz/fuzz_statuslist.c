/*
 * Fuzz target: Token Status Lists (core/statuslist.c).  Each input is used
 * three ways:
 *   - as a Status List Token (compact JWS) for agentid_status_list_verify_jwt
 *     against the draft's example key and a fixed Ed25519 key;
 *   - as JSON: a status_list object for agentid_status_list_decode (whose
 *     result must survive encode/decode unchanged), and token claims for
 *     agentid_status_check_claims against a checker holding two lists;
 *   - as the payload of a statuslist+jwt that the target signs itself with
 *     the fixed key, so that mutations reach the checks after the signature.
 */
#include "fuzz_util.h"

#define MAX_LIST (1u << 20)

static const char draft_jwks[]
    = "{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": "
      "\"I3HWm_0Ds1dPMI-IWmf4mBmH-YaeAVbPVu7vB27CxXo\", \"y\": "
      "\"6N_d5Elj9bs1htgV3okJKIdbHEpkgTmAluYKJemzn1M\", \"kid\": \"12\", \"use\": \"sig\", "
      "\"alg\": \"ES256\"}]}";
/* The draft's Status List Token example (1-bit list, sub https://example.com/statuslists/1). */
static const char draft_jwt[]
    = "eyJhbGciOiJFUzI1NiIsImtpZCI6IjEyIiwidHlwIjoic3RhdHVzbGlzdCtqd3QifQ."
      "eyJleHAiOjIyOTE3MjAxNzAsImlhdCI6MTY4NjkyMDE3MCwiaXNzIjoiaHR0cHM6Ly9leGFtcGxlLmNvbSIsInN0YXR1"
      "c19saXN0Ijp7ImJpdHMiOjEsImxzdCI6ImVOcmJ1UmdBQWhjQlhRIn0sInN1YiI6Imh0dHBzOi8vZXhhbXBsZS5jb20v"
      "c3RhdHVzbGlzdHMvMSIsInR0bCI6NDMyMDB9."
      "2lKUUNG503R9htu4aHAYi7vjmr3sgApbfoDvPrl65N3URUO1EYqqQl45Jfzd-Av4QzlKa3oVALpLwOEUOq-U_g";

static struct agentid_keyset *keys;
static struct agentid_key *signer;
static struct agentid_status_checker *checker;
static struct fz_memfile files[2];

static void
setup(void)
{
	struct agentid_status_checker_config cfg;
	struct agentid_status_list_claims cl
	    = { "https://fz.example/sl/2", "https://fz.example", FZ_NOW - 10, FZ_NOW + 3600, 300 };
	struct agentid_status_list *l = NULL;
	char *jwt = NULL;
	size_t i;

	signer = fz_key(FZ_ED_JWK_PRIVATE);
	if (agentid_keyset_parse(draft_jwks, strlen(draft_jwks), &keys, NULL) != 0
	    || agentid_keyset_add(keys, signer) != 0)
		abort();
	/* A 2-bit list of 64 entries: 1 revoked, 2 suspended, 3 unknown (treated as revoked). */
	if (agentid_status_list_new(64, 2, &l) != 0)
		abort();
	for (i = 1; i < 64; i += 4)
		if (agentid_status_list_set(l, i, (unsigned)(i / 4 % 3) + 1) != 0)
			abort();
	if (agentid_status_list_sign(l, signer, AGENTID_ALG_EDDSA, &cl, &jwt) != 0)
		abort();
	fz_memfile_init(&files[0], "statuslist-draft");
	fz_memfile_set(&files[0], draft_jwt, strlen(draft_jwt));
	fz_memfile_init(&files[1], "statuslist-fz");
	fz_memfile_set(&files[1], jwt, strlen(jwt));
	agentid_free(jwt);
	agentid_status_list_free(l);

	agentid_status_checker_config_init(&cfg);
	cfg.keys = keys;
	cfg.max_list_bytes = MAX_LIST;
	if (agentid_status_checker_new(&cfg, &checker, NULL) != 0
	    || agentid_status_checker_add_source(
	           checker, "https://example.com/statuslists/1", files[0].path)
	        != 0
	    || agentid_status_checker_add_source(checker, "https://fz.example/sl/2", files[1].path)
	        != 0
	    || agentid_status_checker_refresh(checker, FZ_NOW, 1, NULL) != 0)
		abort();
}

static void
roundtrip(const struct agentid_status_list *l)
{
	struct agentid_status_list *l2 = NULL;
	const unsigned char *a, *b;
	size_t alen, blen;
	unsigned v;
	json_t *enc = NULL;

	a = agentid_status_list_bytes(l, &alen);
	if (agentid_status_list_size(l) > 0
	    && agentid_status_list_get(l, agentid_status_list_size(l) - 1, &v) != 0)
		abort();
	if (agentid_status_list_get(l, agentid_status_list_size(l), &v) == 0)
		abort();
	/* Re-encoding compresses at level 9: only worth it for small lists. */
	if (alen > 4096)
		return;
	if (agentid_status_list_encode(l, &enc) != 0)
		abort();
	if (agentid_status_list_decode(enc, MAX_LIST, &l2, NULL) != 0)
		abort();
	b = agentid_status_list_bytes(l2, &blen);
	if (alen != blen || memcmp(a, b, alen) != 0
	    || agentid_status_list_bits(l) != agentid_status_list_bits(l2))
		abort();
	agentid_status_list_free(l2);
	json_decref(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char hdr[]
	    = "{\"alg\":\"EdDSA\",\"kid\":\"fz-ed\",\"typ\":\"statuslist+jwt\"}";
	struct agentid_status_list_token *t = NULL;
	struct agentid_status_list *l = NULL;
	struct agentid_error err;
	json_t *j = NULL, *sl;
	char *jwt;

	if (checker == NULL)
		setup();
	if (agentid_status_list_verify_jwt(
	        (const char *)data, size, keys, 0, NULL, NULL, FZ_NOW, 0, MAX_LIST, &t, &err)
	    == 0)
		agentid_status_list_token_free(t);
	t = NULL;

	if (agentid_json_parse((const char *)data, size, 16, &j, NULL) == 0 && json_is_object(j)) {
		sl = json_object_get(j, "status_list");
		if (agentid_status_list_decode(sl != NULL ? sl : j, MAX_LIST, &l, &err) == 0) {
			roundtrip(l);
			agentid_status_list_free(l);
		}
		(void)agentid_status_check_claims(checker, j, FZ_NOW, &err);
	}
	json_decref(j);

	if ((jwt = fz_sign_compact(signer, AGENTID_ALG_EDDSA, hdr, strlen(hdr), data, size))
	    == NULL)
		abort();
	if (agentid_status_list_verify_jwt(jwt, strlen(jwt), keys, 0, NULL, "https://fz.example",
	        FZ_NOW, 30, MAX_LIST, &t, &err)
	    == 0) {
		if (t->list == NULL || t->sub == NULL)
			abort();
		agentid_status_list_token_free(t);
	}
	free(jwt);
	return 0;
}
