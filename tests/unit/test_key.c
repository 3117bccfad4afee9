/*
 * Unit tests: JWK / PEM keys, RFC 7638 thumbprints, x5c, JWK Sets.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "testutil.h"

/* Loads a JWK vector; returns the agentid code, reason in *reason. */
static int
load_jwk_vector(const char *name, struct agentid_key **key, const char **reason)
{
	struct agentid_error err;
	json_t *jwk;
	char *text;
	size_t len;
	int r;

	agentid_error_clear(&err);
	*key = NULL;
	text = tu_read_vector(name, &len);
	CU_ASSERT_FATAL(text != NULL);
	r = agentid_json_parse(text, len, 16, &jwk, &err);
	free(text);
	CU_ASSERT_FATAL(r == 0);
	r = agentid_key_from_jwk(jwk, key, &err);
	json_decref(jwk);
	if (reason != NULL)
		*reason = agentid_reason_code(err.reason);
	return r;
}

/* Parses JWK JSON text. */
static int
jwk_text(const char *text, struct agentid_key **key, const char **reason)
{
	struct agentid_error err;
	json_t *jwk = NULL;
	int r;

	agentid_error_clear(&err);
	*key = NULL;
	CU_ASSERT_FATAL(agentid_json_parse(text, strlen(text), 16, &jwk, &err) == 0);
	r = agentid_key_from_jwk(jwk, key, &err);
	json_decref(jwk);
	if (reason != NULL)
		*reason = agentid_reason_code(err.reason);
	return r;
}

static void
test_rfc7638_thumbprint(void)
{
	struct agentid_key *key;
	char tp[AGENTID_THUMBPRINT_LEN + 1];

	CU_ASSERT_FATAL(load_jwk_vector("jose/rfc7638-example.json", &key, NULL) == 0);
	CU_ASSERT(agentid_key_thumbprint(key, tp, sizeof(tp)) == 0);
	CU_ASSERT_STRING_EQUAL(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	/* kid and alg are kept but are not part of the thumbprint. */
	CU_ASSERT_STRING_EQUAL(agentid_key_kid(key), "2011-04-29");
	CU_ASSERT(agentid_key_alg(key) == AGENTID_ALG_RS256);
	CU_ASSERT(!agentid_key_is_private(key));
	/* Too small an output buffer. */
	CU_ASSERT(agentid_key_thumbprint(key, tp, AGENTID_THUMBPRINT_LEN) == AGENTID_ERANGE);
	agentid_key_free(key);
}

static void
test_rfc8037_ed25519(void)
{
	struct agentid_key *key;
	struct agentid_error err;
	char tp[AGENTID_THUMBPRINT_LEN + 1];
	char *jws;
	const char *dot;
	unsigned char sig[64];
	size_t len, siglen;

	CU_ASSERT_FATAL(load_jwk_vector("jose/rfc8037-ed25519.json", &key, NULL) == 0);
	CU_ASSERT(agentid_key_is_private(key));
	CU_ASSERT(agentid_key_thumbprint(key, tp, sizeof(tp)) == 0);
	CU_ASSERT_STRING_EQUAL(tp, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
	CU_ASSERT(agentid_key_default_alg(key) == AGENTID_ALG_EDDSA);
	/* RFC 8037 A.4: the payload is not JSON, so check the raw signature. */
	jws = tu_read_vector("jose/rfc8037-a4.jws", &len);
	CU_ASSERT_FATAL(jws != NULL);
	dot = strrchr(jws, '.');
	CU_ASSERT_FATAL(dot != NULL);
	CU_ASSERT_FATAL(agentid_b64url_decode(dot + 1, strlen(dot + 1), sig, sizeof(sig),
	    &siglen) == 0);
	CU_ASSERT(agentid_sig_verify(key, AGENTID_ALG_EDDSA, jws, (size_t)(dot - jws), sig, siglen,
	    &err) == 0);
	sig[10] ^= 1;
	CU_ASSERT(agentid_sig_verify(key, AGENTID_ALG_EDDSA, jws, (size_t)(dot - jws), sig, siglen,
	    &err) == AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_signature");
	free(jws);
	agentid_key_free(key);
}

static void
test_reject_weak_and_bad_keys(void)
{
	static const struct {
		const char *vector;
		int code;
		const char *reason;
	} v[] = {
		{ "jose/jwk-rsa-1024.json", AGENTID_EREJECTED, "bad_key" },
		{ "jose/jwk-ec-point-not-on-curve.json", AGENTID_EREJECTED, "bad_key" },
		{ "jose/jwk-ec-short-coordinate.json", AGENTID_EREJECTED, "bad_key" },
		{ "jose/jwk-ed25519-d-mismatch.json", AGENTID_EREJECTED, "bad_key" },
		{ "jose/jwk-ec-secp256k1.json", AGENTID_EUNSUPPORTED, NULL },
		{ "jose/jwk-okp-x25519.json", AGENTID_EUNSUPPORTED, NULL },
		{ "jose/jwk-x5c-key-mismatch.json", AGENTID_EREJECTED, "key_mismatch" },
		{ "jose/jwk-x5c-base64url.json", AGENTID_EREJECTED, "bad_encoding" },
	};
	struct agentid_key *key;
	const char *reason;
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		int r = load_jwk_vector(v[i].vector, &key, &reason);

		if (r != v[i].code)
			fprintf(stderr, "\n%s: got %d (%s)\n", v[i].vector, r, reason);
		CU_ASSERT(r == v[i].code);
		CU_ASSERT(key == NULL);
		if (v[i].reason != NULL)
			CU_ASSERT_STRING_EQUAL(reason, v[i].reason);
	}
}

static void
test_jwk_member_rules(void)
{
	static const struct {
		const char *jwk;
		int code;
		const char *reason;
	} v[] = {
		{ "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}", AGENTID_EUNSUPPORTED, NULL },
		{ "{\"kty\":\"RSA-X\"}", AGENTID_EUNSUPPORTED, NULL },
		{ "{\"n\":\"AQAB\",\"e\":\"AQAB\"}", AGENTID_EREJECTED, "bad_key" },
		{ "{\"kty\":1}", AGENTID_EREJECTED, "bad_key" },
		{ "[]", AGENTID_EREJECTED, "bad_key" },
		{ "{\"kty\":\"EC\",\"crv\":\"P-256\"}", AGENTID_EREJECTED, "bad_key" },
		{ "{\"kty\":\"EC\",\"x\":\"AA\",\"y\":\"AA\"}", AGENTID_EREJECTED, "bad_key" },
		{ "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA==\",\"y\":\"AA\"}", AGENTID_EREJECTED,
		    "bad_encoding" },
		{ "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":7,\"y\":\"AA\"}", AGENTID_EREJECTED,
		    "bad_key" },
		{ "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}", AGENTID_EREJECTED, "bad_key" },
		{ "{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"AAAA\"}", AGENTID_EUNSUPPORTED, NULL },
		{ "{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}", AGENTID_EREJECTED, "bad_key" },
		{ "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":5,"
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}", AGENTID_EREJECTED,
		    "bad_key" },
		{ "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"alg\":\"RSA-OAEP\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}", AGENTID_EUNSUPPORTED, NULL },
		{ "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"alg\":\"ES256\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}", AGENTID_EREJECTED,
		    "key_mismatch" },
		/* "Ed25519" (RFC 9864) names one curve: an EC key or an Ed448 key is no fit. */
		{ "{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"Ed25519\","
		  "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
		  "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}", AGENTID_EREJECTED,
		    "key_mismatch" },
		{ "{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"alg\":\"Ed25519\",\"x\":\"AAAA\"}",
		    AGENTID_EUNSUPPORTED, NULL },
		{ "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"alg\":\"Ed448\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}", AGENTID_EUNSUPPORTED, NULL },
		{ "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x5c\":\"MII\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}", AGENTID_EREJECTED,
		    "bad_key" },
		{ "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x5c\":[\"AAAA\"],"
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}", AGENTID_EREJECTED,
		    "cert_invalid" },
	};
	struct agentid_key *key;
	const char *reason;
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		int r = jwk_text(v[i].jwk, &key, &reason);

		if (r != v[i].code || (v[i].reason != NULL && strcmp(reason, v[i].reason) != 0))
			fprintf(stderr, "\ncase %zu: got %d (%s)\n", i, r, reason);
		CU_ASSERT(r == v[i].code);
		CU_ASSERT(key == NULL);
		if (v[i].reason != NULL)
			CU_ASSERT_STRING_EQUAL(reason, v[i].reason);
	}
}

