/*
 * Private parts of the JOSE layer shared by key.c, keyset.c, sig.c and
 * jws.c.  Never installed.
 */
#ifndef AGENTID_JOSE_INT_H
#define AGENTID_JOSE_INT_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <agentid/jose.h>

#include "internal.h"

/* Largest EC coordinate / scalar we handle (P-521). */
#define AGENTID_EC_MAX_COORD 66

enum agentid_key_type { AGENTID_KEY_EC = 1, AGENTID_KEY_RSA, AGENTID_KEY_ED25519 };

/*
 * A parsed key.  Everything the signature hot path needs (type, curve,
 * modulus size, group order) is computed once when the key is built, so
 * that agentid_key_supports_alg() and agentid_sig_verify() never have to
 * ask OpenSSL about the key again.
 */
struct agentid_key {
	agentid_refcnt ref;
	EVP_PKEY *pkey;
	X509 *cert;
	STACK_OF(X509) *chain;
	char *kid;
	char *use;
	enum agentid_alg alg;
	int is_private;
	enum agentid_key_type type;
	int curve_nid; /* EC only */
	size_t coord_len; /* EC: bytes of one coordinate / of R and S */
	unsigned char
	    order[AGENTID_EC_MAX_COORD]; /* EC: group order, big-endian, coord_len bytes */
	int rsa_bits; /* RSA only */
	size_t sig_len; /* JWS signature length (RSA: modulus bytes) */
	/*
	 * Signature contexts prepared on first use, one per direction (0
	 * verify, 1 sign) and algorithm, and duplicated for every operation
	 * (sig.c).  Published with a compare-and-swap, so a key shared by
	 * several threads needs no lock; freed with the key.
	 */
	_Atomic(EVP_MD_CTX *) sig_tmpl[2][AGENTID_ALG__COUNT];
};

/* Frees the prepared signature contexts of key (agentid_key_free). */
void agentid_sig_templates_free(struct agentid_key *key);

/* Standard base64 (RFC 4648 section 4, padded) as used by "x5c". */
int agentid_b64std_decode_alloc(const char *in, size_t n, unsigned char **out, size_t *outlen);
int agentid_b64std_encode_alloc(const unsigned char *in, size_t n, char **out);

#endif
