/*
 * X.509-SVID validation against the vectors in tests/vectors/x509/ (see
 * gen.sh there): every vector is asserted with its exact reason code.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "testutil.h"

static struct agentid_trust *trust; /* example.org from example.org.bundle.json */

static void
load(const char *name, X509 **leaf, STACK_OF(X509) **chain)
{
	char path[64];
	struct agentid_error e = { 0 };

	snprintf(path, sizeof(path), "x509/%s", name);
	*leaf = NULL;
	if (agentid_x509_load_pem_file(tu_vector(path), leaf, chain, &e) != 0)
		fprintf(stderr, "\n  cannot load %s: %s\n", name, e.detail);
	CU_ASSERT_PTR_NOT_NULL_FATAL(*leaf);
}

/* Builds the example.org trust without CUnit asserts (also used before the suite runs). */
static struct agentid_trust *
make_example_trust(void)
{
	struct agentid_bundle *b = NULL;
	struct agentid_trust *t = NULL;
	struct agentid_error e = { 0 };
	const char *td;

	if (agentid_bundle_load_file(NULL, tu_vector("x509/example.org.bundle.json"), &b, &e) !=
	    0) {
		fprintf(stderr, "cannot load example.org.bundle.json: %s\n", e.detail);
		return NULL;
	}
	td = agentid_bundle_trust_domain(b);
	if (td == NULL || strcmp(td, "example.org") != 0 || agentid_trust_new(&t) != 0 ||
	    agentid_trust_add_bundle(t, b) != 0) {
		agentid_trust_free(t);
		t = NULL;
	}
	agentid_bundle_free(b);
	return t;
}

static struct agentid_trust *
example_trust(void)
{
	struct agentid_trust *t = make_example_trust();

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	return t;
}

/* Verifies a vector (with its chain) at the current time; returns the reason code. */
static const char *
verify_with(const char *name, const struct agentid_trust *t, time_t now, char **id)
{
	X509 *leaf = NULL;
	STACK_OF(X509) *chain = NULL;
	struct agentid_error e = { 0 };
	int r;

	load(name, &leaf, &chain);
	r = agentid_x509svid_verify(leaf, chain, t, now, id, &e);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	if (r == 0)
		return "ok";
	CU_ASSERT_EQUAL(r, AGENTID_EREJECTED);
	CU_ASSERT(e.detail[0] != '\0');
	return agentid_reason_code(e.reason);
}

static const char *
verify(const char *name)
{
	char *id = (char *)"x";
	const char *code = verify_with(name, trust, time(NULL), &id);

	if (strcmp(code, "ok") != 0)
		CU_ASSERT_PTR_NULL(id); /* cleared on failure */
	agentid_free(id);
	return code;
}

static void
test_valid(void)
{
	char *id = NULL;

	CU_ASSERT_STRING_EQUAL(verify_with("svid-valid.pem", trust, time(NULL), &id), "ok");
	CU_ASSERT_STRING_EQUAL(id, "spiffe://example.org/workload");
	agentid_free(id);
	/* spiffe_id may be NULL. */
	CU_ASSERT_STRING_EQUAL(verify_with("svid-valid.pem", trust, time(NULL), NULL), "ok");
}

static void
test_valid_chain(void)
{
	X509 *leaf = NULL;
	STACK_OF(X509) *chain = NULL;
	struct agentid_error e = { 0 };
	char *id = NULL;

	CU_ASSERT_STRING_EQUAL(verify_with("svid-valid-chain.pem", trust, time(NULL), &id), "ok");
	CU_ASSERT_STRING_EQUAL(id, "spiffe://example.org/chained");
	agentid_free(id);

	/* Without the intermediate the chain cannot be built. */
	load("svid-valid-chain.pem", &leaf, &chain);
	CU_ASSERT_EQUAL(sk_X509_num(chain), 1);
	CU_ASSERT_EQUAL(agentid_x509svid_verify(leaf, NULL, trust, time(NULL), NULL, &e),
	    AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "cert_untrusted");
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
}

