/*
 * SPIFFE bundles (SPIFFE_Trust_Domain_and_Bundle.md, JWT-SVID.md and
 * X509-SVID.md section 6) and trust (bundles keyed by trust domain).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "testutil.h"

/* The x5c string of tests/vectors/x509/ca.pem inside example.org.bundle.json. */
static char *ca_x5c;
static char *jwt_kid;

/* A public JWK of a fresh ES256 key, with use and kid set when given. */
static json_t *
jwk(const char *use, const char *kid)
{
	struct agentid_key *k = NULL;
	json_t *j = NULL;

	CU_ASSERT_EQUAL_FATAL(agentid_key_generate(AGENTID_ALG_ES256, &k), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_key_to_jwk(k, &j), 0);
	agentid_key_free(k);
	if (use != NULL)
		json_object_set_new(j, "use", json_string(use));
	if (kid != NULL)
		json_object_set_new(j, "kid", json_string(kid));
	return j;
}

/* The example.org CA as an x509-svid entry (kty/crv/x/y + x5c). */
static json_t *
ca_entry(void)
{
	json_t *root, *e;
	size_t len;
	char *s = tu_read_vector("x509/example.org.bundle.json", &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	root = json_loads(s, 0, NULL);
	free(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	e = json_deep_copy(json_array_get(json_object_get(root, "keys"), 0));
	json_decref(root);
	CU_ASSERT_STRING_EQUAL_FATAL(json_string_value(json_object_get(e, "use")), "x509-svid");
	return e;
}

/* Serialises {"keys": keys} plus extra members and parses it as a bundle of td. */
static int
parse_keys(const char *td, json_t *keys, const char *extra, struct agentid_bundle **b,
    struct agentid_error *e)
{
	json_t *root = json_object();
	char *s, *full;
	size_t n;
	int r;

	json_object_set_new(root, "keys", keys);
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (extra != NULL) {
		/* Insert extra members after the opening brace. */
		n = strlen(s) + strlen(extra) + 2;
		full = malloc(n);
		snprintf(full, n, "{%s,%s", extra, s + 1);
		free(s);
		s = full;
	}
	r = agentid_bundle_parse(td, s, strlen(s), b, e);
	free(s);
	return r;
}

/* Log lines seen, to tell why a key was skipped. */
static char logbuf[4096];

static void
log_sink(void *arg, enum agentid_log_level level, const char *msg)
{
	size_t n = strlen(logbuf);

	snprintf(logbuf + n, sizeof(logbuf) - n, "%s\n", msg);
}

static int
has_kid(const struct agentid_bundle *b, const char *kid)
{
	return agentid_keyset_find(agentid_bundle_jwt_keys(b), kid, strlen(kid)) != NULL;
}

static void
test_example_bundle(void)
{
	struct agentid_bundle *b = NULL;
	struct agentid_error e = { 0 };
	const struct agentid_key *k;
	X509 *ca = NULL;

	CU_ASSERT_EQUAL_FATAL(agentid_bundle_load_file(NULL,
	    tu_vector("x509/example.org.bundle.json"), &b, &e), 0);
	CU_ASSERT_STRING_EQUAL(agentid_bundle_trust_domain(b), "example.org");
	CU_ASSERT_EQUAL(agentid_bundle_sequence(b), 1);
	CU_ASSERT_EQUAL(agentid_bundle_refresh_hint(b), 300);
	CU_ASSERT_EQUAL(sk_X509_num(agentid_bundle_x509_authorities(b)), 1);
	CU_ASSERT_EQUAL(agentid_keyset_count(agentid_bundle_jwt_keys(b)), 1);
	k = agentid_keyset_find(agentid_bundle_jwt_keys(b), jwt_kid, strlen(jwt_kid));
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	CU_ASSERT_STRING_EQUAL(agentid_key_use(k), "jwt-svid");
	CU_ASSERT(agentid_key_supports_alg(k, AGENTID_ALG_ES256));
	CU_ASSERT(!agentid_key_is_private(k));

	/* The authority is the CA certificate itself. */
	CU_ASSERT_EQUAL_FATAL(agentid_x509_load_pem_file(tu_vector("x509/ca.pem"), &ca, NULL,
	    &e), 0);
	CU_ASSERT_EQUAL(X509_cmp(ca, sk_X509_value(agentid_bundle_x509_authorities(b), 0)), 0);
	X509_free(ca);
	agentid_bundle_free(b);

	/* A given trust domain wins over the URI SAN. */
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_load_file("other.org",
	    tu_vector("x509/example.org.bundle.json"), &b, &e), 0);
	CU_ASSERT_STRING_EQUAL(agentid_bundle_trust_domain(b), "other.org");
	agentid_bundle_free(b);
}

static void
test_use_and_kid_rules(void)
{
	struct agentid_bundle *b = NULL;
	struct agentid_error e = { 0 };
	json_t *keys = json_array(), *j, *x5c_missing, *priv;
	struct agentid_key *pk = NULL;

	json_array_append_new(keys, jwk("jwt-svid", "svid-kid"));
	json_array_append_new(keys, jwk("jwt-svid", NULL));          /* no kid: skipped */
	json_array_append_new(keys, jwk("jwt-svid", ""));            /* empty kid: skipped */
	json_array_append_new(keys, jwk(NULL, "plain-kid"));         /* no use: JWT authority */
	json_array_append_new(keys, jwk("sig", "sig-kid"));          /* use sig: JWT authority */
	json_array_append_new(keys, jwk("enc", "enc-kid"));          /* unknown use: ignored */
	json_array_append_new(keys, jwk("JWT-SVID", "case-kid"));    /* use is case sensitive */
	j = jwk("jwt-svid", "kty-kid");
	json_object_set_new(j, "kty", json_string("XYZ"));           /* unknown kty: ignored */
	json_array_append_new(keys, j);
	j = json_pack("{s:s, s:s, s:s}", "kty", "oct", "k", "c2VjcmV0", "kid", "oct-kid");
	json_array_append_new(keys, j);                             /* symmetric: ignored */
	j = jwk(NULL, "num-use");
	json_object_set_new(j, "use", json_integer(1));              /* use not a string */
	json_array_append_new(keys, j);
	x5c_missing = jwk("x509-svid", NULL);                        /* x509-svid without x5c */
	json_array_append_new(keys, x5c_missing);
	json_array_append_new(keys, json_string("not an object"));
	json_array_append_new(keys, json_null());
	j = jwk("jwt-svid", "bad-x");
	json_object_set_new(j, "x", json_string("AAAA"));            /* broken key: skipped */
	json_array_append_new(keys, j);
	CU_ASSERT_EQUAL_FATAL(agentid_key_generate(AGENTID_ALG_ES256, &pk), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_key_set_kid(pk, "priv-kid"), 0);
	priv = NULL;
	CU_ASSERT_EQUAL_FATAL(agentid_key_to_jwk(pk, &priv), 0);
	{
		/* A real private JWK: "d" is the 32-byte private scalar. */
		BIGNUM *bn = NULL;
		unsigned char d[32];
		char *d64 = NULL;

		CU_ASSERT_FATAL(EVP_PKEY_get_bn_param(agentid_key_evp(pk), OSSL_PKEY_PARAM_PRIV_KEY,
		    &bn) == 1);
		CU_ASSERT_FATAL(BN_bn2binpad(bn, d, sizeof(d)) == 32);
		CU_ASSERT_EQUAL_FATAL(agentid_b64url_encode_alloc(d, sizeof(d), &d64), 0);
		json_object_set_new(priv, "d", json_string(d64));
		agentid_free(d64);
		BN_clear_free(bn);
	}
	agentid_key_free(pk);
	json_array_append_new(keys, priv);                          /* private key: never kept */

	logbuf[0] = '\0';
	agentid_set_log(log_sink, NULL, AGENTID_LOG_DEBUG);
	CU_ASSERT_EQUAL_FATAL(parse_keys("example.org", keys, NULL, &b, &e), 0);
	agentid_set_log(NULL, NULL, AGENTID_LOG_INFO);
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "private key in a bundle ignored"));
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "jwt-svid key without a kid ignored"));
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "unknown use \"enc\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "x509-svid key without x5c ignored"));
	CU_ASSERT(has_kid(b, "svid-kid"));
	CU_ASSERT(has_kid(b, "plain-kid"));
	CU_ASSERT(has_kid(b, "sig-kid"));
	CU_ASSERT(!has_kid(b, "enc-kid"));
	CU_ASSERT(!has_kid(b, "case-kid"));
	CU_ASSERT(!has_kid(b, "kty-kid"));
	CU_ASSERT(!has_kid(b, "oct-kid"));
	CU_ASSERT(!has_kid(b, "num-use"));
	CU_ASSERT(!has_kid(b, "bad-x"));
	CU_ASSERT(!has_kid(b, "priv-kid"));
	CU_ASSERT_EQUAL(agentid_keyset_count(agentid_bundle_jwt_keys(b)), 3);
	CU_ASSERT_EQUAL(sk_X509_num(agentid_bundle_x509_authorities(b)), 0);
	agentid_bundle_free(b);
}