static void
test_supports_alg(void)
{
	struct agentid_key *p256, *p384, *p521, *rsa, *ed, *rsa1024 = NULL;
	EVP_PKEY *small;
	int a;

	CU_ASSERT_FATAL(agentid_key_generate(AGENTID_ALG_ES256, &p256) == 0);
	CU_ASSERT_FATAL(agentid_key_generate(AGENTID_ALG_ES384, &p384) == 0);
	CU_ASSERT_FATAL(agentid_key_generate(AGENTID_ALG_ES512, &p521) == 0);
	CU_ASSERT_FATAL(load_jwk_vector("jose/rsa2048-key.json", &rsa, NULL) == 0);
	CU_ASSERT_FATAL(agentid_key_generate(AGENTID_ALG_EDDSA, &ed) == 0);
	for (a = AGENTID_ALG_UNKNOWN; a < AGENTID_ALG__COUNT; a++) {
		CU_ASSERT(agentid_key_supports_alg(p256, a) == (a == AGENTID_ALG_ES256));
		CU_ASSERT(agentid_key_supports_alg(p384, a) == (a == AGENTID_ALG_ES384));
		CU_ASSERT(agentid_key_supports_alg(p521, a) == (a == AGENTID_ALG_ES512));
		CU_ASSERT(agentid_key_supports_alg(rsa, a) ==
		    ((AGENTID_ALG_BIT(a) & AGENTID_ALGS_RSA) != 0));
		/* Both names of Ed25519 signatures, RFC 8037 and RFC 9864. */
		CU_ASSERT(agentid_key_supports_alg(ed, a) ==
		    (a == AGENTID_ALG_EDDSA || a == AGENTID_ALG_ED25519));
	}
	CU_ASSERT(agentid_key_default_alg(p256) == AGENTID_ALG_ES256);
	CU_ASSERT(agentid_key_default_alg(p384) == AGENTID_ALG_ES384);
	CU_ASSERT(agentid_key_default_alg(p521) == AGENTID_ALG_ES512);
	CU_ASSERT(agentid_key_default_alg(rsa) == AGENTID_ALG_RS256);
	CU_ASSERT(agentid_key_default_alg(ed) == AGENTID_ALG_EDDSA);
	CU_ASSERT(agentid_key_supports_alg(NULL, AGENTID_ALG_ES256) == 0);

	/* The JWK "alg" restriction narrows an RSA key to one algorithm. */
	CU_ASSERT(agentid_key_set_alg(rsa, AGENTID_ALG_PS256) == 0);
	CU_ASSERT(agentid_key_supports_alg(rsa, AGENTID_ALG_PS256));
	CU_ASSERT(!agentid_key_supports_alg(rsa, AGENTID_ALG_RS256));
	CU_ASSERT(agentid_key_default_alg(rsa) == AGENTID_ALG_PS256);
	/* A restriction the key cannot honour is refused. */
	CU_ASSERT(agentid_key_set_alg(rsa, AGENTID_ALG_ES256) == AGENTID_EINVAL);
	CU_ASSERT(agentid_key_alg(rsa) == AGENTID_ALG_PS256);
	CU_ASSERT(agentid_key_set_alg(rsa, AGENTID_ALG_UNKNOWN) == 0);
	CU_ASSERT(agentid_key_supports_alg(rsa, AGENTID_ALG_RS256));
	CU_ASSERT(agentid_key_set_alg(rsa, AGENTID_ALG_ED25519) == AGENTID_EINVAL);
	CU_ASSERT(agentid_key_set_alg(p256, AGENTID_ALG_ED25519) == AGENTID_EINVAL);
	CU_ASSERT(agentid_key_alg(p256) == AGENTID_ALG_UNKNOWN);

	/*
	 * An Ed25519 key marked with one of its two names serves only that
	 * name; the mark also becomes its default algorithm.
	 */
	CU_ASSERT(agentid_key_set_alg(ed, AGENTID_ALG_ED25519) == 0);
	CU_ASSERT(agentid_key_supports_alg(ed, AGENTID_ALG_ED25519));
	CU_ASSERT(!agentid_key_supports_alg(ed, AGENTID_ALG_EDDSA));
	CU_ASSERT(agentid_key_default_alg(ed) == AGENTID_ALG_ED25519);
	CU_ASSERT(agentid_key_set_alg(ed, AGENTID_ALG_EDDSA) == 0);
	CU_ASSERT(agentid_key_supports_alg(ed, AGENTID_ALG_EDDSA));
	CU_ASSERT(!agentid_key_supports_alg(ed, AGENTID_ALG_ED25519));
	CU_ASSERT(agentid_key_set_alg(ed, AGENTID_ALG_UNKNOWN) == 0);
	CU_ASSERT(agentid_key_default_alg(ed) == AGENTID_ALG_EDDSA);

	/* "use":"enc" keys never verify signatures. */
	CU_ASSERT(agentid_key_set_use(p256, "enc") == 0);
	CU_ASSERT(!agentid_key_supports_alg(p256, AGENTID_ALG_ES256));
	CU_ASSERT(agentid_key_set_use(p256, "sig") == 0);
	CU_ASSERT_STRING_EQUAL(agentid_key_use(p256), "sig");
	CU_ASSERT(agentid_key_supports_alg(p256, AGENTID_ALG_ES256));

	/* An RSA-1024 EVP_PKEY is refused however it arrives. */
	small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	CU_ASSERT_FATAL(small != NULL);
	CU_ASSERT(agentid_key_from_evp(small, &rsa1024) == AGENTID_EREJECTED);
	CU_ASSERT(rsa1024 == NULL);
	EVP_PKEY_free(small);

	agentid_key_free(p256);
	agentid_key_free(p384);
	agentid_key_free(p521);
	agentid_key_free(rsa);
	agentid_key_free(ed);
}