static void
test_partial_chain_not_allowed(void)
{
	struct agentid_bundle *b = NULL;
	struct agentid_trust *t = NULL;
	X509 *inter = NULL;

	/* The intermediate alone is not a trust anchor: the chain must reach a root. */
	load("intermediate.pem", &inter, NULL);
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_new("example.org", &b), 0);
	CU_ASSERT_EQUAL(agentid_bundle_add_x509_authority(b, inter), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_trust_new(&t), 0);
	CU_ASSERT_EQUAL(agentid_trust_add_bundle(t, b), 0);
	CU_ASSERT_STRING_EQUAL(verify_with("svid-valid-chain.pem", t, time(NULL), NULL),
	    "cert_untrusted");
	agentid_trust_free(t);
	agentid_bundle_free(b);
	X509_free(inter);
}

static void
test_defects(void)
{
	CU_ASSERT_STRING_EQUAL(verify("svid-leaf-is-ca.pem"), "leaf_is_ca");
	CU_ASSERT_STRING_EQUAL(verify("svid-no-digital-signature.pem"), "bad_key_usage");
	CU_ASSERT_STRING_EQUAL(verify("svid-key-cert-sign.pem"), "bad_key_usage");
	CU_ASSERT_STRING_EQUAL(verify("svid-crl-sign.pem"), "bad_key_usage");
	CU_ASSERT_STRING_EQUAL(verify("svid-no-key-usage.pem"), "bad_key_usage");
	CU_ASSERT_STRING_EQUAL(verify("svid-two-uri-sans.pem"), "cert_invalid");
	CU_ASSERT_STRING_EQUAL(verify("svid-no-uri-san.pem"), "cert_invalid");
	CU_ASSERT_STRING_EQUAL(verify("svid-no-path.pem"), "bad_spiffe_id");
	CU_ASSERT_STRING_EQUAL(verify("svid-not-spiffe-uri.pem"), "bad_spiffe_id");
	CU_ASSERT_STRING_EQUAL(verify("svid-wrong-trust-domain.pem"), "untrusted_domain");
	CU_ASSERT_STRING_EQUAL(verify("svid-expired.pem"), "cert_expired");
	CU_ASSERT_STRING_EQUAL(verify("svid-unknown-ca.pem"), "cert_untrusted");
	/* A CA certificate is not a leaf. */
	CU_ASSERT_STRING_EQUAL(verify("ca.pem"), "bad_spiffe_id");
	CU_ASSERT_STRING_EQUAL(verify("intermediate.pem"), "bad_spiffe_id");
}

static void
test_time(void)
{
	/* 2000-06-01: the expired SVID was valid, but its CA (from 2024) was not yet. */
	CU_ASSERT_STRING_EQUAL(verify_with("svid-expired.pem", trust, 959817600, NULL),
	    "cert_expired");
	CU_ASSERT_STRING_EQUAL(verify_with("svid-valid.pem", trust, 959817600, NULL),
	    "cert_expired");
	/* 2200-01-01: everything has expired. */
	CU_ASSERT_STRING_EQUAL(verify_with("svid-valid.pem", trust, (time_t)7258118400LL, NULL),
	    "cert_expired");
	/* 2030-01-01 is inside the validity of the good vectors. */
	CU_ASSERT_STRING_EQUAL(verify_with("svid-valid.pem", trust, 1893456000, NULL), "ok");
}

static void
test_other_trust_domain(void)
{
	struct agentid_bundle *b = NULL;
	struct agentid_trust *t = NULL;
	X509 *other = NULL;

	/*
	 * other.org is trusted, with its own CA: a leaf for other.org signed by
	 * example.org's CA must not verify (the bundle of the ID's own trust
	 * domain is used, never another one).
	 */
	load("other.org-ca.pem", &other, NULL);
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_new("other.org", &b), 0);
	CU_ASSERT_EQUAL(agentid_bundle_add_x509_authority(b, other), 0);
	t = example_trust();
	CU_ASSERT_EQUAL(agentid_trust_add_bundle(t, b), 0);
	CU_ASSERT_EQUAL(agentid_trust_count(t), 2);
	CU_ASSERT_STRING_EQUAL(verify_with("svid-wrong-trust-domain.pem", t, time(NULL), NULL),
	    "cert_untrusted");
	CU_ASSERT_STRING_EQUAL(verify_with("svid-valid.pem", t, time(NULL), NULL), "ok");
	CU_ASSERT_STRING_EQUAL(verify_with("svid-other-org.pem", t, time(NULL), NULL), "ok");
	/* Without the other.org bundle, its SVIDs are from an untrusted domain. */
	CU_ASSERT_STRING_EQUAL(verify("svid-other-org.pem"), "untrusted_domain");
	agentid_trust_free(t);
	agentid_bundle_free(b);
	X509_free(other);
}