static void
test_x509_entries(void)
{
	struct agentid_bundle *b = NULL;
	struct agentid_error e = { 0 };
	json_t *keys, *ca, *two;
	char *leaf;
	X509 *x = NULL;

	/* A JWT-only bundle does not become an X.509 authority and vice versa. */
	keys = json_array();
	json_array_append_new(keys, ca_entry());
	CU_ASSERT_EQUAL_FATAL(parse_keys(NULL, keys, NULL, &b, &e), 0);
	CU_ASSERT_STRING_EQUAL(agentid_bundle_trust_domain(b), "example.org");
	CU_ASSERT_EQUAL(sk_X509_num(agentid_bundle_x509_authorities(b)), 1);
	CU_ASSERT_EQUAL(agentid_keyset_count(agentid_bundle_jwt_keys(b)), 0);
	agentid_bundle_free(b);

	/* X509-SVID.md 6.2: of several x5c values only the first counts. */
	keys = json_array();
	two = ca_entry();
	leaf = tu_read_vector("x509/svid-valid.pem", NULL);
	CU_ASSERT_EQUAL_FATAL(agentid_x509_load_pem(leaf, strlen(leaf), &x, NULL, &e), 0);
	free(leaf);
	{
		unsigned char *der = NULL;
		int n = i2d_X509(x, &der);
		char *b64 = malloc((size_t)n * 2 + 4);

		EVP_EncodeBlock((unsigned char *)b64, der, n);
		json_array_append_new(json_object_get(two, "x5c"), json_string(b64));
		free(b64);
		OPENSSL_free(der);
	}
	json_array_append_new(keys, two);
	CU_ASSERT_EQUAL_FATAL(parse_keys(NULL, keys, NULL, &b, &e), 0);
	CU_ASSERT_EQUAL(sk_X509_num(agentid_bundle_x509_authorities(b)), 1);
	CU_ASSERT_NOT_EQUAL(X509_cmp(x, sk_X509_value(agentid_bundle_x509_authorities(b), 0)), 0);
	agentid_bundle_free(b);
	X509_free(x);

	/* Empty x5c: ignored. */
	keys = json_array();
	ca = ca_entry();
	json_object_set_new(ca, "x5c", json_array());
	json_array_append_new(keys, ca);
	CU_ASSERT_EQUAL_FATAL(parse_keys("example.org", keys, NULL, &b, &e), 0);
	CU_ASSERT_EQUAL(sk_X509_num(agentid_bundle_x509_authorities(b)), 0);
	agentid_bundle_free(b);

	/* x5c whose certificate does not hold the JWK's key: ignored. */
	keys = json_array();
	ca = ca_entry();
	{
		json_t *other = jwk(NULL, NULL);

		json_object_set(ca, "x", json_object_get(other, "x"));
		json_object_set(ca, "y", json_object_get(other, "y"));
		json_decref(other);
	}
	json_array_append_new(keys, ca);
	CU_ASSERT_EQUAL_FATAL(parse_keys("example.org", keys, NULL, &b, &e), 0);
	CU_ASSERT_EQUAL(sk_X509_num(agentid_bundle_x509_authorities(b)), 0);
	agentid_bundle_free(b);
}