static void
test_jwk_export_import(void)
{
	static const enum agentid_alg algs[] = { AGENTID_ALG_ES256, AGENTID_ALG_ES384,
		AGENTID_ALG_ES512, AGENTID_ALG_EDDSA, AGENTID_ALG_ED25519 };
	struct agentid_key *key, *back;
	struct agentid_error err;
	char tp1[64], tp2[64];
	json_t *jwk;
	size_t i;

	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		CU_ASSERT_FATAL(agentid_key_generate(algs[i], &key) == 0);
		CU_ASSERT(agentid_key_is_private(key));
		CU_ASSERT(agentid_key_thumbprint(key, tp1, sizeof(tp1)) == 0);
		CU_ASSERT(strlen(tp1) == AGENTID_THUMBPRINT_LEN);
		CU_ASSERT(agentid_key_set_kid(key, tp1) == 0);
		CU_ASSERT(agentid_key_set_alg(key, algs[i]) == 0);
		CU_ASSERT(agentid_key_set_use(key, "sig") == 0);
		CU_ASSERT_FATAL(agentid_key_to_jwk(key, &jwk) == 0);
		/* Public members only. */
		CU_ASSERT(json_object_get(jwk, "d") == NULL);
		CU_ASSERT(json_object_get(jwk, "x5c") == NULL);
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(jwk, "kid")), tp1);
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(jwk, "alg")),
		    agentid_alg_name(algs[i]));
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(jwk, "use")), "sig");
		CU_ASSERT_FATAL(agentid_key_from_jwk(jwk, &back, &err) == 0);
		CU_ASSERT(!agentid_key_is_private(back));
		CU_ASSERT(EVP_PKEY_eq(agentid_key_evp(key), agentid_key_evp(back)) == 1);
		CU_ASSERT(agentid_key_thumbprint(back, tp2, sizeof(tp2)) == 0);
		CU_ASSERT_STRING_EQUAL(tp1, tp2);
		CU_ASSERT_STRING_EQUAL(agentid_key_kid(back), tp1);
		CU_ASSERT(agentid_key_alg(back) == algs[i]);
		json_decref(jwk);
		agentid_key_free(back);
		agentid_key_free(key);
	}
}