static void
test_empty_bundle(void)
{
	struct agentid_bundle *b = NULL;
	struct agentid_trust *t = NULL;
	const char *json = "{\"keys\": []}";
	struct agentid_error e = { 0 };

	/* An empty key set revokes everything of the trust domain. */
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_parse("example.org", json, strlen(json), &b, &e), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_trust_new(&t), 0);
	CU_ASSERT_EQUAL(agentid_trust_add_bundle(t, b), 0);
	CU_ASSERT_STRING_EQUAL(verify_with("svid-valid.pem", t, time(NULL), NULL),
	    "untrusted_domain");
	agentid_trust_free(t);
	agentid_bundle_free(b);

	/* No bundle at all. */
	CU_ASSERT_EQUAL_FATAL(agentid_trust_new(&t), 0);
	CU_ASSERT_STRING_EQUAL(verify_with("svid-valid.pem", t, time(NULL), NULL),
	    "untrusted_domain");
	agentid_trust_free(t);
}

static void
test_pem_bundle(void)
{
	struct agentid_bundle *b = NULL;
	struct agentid_trust *t = NULL;
	struct agentid_error e = { 0 };

	/* A PEM file of CA certificates is a bundle; its td comes from the URI SAN. */
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_load_file(NULL, tu_vector("x509/ca.pem"), &b, &e), 0);
	CU_ASSERT_STRING_EQUAL(agentid_bundle_trust_domain(b), "example.org");
	CU_ASSERT_EQUAL(sk_X509_num(agentid_bundle_x509_authorities(b)), 1);
	CU_ASSERT_EQUAL(agentid_keyset_count(agentid_bundle_jwt_keys(b)), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_trust_new(&t), 0);
	CU_ASSERT_EQUAL(agentid_trust_add_bundle(t, b), 0);
	CU_ASSERT_STRING_EQUAL(verify_with("svid-valid-chain.pem", t, time(NULL), NULL), "ok");
	agentid_trust_free(t);
	agentid_bundle_free(b);
}

static void
test_id_unverified(void)
{
	X509 *c = NULL;
	char *id = (char *)"x";
	struct agentid_error e = { 0 };

	load("svid-valid.pem", &c, NULL);
	CU_ASSERT_EQUAL(agentid_x509svid_id_unverified(c, &id, &e), 0);
	CU_ASSERT_STRING_EQUAL(id, "spiffe://example.org/workload");
	agentid_free(id);
	X509_free(c);

	/* No chain or key usage check: a CA's ID is returned too. */
	load("ca.pem", &c, NULL);
	CU_ASSERT_EQUAL(agentid_x509svid_id_unverified(c, &id, &e), 0);
	CU_ASSERT_STRING_EQUAL(id, "spiffe://example.org");
	agentid_free(id);
	X509_free(c);

	load("svid-unknown-ca.pem", &c, NULL);
	CU_ASSERT_EQUAL(agentid_x509svid_id_unverified(c, &id, &e), 0);
	agentid_free(id);
	X509_free(c);

	load("svid-no-uri-san.pem", &c, NULL);
	CU_ASSERT_EQUAL(agentid_x509svid_id_unverified(c, &id, &e), AGENTID_EREJECTED);
	CU_ASSERT_PTR_NULL(id);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "cert_invalid");
	X509_free(c);

	load("svid-two-uri-sans.pem", &c, NULL);
	CU_ASSERT_EQUAL(agentid_x509svid_id_unverified(c, &id, &e), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "cert_invalid");
	CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, "more than one URI SAN"));
	X509_free(c);

	load("svid-not-spiffe-uri.pem", &c, NULL);
	CU_ASSERT_EQUAL(agentid_x509svid_id_unverified(c, &id, &e), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "bad_spiffe_id");
	X509_free(c);

	CU_ASSERT_EQUAL(agentid_x509svid_id_unverified(NULL, &id, &e), AGENTID_EINVAL);
}