static void
test_empty_keys(void)
{
	struct agentid_bundle *b = NULL;
	struct agentid_error e = { 0 };

	CU_ASSERT_EQUAL_FATAL(parse_keys("example.org", json_array(), NULL, &b, &e), 0);
	CU_ASSERT_STRING_EQUAL(agentid_bundle_trust_domain(b), "example.org");
	CU_ASSERT_EQUAL(agentid_keyset_count(agentid_bundle_jwt_keys(b)), 0);
	CU_ASSERT_EQUAL(sk_X509_num(agentid_bundle_x509_authorities(b)), 0);
	CU_ASSERT_EQUAL(agentid_bundle_sequence(b), -1);
	CU_ASSERT_EQUAL(agentid_bundle_refresh_hint(b), -1);
	agentid_bundle_free(b);

	/* Without td and without X.509 authorities the bundle is unbound (issuer keys). */
	CU_ASSERT_EQUAL_FATAL(parse_keys(NULL, json_array(), NULL, &b, &e), 0);
	CU_ASSERT_PTR_NULL(agentid_bundle_trust_domain(b));
	agentid_bundle_free(b);
}

static void
reject(const char *json, const char *code)
{
	struct agentid_bundle *b = (void *)1;
	struct agentid_error e = { 0 };

	CU_ASSERT_EQUAL(agentid_bundle_parse("example.org", json, strlen(json), &b, &e),
	    AGENTID_EREJECTED);
	CU_ASSERT_PTR_NULL(b);
	if (strcmp(agentid_reason_code(e.reason), code) != 0) {
		fprintf(stderr, "\n  %s: got %s (%s), want %s\n", json,
		    agentid_reason_code(e.reason), e.detail, code);
		CU_FAIL("wrong reason");
	}
}

