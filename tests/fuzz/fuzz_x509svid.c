/*
 * Fuzz target: X.509-SVID input as PEM (and, through OpenSSL, DER inside
 * it), then the SVID rules and chain validation against a fixed trust: the
 * example.org CA of tests/vectors/x509/ca.pem, so that the vectors there
 * (leaf, leaf + intermediate) validate and mutations of them reach every
 * rule.  The input is also tried as one DER certificate.
 */
#include "fuzz_util.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

/* 2027: inside the validity of the vectors (2024..2124). */
#define X509_NOW ((time_t)1800000000)

static const char ca_pem[] = "-----BEGIN CERTIFICATE-----\n"
                             "MIIB1zCCAXygAwIBAgICEAAwCgYIKoZIzj0EAwIwLzEUMBIGA1UECgwLZXhhbXBs\n"
                             "ZS5vcmcxFzAVBgNVBAMMDmV4YW1wbGUub3JnIENBMCAXDTI0MDEwMTAwMDAwMFoY\n"
                             "DzIxMjQwMTAxMDAwMDAwWjAvMRQwEgYDVQQKDAtleGFtcGxlLm9yZzEXMBUGA1UE\n"
                             "AwwOZXhhbXBsZS5vcmcgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASKDM34\n"
                             "TRe2KR5d+dnGqKUpjxveVXjH9l6B8Ek5XVVHaYCS2KzxBRHM9pLiY/39eYGM0+MR\n"
                             "MI3BaHR0zr/QyUVUo4GFMIGCMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQD\n"
                             "AgEGMB0GA1UdDgQWBBRpKrdjYJfKiLQtbBppSUicdwYtzDAfBgNVHSMEGDAWgBRp\n"
                             "KrdjYJfKiLQtbBppSUicdwYtzDAfBgNVHREEGDAWhhRzcGlmZmU6Ly9leGFtcGxl\n"
                             "Lm9yZzAKBggqhkjOPQQDAgNJADBGAiEA7J+8xN5iyhlTOP2mBiBAENsz8bcCOBW2\n"
                             "w15fPCIGahECIQCzopZbP0ZCE/VzrapyPEtvlYMCdXc5sUPel7j8ZIo4qQ==\n"
                             "-----END CERTIFICATE-----\n";

static struct agentid_trust *trust;

static void
setup(void)
{
	struct agentid_bundle *b = NULL;
	BIO *bio = BIO_new_mem_buf(ca_pem, -1);
	X509 *ca = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	if (ca == NULL || agentid_bundle_new("example.org", &b) != 0
	    || agentid_bundle_add_x509_authority(b, ca) != 0 || agentid_trust_new(&trust) != 0
	    || agentid_trust_add_bundle(trust, b) != 0)
		abort();
	X509_free(ca);
	BIO_free(bio);
	agentid_bundle_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = NULL;
	char *id = NULL;

	if (trust == NULL)
		setup();
	if (agentid_x509_load_pem((const char *)data, size, &leaf, &chain, NULL) == 0) {
		if (agentid_x509svid_verify(leaf, chain, trust, X509_NOW, &id, NULL) == 0
		    && strncmp(id, "spiffe://example.org/", 21) != 0)
			abort(); /* only the one trusted domain can be accepted */
		agentid_free(id);
		id = NULL;
		if (agentid_x509svid_id_unverified(leaf, &id, NULL) == 0)
			agentid_free(id);
		X509_free(leaf);
		sk_X509_pop_free(chain, X509_free);
	}
	if ((leaf = d2i_X509(NULL, &p, (long)size)) != NULL) {
		id = NULL;
		if (agentid_x509svid_id_unverified(leaf, &id, NULL) == 0)
			agentid_free(id);
		X509_free(leaf);
	}
	return 0;
}
