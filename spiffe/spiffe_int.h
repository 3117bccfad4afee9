/*
 * Private helpers shared by the sources of spiffe/.  Never installed.
 */
#ifndef AGENTID_SPIFFE_INT_H
#define AGENTID_SPIFFE_INT_H

#include <openssl/x509.h>

#include <agentid/spiffe.h>

/*
 * The trust domain named by the spiffe:// URI SAN of a signing certificate,
 * copied NUL-terminated into td (AGENTID_TRUST_DOMAIN_MAX + 1 bytes).
 * Lenient about the path because CA certificates in the wild carry
 * "spiffe://td/" (see the example in SPIFFE_Trust_Domain_and_Bundle.md).
 * Returns 1 when found, 0 when the certificate names no trust domain, and
 * AGENTID_EREJECTED when it names more than one.
 */
int agentid_x509_spiffe_td(X509 *cert, char *td, size_t tdsz, struct agentid_error *err);

/* Standard (padded) base64 as used by x5c and by spiffe-helper's JWT bundle file. */
int agentid_b64std_decode(const char *in, size_t n, unsigned char **out, size_t *outlen);
int agentid_b64std_encode(const unsigned char *in, size_t n, char **out);

#endif