static void
test_malformed(void)
{
	reject("", "bad_json");
	reject("[]", "bad_json");
	reject("{}", "bad_json");
	reject("{\"keys\": {}}", "bad_json");
	reject("{\"keys\": null}", "bad_json");
	reject("{\"keys\": []", "bad_json");
	reject("{\"keys\": []} x", "bad_json");
	reject("{\"keys\": [], \"keys\": []}", "duplicate_member");
	reject("{\"keys\": [], \"spiffe_sequence\": -1}", "bad_json");
	reject("{\"keys\": [], \"spiffe_sequence\": \"1\"}", "bad_json");
	reject("{\"keys\": [], \"spiffe_sequence\": 1.5}", "bad_json");
	reject("{\"keys\": [], \"spiffe_refresh_hint\": -5}", "bad_json");
	reject("{\"keys\": [], \"spiffe_refresh_hint\": true}", "bad_json");
}

static void
test_sequence_and_hint(void)
{
	struct agentid_bundle *b = NULL;
	struct agentid_error e = { 0 };

	CU_ASSERT_EQUAL_FATAL(parse_keys("example.org", json_array(),
	    "\"spiffe_sequence\":9007199254740993,\"spiffe_refresh_hint\":0", &b, &e), 0);
	/* 64-bit precision (SPIFFE_Trust_Domain_and_Bundle.md 4.1.1). */
	CU_ASSERT_EQUAL(agentid_bundle_sequence(b), 9007199254740993LL);
	CU_ASSERT_EQUAL(agentid_bundle_refresh_hint(b), 0);
	agentid_bundle_free(b);

	/* Unknown members are allowed and ignored. */
	CU_ASSERT_EQUAL_FATAL(parse_keys("example.org", json_array(),
	    "\"spiffe_sequence\":7,\"other\":{\"a\":1}", &b, &e), 0);
	CU_ASSERT_EQUAL(agentid_bundle_sequence(b), 7);
	CU_ASSERT_EQUAL(agentid_bundle_refresh_hint(b), -1);
	agentid_bundle_free(b);
}

