/*
 * Fuzz target: X.509-SVID input as PEM (and, through OpenSSL, DER inside
 * it), then the SVID rules and chain validation against a fixed empty trust.
 */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/x509.h>

#include <agentid/agentid.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct agentid_trust *trust;
	const unsigned char *p = data;
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = NULL;
	char *id = NULL;

	if (trust == NULL && agentid_trust_new(&trust) != 0)
		abort();
	if (agentid_x509_load_pem((const char *)data, size, &leaf, &chain, NULL) == 0) {
		if (agentid_x509svid_verify(leaf, chain, trust, 1700000000, &id, NULL) == 0)
			abort(); /* nothing is trusted: acceptance would be a bug */
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