static void
test_rsa_jwk_roundtrip(void)
{
	struct agentid_key *key, *back;
	struct agentid_error err;
	json_t *jwk;
	const char *n;

	CU_ASSERT_FATAL(load_jwk_vector("jose/rfc7638-example.json", &key, NULL) == 0);
	CU_ASSERT_FATAL(agentid_key_to_jwk(key, &jwk) == 0);
	/* Minimal big-endian n, exactly as the RFC writes it. */
	n = json_string_value(json_object_get(jwk, "n"));
	CU_ASSERT(n != NULL && strncmp(n, "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4", 52) ==
	    0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(jwk, "e")), "AQAB");
	CU_ASSERT_FATAL(agentid_key_from_jwk(jwk, &back, &err) == 0);
	CU_ASSERT(EVP_PKEY_eq(agentid_key_evp(key), agentid_key_evp(back)) == 1);
	json_decref(jwk);
	agentid_key_free(back);
	agentid_key_free(key);
}

static void
test_private_jwk_sign(void)
{
	struct agentid_key *key, *pub;
	struct agentid_error err;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	json_t *jwk;

	/* A private JWK from another implementation: sign, verify with the public half. */
	CU_ASSERT_FATAL(load_jwk_vector("jose/es256-private-key.json", &key, NULL) == 0);
	CU_ASSERT(agentid_key_is_private(key));
	CU_ASSERT_FATAL(agentid_sig_sign(key, AGENTID_ALG_ES256, "abc", 3, &sig, &sig_len) == 0);
	CU_ASSERT(sig_len == 64);
	CU_ASSERT_FATAL(agentid_key_to_jwk(key, &jwk) == 0);
	CU_ASSERT_FATAL(agentid_key_from_jwk(jwk, &pub, &err) == 0);
	CU_ASSERT(agentid_sig_verify(pub, AGENTID_ALG_ES256, "abc", 3, sig, sig_len, &err) == 0);
	/* A public key cannot sign. */
	agentid_free(sig);
	sig = NULL;
	CU_ASSERT(agentid_sig_sign(pub, AGENTID_ALG_ES256, "abc", 3, &sig, &sig_len) ==
	    AGENTID_EINVAL);
	CU_ASSERT(sig == NULL);
	agentid_key_free(pub);
	agentid_key_free(key);

	/* "d" that does not belong to x,y (d = 1), and "d" of the wrong length. */
	json_object_set_new(jwk, "d", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"));
	CU_ASSERT(agentid_key_from_jwk(jwk, &key, &err) == AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_key");
	json_object_set_new(jwk, "d", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"));
	CU_ASSERT(agentid_key_from_jwk(jwk, &key, &err) == AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_key");
	/* d = 0 is not a private key at all. */
	json_object_set_new(jwk, "d", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	CU_ASSERT(agentid_key_from_jwk(jwk, &key, &err) == AGENTID_EREJECTED);
	CU_ASSERT(key == NULL);
	json_decref(jwk);
}

static void
test_rsa_private_jwk(void)
{
	struct agentid_key *key, *pub;
	struct agentid_error err;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	json_t *jwk = NULL, *orig;
	char *text;
	size_t len;

	text = tu_read_vector("jose/rsa2048-private-key.json", &len);
	CU_ASSERT_FATAL(text != NULL);
	CU_ASSERT_FATAL(agentid_json_parse(text, len, 16, &orig, &err) == 0);
	free(text);
	CU_ASSERT_FATAL(agentid_key_from_jwk(orig, &key, &err) == 0);
	CU_ASSERT(agentid_key_is_private(key));
	CU_ASSERT_FATAL(load_jwk_vector("jose/rsa2048-key.json", &pub, NULL) == 0);
	CU_ASSERT_FATAL(agentid_sig_sign(key, AGENTID_ALG_PS384, "m", 1, &sig, &sig_len) == 0);
	CU_ASSERT(sig_len == 256);
	CU_ASSERT(agentid_sig_verify(pub, AGENTID_ALG_PS384, "m", 1, sig, sig_len, &err) == 0);
	/* The same bytes are not a valid PS256 or RS384 signature. */
	CU_ASSERT(agentid_sig_verify(pub, AGENTID_ALG_PS256, "m", 1, sig, sig_len, &err) ==
	    AGENTID_EREJECTED);
	CU_ASSERT(agentid_sig_verify(pub, AGENTID_ALG_RS384, "m", 1, sig, sig_len, &err) ==
	    AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_signature");
	agentid_free(sig);
	agentid_key_free(key);
	agentid_key_free(pub);

	/* Factors that do not multiply to n. */
	jwk = json_deep_copy(orig);
	json_object_set(jwk, "p", json_object_get(orig, "q"));
	CU_ASSERT(agentid_key_from_jwk(jwk, &key, &err) == AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_key");
	CU_ASSERT(key == NULL);
	json_decref(jwk);
	/* A private key without its CRT members. */
	jwk = json_deep_copy(orig);
	json_object_del(jwk, "qi");
	CU_ASSERT(agentid_key_from_jwk(jwk, &key, &err) == AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_key");
	json_decref(jwk);
	/* Multi-prime RSA. */
	jwk = json_deep_copy(orig);
	json_object_set_new(jwk, "oth", json_array());
	CU_ASSERT(agentid_key_from_jwk(jwk, &key, &err) == AGENTID_EUNSUPPORTED);
	json_decref(jwk);
	/* Leading zero octet in n, and an even exponent. */
	jwk = json_deep_copy(orig);
	json_object_del(jwk, "d");
	{
		unsigned char nbuf[300];
		size_t nlen;
		const char *n = json_string_value(json_object_get(jwk, "n"));
		char *enc = NULL;

		CU_ASSERT_FATAL(agentid_b64url_decode(n, strlen(n), nbuf + 1, sizeof(nbuf) - 1,
		    &nlen) == 0);
		nbuf[0] = 0;
		CU_ASSERT_FATAL(agentid_b64url_encode_alloc(nbuf, nlen + 1, &enc) == 0);
		json_object_set_new(jwk, "n", json_string(enc));
		agentid_free(enc);
		CU_ASSERT(agentid_key_from_jwk(jwk, &key, &err) == AGENTID_EREJECTED);
		CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_key");
	}
	json_object_set(jwk, "n", json_object_get(orig, "n"));
	json_object_set_new(jwk, "e", json_string("AQAA"));
	CU_ASSERT(agentid_key_from_jwk(jwk, &key, &err) == AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_key");
	json_object_set_new(jwk, "e", json_string("AQAB"));
	CU_ASSERT(agentid_key_from_jwk(jwk, &key, &err) == 0);
	agentid_key_free(key);
	json_decref(jwk);
	json_decref(orig);
}

static void
test_x5c(void)
{
	struct agentid_key *key, *back, *pem;
	struct agentid_error err;
	json_t *jwk, *x5c;
	char *certpem;
	size_t len;

	CU_ASSERT_FATAL(load_jwk_vector("jose/jwk-x5c-valid.json", &key, NULL) == 0);
	CU_ASSERT_FATAL(agentid_key_cert(key) != NULL);
	CU_ASSERT_FATAL(agentid_key_cert_chain(key) != NULL);
	CU_ASSERT(sk_X509_num(agentid_key_cert_chain(key)) == 1);
	CU_ASSERT(EVP_PKEY_eq(X509_get0_pubkey(agentid_key_cert(key)), agentid_key_evp(key)) == 1);

	/* The certificate PEM of the same key gives the same certificate. */
	certpem = tu_read_vector("jose/es256-cert.pem", &len);
	CU_ASSERT_FATAL(certpem != NULL);
	CU_ASSERT_FATAL(agentid_key_from_pem(certpem, len, &pem, &err) == 0);
	CU_ASSERT(X509_cmp(agentid_key_cert(pem), agentid_key_cert(key)) == 0);
	CU_ASSERT(!agentid_key_is_private(pem));
	CU_ASSERT(agentid_key_cert_chain(pem) == NULL);
	free(certpem);

	/* Export keeps x5c (leaf first, then the chain) and it imports back. */
	CU_ASSERT_FATAL(agentid_key_to_jwk(key, &jwk) == 0);
	x5c = json_object_get(jwk, "x5c");
	CU_ASSERT_FATAL(json_is_array(x5c) && json_array_size(x5c) == 2);
	CU_ASSERT_FATAL(agentid_key_from_jwk(jwk, &back, &err) == 0);
	CU_ASSERT(X509_cmp(agentid_key_cert(back), agentid_key_cert(key)) == 0);
	CU_ASSERT(X509_cmp(sk_X509_value(agentid_key_cert_chain(back), 0),
	    sk_X509_value(agentid_key_cert_chain(key), 0)) == 0);
	json_decref(jwk);
	agentid_key_free(back);
	agentid_key_free(pem);
	agentid_key_free(key);
}

static void
test_pem(void)
{
	struct agentid_key *key, *priv, *pub, *other = NULL;
	struct agentid_error err;
	char *pem, *text, *p8 = NULL;
	json_t *jwk;
	size_t len;
	BIO *bio;
	long n;

	/* A public key PEM made by another implementation equals the JWK. */
	text = tu_read_vector("jose/es256-key.pem", &len);
	CU_ASSERT_FATAL(text != NULL);
	CU_ASSERT_FATAL(agentid_key_from_pem(text, len, &pub, &err) == 0);
	CU_ASSERT(!agentid_key_is_private(pub));
	CU_ASSERT(agentid_key_cert(pub) == NULL);
	free(text);
	CU_ASSERT_FATAL(load_jwk_vector("jose/es256-key.json", &key, NULL) == 0);
	CU_ASSERT(EVP_PKEY_eq(agentid_key_evp(pub), agentid_key_evp(key)) == 1);
	agentid_key_free(key);
	agentid_key_free(pub);

	/* Private PEM (PKCS#8) round trip, and the public PEM of it. */
	CU_ASSERT_FATAL(agentid_key_generate(AGENTID_ALG_ES384, &key) == 0);
	CU_ASSERT_FATAL(agentid_key_to_pem(key, 0, &pem) == 0);
	CU_ASSERT(strstr(pem, "-----BEGIN PRIVATE KEY-----") != NULL);
	CU_ASSERT_FATAL(agentid_key_from_pem(pem, strlen(pem), &priv, &err) == 0);
	CU_ASSERT(agentid_key_is_private(priv));
	CU_ASSERT(EVP_PKEY_eq(agentid_key_evp(priv), agentid_key_evp(key)) == 1);
	agentid_free(pem);
	CU_ASSERT_FATAL(agentid_key_to_pem(key, 1, &pem) == 0);
	CU_ASSERT(strstr(pem, "-----BEGIN PUBLIC KEY-----") != NULL);
	CU_ASSERT_FATAL(agentid_key_from_pem(pem, strlen(pem), &pub, &err) == 0);
	CU_ASSERT(!agentid_key_is_private(pub));
	/* A public key has no private PEM. */
	agentid_free(pem);
	pem = NULL;
	CU_ASSERT(agentid_key_to_pem(pub, 0, &pem) == AGENTID_EINVAL);
	CU_ASSERT(pem == NULL);

	/* An encrypted private key is refused without prompting for a passphrase. */
	bio = BIO_new(BIO_s_mem());
	CU_ASSERT_FATAL(PEM_write_bio_PKCS8PrivateKey(bio, agentid_key_evp(key), EVP_aes_128_cbc(),
	    "pass", 4, NULL, NULL) == 1);
	n = BIO_get_mem_data(bio, &p8);
	CU_ASSERT(agentid_key_from_pem(p8, (size_t)n, &other, &err) == AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_key");
	CU_ASSERT(other == NULL);
	BIO_free(bio);

	/* Garbage, and a truncated PEM. */
	CU_ASSERT(agentid_key_from_pem("hello", 5, &other, &err) == AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_key");
	text = tu_read_vector("jose/es256-key.pem", &len);
	CU_ASSERT_FATAL(text != NULL);
	CU_ASSERT(agentid_key_from_pem(text, len / 2, &other, &err) == AGENTID_EREJECTED);
	CU_ASSERT(other == NULL);
	free(text);

	/* Export of a JWK from a PEM key works (no kid until set). */
	CU_ASSERT_FATAL(agentid_key_to_jwk(pub, &jwk) == 0);
	CU_ASSERT(json_object_get(jwk, "kid") == NULL);
	json_decref(jwk);
	agentid_key_free(priv);
	agentid_key_free(pub);
	agentid_key_free(key);
}

static void
test_files(void)
{
	struct agentid_key *key, *back;
	struct agentid_error err;
	const char *dir = tu_tmpdir(), *path;
	char tp1[64], tp2[64], full[4096];
	struct stat st;
	char *text;
	size_t len;

	CU_ASSERT_FATAL(agentid_key_generate(AGENTID_ALG_EDDSA, &key) == 0);
	snprintf(full, sizeof(full), "%s/issuer.key", dir);
	CU_ASSERT_FATAL(agentid_key_write_private_file(key, full) == 0);
	CU_ASSERT_FATAL(stat(full, &st) == 0);
	CU_ASSERT((st.st_mode & 0777) == 0600);
	CU_ASSERT_FATAL(agentid_key_load_file(full, &back, &err) == 0);
	CU_ASSERT(agentid_key_is_private(back));
	CU_ASSERT(agentid_key_thumbprint(key, tp1, sizeof(tp1)) == 0);
	CU_ASSERT(agentid_key_thumbprint(back, tp2, sizeof(tp2)) == 0);
	CU_ASSERT_STRING_EQUAL(tp1, tp2);
	agentid_key_free(back);
	agentid_key_free(key);

	/* Replacing an existing file keeps mode 0600 and the new content. */
	CU_ASSERT_FATAL(agentid_key_generate(AGENTID_ALG_ES256, &key) == 0);
	CU_ASSERT_FATAL(agentid_key_write_private_file(key, full) == 0);
	CU_ASSERT_FATAL(stat(full, &st) == 0);
	CU_ASSERT((st.st_mode & 0777) == 0600);
	CU_ASSERT_FATAL(agentid_key_load_file(full, &back, &err) == 0);
	CU_ASSERT(agentid_key_default_alg(back) == AGENTID_ALG_ES256);
	agentid_key_free(back);
	agentid_key_free(key);

	/* A JWK file. */
	text = tu_read_vector("jose/rfc7638-example.json", &len);
	CU_ASSERT_FATAL(text != NULL);
	path = tu_write_file(dir, "key.jwk", text, len);
	CU_ASSERT_FATAL(path != NULL);
	CU_ASSERT_FATAL(agentid_key_load_file(path, &back, &err) == 0);
	CU_ASSERT(agentid_key_thumbprint(back, tp1, sizeof(tp1)) == 0);
	CU_ASSERT_STRING_EQUAL(tp1, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	agentid_key_free(back);
	free(text);

	snprintf(full, sizeof(full), "%s/missing.key", dir);
	CU_ASSERT(agentid_key_load_file(full, &back, &err) == AGENTID_ENOTFOUND);
	CU_ASSERT(back == NULL);
	/* Writing into a directory that does not exist fails cleanly. */
	CU_ASSERT_FATAL(agentid_key_generate(AGENTID_ALG_ES256, &key) == 0);
	snprintf(full, sizeof(full), "%s/nodir/x.key", dir);
	CU_ASSERT(agentid_key_write_private_file(key, full) == AGENTID_EIO);
	agentid_key_free(key);
}

static void
test_refcount(void)
{
	struct agentid_key *key;

	CU_ASSERT_FATAL(agentid_key_generate(AGENTID_ALG_ES256, &key) == 0);
	CU_ASSERT(agentid_key_ref(key) == key);
	agentid_key_free(key);
	/* Still alive after dropping one of two references. */
	CU_ASSERT(agentid_key_default_alg(key) == AGENTID_ALG_ES256);
	agentid_key_free(key);
	agentid_key_free(NULL);
	CU_ASSERT(agentid_key_generate(AGENTID_ALG_UNKNOWN, &key) == AGENTID_EINVAL);
	CU_ASSERT(key == NULL);
}

static void
test_keyset(void)
{
	struct agentid_keyset *ks, *back, *empty;
	struct agentid_error err;
	const struct agentid_key *k;
	json_t *json;
	char *text, *dump;
	size_t len;

	text = tu_read_vector("jose/jwks-mixed.json", &len);
	CU_ASSERT_FATAL(text != NULL);
	CU_ASSERT_FATAL(agentid_keyset_parse(text, len, &ks, &err) == 0);
	free(text);
	/* oct, RSA-1024, X25519 and an ECDH-ES key are skipped. */
	CU_ASSERT(agentid_keyset_count(ks) == 3);
	CU_ASSERT((k = agentid_keyset_find(ks, "es256", 5)) != NULL);
	CU_ASSERT(agentid_key_supports_alg(k, AGENTID_ALG_ES256));
	CU_ASSERT((k = agentid_keyset_find(ks, "rsa", 3)) != NULL);
	CU_ASSERT(agentid_key_supports_alg(k, AGENTID_ALG_PS256));
	CU_ASSERT(agentid_keyset_find(ks, "ed", 2) != NULL);
	/* Exact byte match: no prefixes, no case folding, no skipped keys. */
	CU_ASSERT(agentid_keyset_find(ks, "es256", 4) == NULL);
	CU_ASSERT(agentid_keyset_find(ks, "es2566", 6) == NULL);
	CU_ASSERT(agentid_keyset_find(ks, "ES256", 5) == NULL);
	CU_ASSERT(agentid_keyset_find(ks, "weak", 4) == NULL);
	CU_ASSERT(agentid_keyset_find(ks, "hmac", 4) == NULL);
	CU_ASSERT(agentid_keyset_get(ks, 3) == NULL);
	CU_ASSERT(agentid_keyset_get(ks, 0) != NULL);

	/* to_json and back. */
	CU_ASSERT_FATAL(agentid_keyset_to_json(ks, &json) == 0);
	CU_ASSERT(json_array_size(json_object_get(json, "keys")) == 3);
	dump = json_dumps(json, JSON_COMPACT);
	CU_ASSERT_FATAL(dump != NULL);
	CU_ASSERT(strstr(dump, "\"d\"") == NULL);
	CU_ASSERT_FATAL(agentid_keyset_parse(dump, strlen(dump), &back, &err) == 0);
	CU_ASSERT(agentid_keyset_count(back) == 3);
	CU_ASSERT(agentid_keyset_find(back, "rsa", 3) != NULL);
	free(dump);
	json_decref(json);
	agentid_keyset_free(back);

	/* Reference counting. */
	CU_ASSERT(agentid_keyset_ref(ks) == ks);
	agentid_keyset_free(ks);
	CU_ASSERT(agentid_keyset_count(ks) == 3);
	agentid_keyset_free(ks);

	/* An empty set is valid (trust nothing); structure errors are not. */
	CU_ASSERT(agentid_keyset_parse("{\"keys\":[]}", 11, &empty, &err) == 0);
	CU_ASSERT(agentid_keyset_count(empty) == 0);
	CU_ASSERT(agentid_keyset_find(empty, "a", 1) == NULL);
	agentid_keyset_free(empty);
	CU_ASSERT(agentid_keyset_parse("[]", 2, &empty, &err) == AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_json");
	CU_ASSERT(agentid_keyset_parse("{}", 2, &empty, &err) == AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_json");
	CU_ASSERT(agentid_keyset_parse("{\"keys\":{}}", 11, &empty, &err) == AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_json");
	CU_ASSERT(agentid_keyset_parse("{\"keys\":[],\"keys\":[]}", 21, &empty, &err) ==
	    AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "duplicate_member");
	CU_ASSERT(empty == NULL);

	/* Building a set by hand. */
	CU_ASSERT_FATAL(agentid_keyset_new(&ks) == 0);
	{
		struct agentid_key *key;

		CU_ASSERT_FATAL(agentid_key_generate(AGENTID_ALG_ES256, &key) == 0);
		CU_ASSERT(agentid_key_set_kid(key, "k1") == 0);
		CU_ASSERT(agentid_keyset_add(ks, key) == 0);
		agentid_key_free(key);
	}
	CU_ASSERT(agentid_keyset_count(ks) == 1);
	CU_ASSERT(agentid_keyset_find(ks, "k1", 2) == agentid_keyset_get(ks, 0));
	agentid_keyset_free(ks);
}

static long alloc_countdown = -1;

static void *
failing_malloc(size_t n)
{
	if (alloc_countdown == 0)
		return NULL;
	if (alloc_countdown > 0)
		alloc_countdown--;
	return malloc(n);
}

static void *
failing_realloc(void *p, size_t n)
{
	if (alloc_countdown == 0)
		return NULL;
	if (alloc_countdown > 0)
		alloc_countdown--;
	return realloc(p, n);
}

static void
test_allocation_failures(void)
{
	struct agentid_keyset *ks;
	struct agentid_error err;
	json_t *json;
	char *text, tp[64];
	size_t len;
	int r, done = 0;
	long i;

	text = tu_read_vector("jose/jwks-mixed.json", &len);
	CU_ASSERT_FATAL(text != NULL);
	agentid_set_allocator(failing_malloc, failing_realloc, free);
	/* Fail each allocation in turn; ASan checks nothing leaks on the way out. */
	for (i = 0; i < 2000 && !done; i++) {
		ks = NULL;
		json = NULL;
		alloc_countdown = i;
		r = agentid_keyset_parse(text, len, &ks, &err);
		if (r == 0) {
			r = agentid_keyset_to_json(ks, &json);
			CU_ASSERT(r == 0 || r == AGENTID_ENOMEM);
			if (r == 0) {
				r = agentid_key_thumbprint(agentid_keyset_get(ks, 0), tp, sizeof(tp));
				CU_ASSERT(r == 0 || r == AGENTID_ENOMEM);
			}
			if (r == 0) {
				/* Nothing failed: a failure never drops keys silently. */
				CU_ASSERT(agentid_keyset_count(ks) == 3);
				done = 1;
			}
		} else {
			/* jansson 2.14 may report an allocation failure as bad JSON. */
			CU_ASSERT(r == AGENTID_ENOMEM ||
			    (r == AGENTID_EREJECTED && err.reason == AGENTID_R_BAD_JSON));
			CU_ASSERT(ks == NULL);
		}
		alloc_countdown = -1;
		json_decref(json);
		agentid_keyset_free(ks);
	}
	agentid_set_allocator(NULL, NULL, NULL);
	CU_ASSERT(done);
	free(text);
}

int
main(void)
{
	static const struct tu_test tests[] = {
		{ "rfc7638_thumbprint", test_rfc7638_thumbprint },
		{ "rfc8037_ed25519", test_rfc8037_ed25519 },
		{ "reject_weak_and_bad_keys", test_reject_weak_and_bad_keys },
		{ "jwk_member_rules", test_jwk_member_rules },
		{ "supports_alg", test_supports_alg },
		{ "jwk_export_import", test_jwk_export_import },
		{ "rsa_jwk_roundtrip", test_rsa_jwk_roundtrip },
		{ "private_jwk_sign", test_private_jwk_sign },
		{ "rsa_private_jwk", test_rsa_private_jwk },
		{ "x5c", test_x5c },
		{ "pem", test_pem },
		{ "files", test_files },
		{ "refcount", test_refcount },
		{ "keyset", test_keyset },
		{ "allocation_failures", test_allocation_failures },
		TU_END
	};

	return tu_run("key", tests);
}