static void
test_trust_domain(void)
{
	struct agentid_bundle *b = (void *)1;
	struct agentid_error e = { 0 };
	json_t *keys, *wrong;
	X509 *x = NULL;
	char *pem;

	/* A bad trust domain name is refused. */
	CU_ASSERT_EQUAL(parse_keys("Example.org", json_array(), NULL, &b, &e), AGENTID_EREJECTED);
	CU_ASSERT_PTR_NULL(b);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "bad_spiffe_id");
	CU_ASSERT_EQUAL(agentid_bundle_new("spiffe://example.org", &b), AGENTID_EINVAL);

	/* Authorities of two trust domains in one bundle cannot be told apart: refused. */
	pem = tu_read_vector("x509/svid-wrong-trust-domain.pem", NULL);
	CU_ASSERT_EQUAL_FATAL(agentid_x509_load_pem(pem, strlen(pem), &x, NULL, &e), 0);
	free(pem);
	{
		unsigned char *der = NULL;
		int n = i2d_X509(x, &der);
		char *b64 = malloc((size_t)n * 2 + 4);
		struct agentid_key *k = NULL;

		EVP_EncodeBlock((unsigned char *)b64, der, n);
		CU_ASSERT_EQUAL_FATAL(agentid_key_from_evp(X509_get0_pubkey(x), &k), 0);
		CU_ASSERT_EQUAL_FATAL(agentid_key_to_jwk(k, &wrong), 0);
		agentid_key_free(k);
		json_object_set_new(wrong, "use", json_string("x509-svid"));
		json_object_set_new(wrong, "x5c", json_pack("[s]", b64));
		free(b64);
		OPENSSL_free(der);
	}
	X509_free(x);
	keys = json_array();
	json_array_append_new(keys, ca_entry());
	json_array_append(keys, wrong);
	CU_ASSERT_EQUAL(parse_keys(NULL, keys, NULL, &b, &e), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "untrusted_domain");

	/* With the trust domain given, nothing is inferred. */
	keys = json_array();
	json_array_append_new(keys, wrong);
	CU_ASSERT_EQUAL_FATAL(parse_keys("example.org", keys, NULL, &b, &e), 0);
	CU_ASSERT_STRING_EQUAL(agentid_bundle_trust_domain(b), "example.org");
	agentid_bundle_free(b);
}

/* Checks the SPIFFE form of a bundle's JSON. */
static void
check_spiffe_json(const json_t *j, const char *kid)
{
	const json_t *keys = json_object_get(j, "keys"), *k;
	size_t i;
	int nx = 0, nj = 0;

	CU_ASSERT_FATAL(json_is_array(keys));
	json_array_foreach(keys, i, k) {
		const char *use = json_string_value(json_object_get(k, "use"));

		CU_ASSERT_PTR_NOT_NULL_FATAL(use);
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(k, "kty")), "EC");
		CU_ASSERT_PTR_NULL(json_object_get(k, "d"));
		if (strcmp(use, "x509-svid") == 0) {
			nx++;
			CU_ASSERT_PTR_NULL(json_object_get(k, "kid"));
			CU_ASSERT_EQUAL(json_array_size(json_object_get(k, "x5c")), 1);
			CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(
			    json_object_get(k, "x5c"), 0)), ca_x5c);
		} else {
			CU_ASSERT_STRING_EQUAL(use, "jwt-svid");
			nj++;
			if (kid != NULL)
				CU_ASSERT_STRING_EQUAL(
				    json_string_value(json_object_get(k, "kid")), kid);
			CU_ASSERT_PTR_NOT_NULL(json_object_get(k, "kid"));
		}
	}
	CU_ASSERT_EQUAL(nx, 1);
	CU_ASSERT_EQUAL(nj, 1);
}