static void
test_load_pem(void)
{
	X509 *leaf = (X509 *)1;
	STACK_OF(X509) *chain = (void *)1;
	struct agentid_error e = { 0 };
	char *cert, *key, *both;
	size_t n;
	const char *junk = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
			   "-----END CERTIFICATE-----\n";

	CU_ASSERT_EQUAL(agentid_x509_load_pem("", 0, &leaf, &chain, &e), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "cert_invalid");
	CU_ASSERT_PTR_NULL(leaf);
	CU_ASSERT_PTR_NULL(chain);
	CU_ASSERT_EQUAL(agentid_x509_load_pem("hello", 5, &leaf, &chain, &e), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "cert_invalid");
	CU_ASSERT_EQUAL(agentid_x509_load_pem(junk, strlen(junk), &leaf, &chain, &e),
	    AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "cert_invalid");

	/* A private key block before the certificate is skipped. */
	cert = tu_read_vector("x509/svid-valid.pem", NULL);
	key = tu_read_vector("x509/svid-valid-key.pem", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cert);
	CU_ASSERT_PTR_NOT_NULL_FATAL(key);
	n = strlen(cert) + strlen(key) + 2;
	both = malloc(n + 1);
	snprintf(both, n + 1, "%s\n%s\n", key, cert);
	CU_ASSERT_EQUAL(agentid_x509_load_pem(both, strlen(both), &leaf, &chain, &e), 0);
	CU_ASSERT_PTR_NOT_NULL(leaf);
	CU_ASSERT_EQUAL(sk_X509_num(chain), 0);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);

	/* A corrupt second certificate fails the whole input. */
	free(both);
	n = strlen(cert) + strlen(junk) + 2;
	both = malloc(n);
	snprintf(both, n, "%s\n%s", cert, junk);
	CU_ASSERT_EQUAL(agentid_x509_load_pem(both, strlen(both), &leaf, &chain, &e),
	    AGENTID_EREJECTED);
	CU_ASSERT_PTR_NULL(leaf);
	free(both);
	free(cert);
	free(key);

	CU_ASSERT_NOT_EQUAL(agentid_x509_load_pem_file("/nonexistent/svid.pem", &leaf, &chain,
	    &e), 0);
	CU_ASSERT_PTR_NULL(leaf);
	CU_ASSERT_EQUAL(agentid_x509_load_pem(NULL, 0, &leaf, NULL, &e), AGENTID_EINVAL);
}

static void
test_null(void)
{
	X509 *leaf = NULL;
	struct agentid_error e = { 0 };

	load("svid-valid.pem", &leaf, NULL);
	CU_ASSERT_EQUAL(agentid_x509svid_verify(NULL, NULL, trust, time(NULL), NULL, &e),
	    AGENTID_EINVAL);
	CU_ASSERT_EQUAL(agentid_x509svid_verify(leaf, NULL, NULL, time(NULL), NULL, &e),
	    AGENTID_EINVAL);
	X509_free(leaf);
}

int
main(void)
{
	static const struct tu_test tests[] = {
		{ "valid SVID", test_valid },
		{ "valid SVID with intermediate", test_valid_chain },
		{ "partial chain not allowed", test_partial_chain_not_allowed },
		{ "defective SVIDs", test_defects },
		{ "validation time", test_time },
		{ "own trust domain's bundle only", test_other_trust_domain },
		{ "empty or missing bundle", test_empty_bundle },
		{ "PEM bundle", test_pem_bundle },
		{ "ID without verification", test_id_unverified },
		{ "PEM loading", test_load_pem },
		{ "NULL arguments", test_null },
		TU_END
	};
	int r;

	if ((trust = make_example_trust()) == NULL)
		return 1;
	r = tu_run("x509svid", tests);
	agentid_trust_free(trust);
	return r;
}