static void
test_round_trip(void)
{
	struct agentid_bundle *b = NULL, *b2 = NULL;
	struct agentid_error e = { 0 };
	struct agentid_key *k = NULL;
	char tp[AGENTID_THUMBPRINT_LEN + 1];
	json_t *j = NULL;
	char *s;
	X509 *ca = NULL;

	CU_ASSERT_EQUAL_FATAL(agentid_bundle_load_file(NULL,
	    tu_vector("x509/example.org.bundle.json"), &b, &e), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_to_json(b, &j), 0);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "spiffe_sequence")), 1);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "spiffe_refresh_hint")), 300);
	check_spiffe_json(j, jwt_kid);
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_parse(NULL, s, strlen(s), &b2, &e), 0);
	free(s);
	CU_ASSERT_STRING_EQUAL(agentid_bundle_trust_domain(b2), "example.org");
	CU_ASSERT_EQUAL(agentid_bundle_sequence(b2), 1);
	CU_ASSERT_EQUAL(agentid_bundle_refresh_hint(b2), 300);
	CU_ASSERT(has_kid(b2, jwt_kid));
	CU_ASSERT_EQUAL(X509_cmp(sk_X509_value(agentid_bundle_x509_authorities(b), 0),
	    sk_X509_value(agentid_bundle_x509_authorities(b2), 0)), 0);
	agentid_bundle_free(b);
	agentid_bundle_free(b2);

	/* Built with the API: a key without kid gets its RFC 7638 thumbprint. */
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_new("example.org", &b), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_key_generate(AGENTID_ALG_ES256, &k), 0);
	CU_ASSERT_EQUAL(agentid_bundle_add_jwt_key(b, k), 0);
	CU_ASSERT_EQUAL(agentid_key_thumbprint(k, tp, sizeof(tp)), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_x509_load_pem_file(tu_vector("x509/ca.pem"), &ca, NULL,
	    &e), 0);
	CU_ASSERT_EQUAL(agentid_bundle_add_x509_authority(b, ca), 0);
	X509_free(ca);
	CU_ASSERT_EQUAL(agentid_bundle_set_sequence(b, 42), 0);
	CU_ASSERT_EQUAL(agentid_bundle_set_refresh_hint(b, 60), 0);
	CU_ASSERT_EQUAL(agentid_bundle_set_sequence(b, -2), AGENTID_EINVAL);
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_to_json(b, &j), 0);
	check_spiffe_json(j, tp);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "spiffe_sequence")), 42);
	/* The private key generated above never appears. */
	s = json_dumps(j, JSON_COMPACT);
	CU_ASSERT_PTR_NULL(strstr(s, "\"d\""));
	free(s);
	json_decref(j);
	agentid_key_free(k);
	agentid_bundle_free(b);

	/* Absent counters are absent in JSON too. */
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_new(NULL, &b), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_to_json(b, &j), 0);
	CU_ASSERT_PTR_NULL(json_object_get(j, "spiffe_sequence"));
	CU_ASSERT_PTR_NULL(json_object_get(j, "spiffe_refresh_hint"));
	CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "keys")), 0);
	json_decref(j);
	agentid_bundle_free(b);
}

static void
test_load_file(void)
{
	struct agentid_bundle *b = (void *)1;
	struct agentid_error e = { 0 };
	const char *dir = tu_tmpdir(), *p;
	char *pem = tu_read_vector("x509/svid-valid-chain.pem", NULL);

	/* A PEM file with several certificates: all become authorities. */
	p = tu_write_file(dir, "cas.pem", pem, strlen(pem));
	free(pem);
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_load_file(NULL, p, &b, &e), 0);
	CU_ASSERT_EQUAL(sk_X509_num(agentid_bundle_x509_authorities(b)), 2);
	CU_ASSERT_STRING_EQUAL(agentid_bundle_trust_domain(b), "example.org");
	agentid_bundle_free(b);

	p = tu_write_file(dir, "junk", "hello", 5);
	CU_ASSERT_EQUAL(agentid_bundle_load_file(NULL, p, &b, &e), AGENTID_EREJECTED);
	CU_ASSERT_PTR_NULL(b);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "bad_json");

	p = tu_write_file(dir, "ws.json", "\n  {\"keys\":[]}\n", 15);
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_load_file("a.org", p, &b, &e), 0);
	agentid_bundle_free(b);

	CU_ASSERT_NOT_EQUAL(agentid_bundle_load_file(NULL, "/nonexistent/b.json", &b, &e), 0);
	CU_ASSERT_PTR_NULL(b);
}

/* ---- trust ---- */

static struct agentid_bundle *
bundle_with_kid(const char *td, const char *kid, struct agentid_key **kout)
{
	struct agentid_bundle *b = NULL;
	struct agentid_key *k = NULL;

	CU_ASSERT_EQUAL_FATAL(agentid_bundle_new(td, &b), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_key_generate(AGENTID_ALG_ES256, &k), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_key_set_kid(k, kid), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_add_jwt_key(b, k), 0);
	*kout = k;
	agentid_key_free(k); /* the bundle holds a reference */
	return b;
}

static void
test_trust_lookup(void)
{
	struct agentid_trust *t = NULL;
	struct agentid_bundle *a, *bb, *a2, *u;
	struct agentid_key *ka, *kb, *ka2, *ku;

	a = bundle_with_kid("a.org", "ka", &ka);
	bb = bundle_with_kid("b.org", "kb", &kb);
	CU_ASSERT_EQUAL_FATAL(agentid_trust_new(&t), 0);
	CU_ASSERT_EQUAL(agentid_trust_add_bundle(t, a), 0);
	CU_ASSERT_EQUAL(agentid_trust_add_bundle(t, bb), 0);
	CU_ASSERT_EQUAL(agentid_trust_count(t), 2);
	CU_ASSERT_PTR_EQUAL(agentid_trust_find(t, "a.org", 5), a);
	CU_ASSERT_PTR_EQUAL(agentid_trust_find(t, "b.org", 5), bb);
	CU_ASSERT_PTR_NULL(agentid_trust_find(t, "c.org", 5));
	CU_ASSERT_PTR_NULL(agentid_trust_find(t, "a.or", 4));
	CU_ASSERT_PTR_NULL(agentid_trust_find(t, "a.org.", 6));
	CU_ASSERT_PTR_EQUAL(agentid_trust_get(t, 0), a);
	CU_ASSERT_PTR_NULL(agentid_trust_get(t, 2));

	/* A JWT key of trust domain A is not found when looking in trust domain B. */
	CU_ASSERT_PTR_EQUAL(agentid_trust_find_jwt_key(t, "a.org", 5, "ka", 2), ka);
	CU_ASSERT_PTR_NULL(agentid_trust_find_jwt_key(t, "b.org", 5, "ka", 2));
	CU_ASSERT_PTR_NULL(agentid_trust_find_jwt_key(t, "a.org", 5, "kb", 2));
	CU_ASSERT_PTR_NULL(agentid_trust_find_jwt_key(t, "c.org", 5, "ka", 2));
	CU_ASSERT_PTR_NULL(agentid_trust_find_jwt_key(t, "a.org", 5, "k", 1));
	CU_ASSERT_PTR_NULL(agentid_trust_find_jwt_key(t, "a.org", 5, "kaa", 3));
	/* td NULL: only issuer keys bound to no trust domain; a trust domain's
	 * JWT-SVID authority cannot verify access tokens. */
	CU_ASSERT_PTR_NULL(agentid_trust_find_jwt_key(t, NULL, 0, "kb", 2));

	/* Unbound bundles accumulate and are what td NULL searches. */
	u = bundle_with_kid(NULL, "kb", &ku);
	CU_ASSERT_EQUAL(agentid_trust_add_bundle(t, u), 0);
	agentid_bundle_free(u);
	u = bundle_with_kid(NULL, "ku2", &ku);
	CU_ASSERT_EQUAL(agentid_trust_add_bundle(t, u), 0);
	agentid_bundle_free(u);
	CU_ASSERT_EQUAL(agentid_trust_count(t), 4);
	CU_ASSERT_PTR_NOT_EQUAL(agentid_trust_find_jwt_key(t, NULL, 0, "kb", 2), kb);
	CU_ASSERT_PTR_EQUAL(agentid_trust_find_jwt_key(t, NULL, 0, "ku2", 3), ku);
	/* Unbound keys are never found through a trust domain. */
	CU_ASSERT_PTR_NULL(agentid_trust_find_jwt_key(t, "a.org", 5, "ku2", 3));
	CU_ASSERT_PTR_EQUAL(agentid_trust_find_jwt_key(t, "b.org", 5, "kb", 2), kb);

	/* A second bundle of a.org replaces the first (no merging of keys). */
	a2 = bundle_with_kid("a.org", "ka2", &ka2);
	CU_ASSERT_EQUAL(agentid_trust_add_bundle(t, a2), 0);
	CU_ASSERT_EQUAL(agentid_trust_count(t), 4);
	CU_ASSERT_PTR_EQUAL(agentid_trust_find(t, "a.org", 5), a2);
	CU_ASSERT_PTR_NULL(agentid_trust_find_jwt_key(t, "a.org", 5, "ka", 2));
	CU_ASSERT_PTR_EQUAL(agentid_trust_find_jwt_key(t, "a.org", 5, "ka2", 3), ka2);

	/* The trust holds references: the caller's are gone, lookups still work. */
	agentid_bundle_free(a);
	agentid_bundle_free(bb);
	agentid_bundle_free(a2);
	CU_ASSERT_PTR_EQUAL(agentid_trust_find_jwt_key(t, "b.org", 5, "kb", 2), kb);
	CU_ASSERT_PTR_EQUAL(agentid_trust_ref(t), t);
	agentid_trust_free(t);
	CU_ASSERT_PTR_EQUAL(agentid_trust_find_jwt_key(t, "b.org", 5, "kb", 2), kb);
	agentid_trust_free(t);

	CU_ASSERT_PTR_NULL(agentid_trust_find(NULL, "a.org", 5));
	CU_ASSERT_PTR_NULL(agentid_trust_find_jwt_key(NULL, NULL, 0, "kb", 2));
	CU_ASSERT_EQUAL(agentid_trust_count(NULL), 0);
	agentid_trust_free(NULL);
	agentid_bundle_free(NULL);
}

int
main(void)
{
	static const struct tu_test tests[] = {
		{ "example.org bundle", test_example_bundle },
		{ "use and kid rules", test_use_and_kid_rules },
		{ "x509-svid entries", test_x509_entries },
		{ "empty keys", test_empty_keys },
		{ "malformed bundles", test_malformed },
		{ "sequence and refresh hint", test_sequence_and_hint },
		{ "trust domain", test_trust_domain },
		{ "round trip to JSON", test_round_trip },
		{ "load_file", test_load_file },
		{ "trust lookup", test_trust_lookup },
		TU_END
	};
	json_t *root;
	char *s;
	int r;

	/* Reference values from the vectors. */
	if ((s = tu_read_vector("x509/example.org.bundle.json", NULL)) == NULL ||
	    (root = json_loads(s, 0, NULL)) == NULL)
		return 1;
	free(s);
	ca_x5c = strdup(json_string_value(json_array_get(json_object_get(json_array_get(
	    json_object_get(root, "keys"), 0), "x5c"), 0)));
	json_decref(root);
	if ((jwt_kid = tu_read_vector("x509/jwt-key.kid", NULL)) == NULL)
		return 1;
	r = tu_run("bundle", tests);
	free(ca_x5c);
	free(jwt_kid);
	return r;
}
