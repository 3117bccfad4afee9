/*
 * agentid: JOSE primitives -- strict base64url, strict JSON, JWK/JWK Set,
 * RFC 7638 thumbprints, JWS compact parse/sign/verify.
 *
 * Keys are parsed once into EVP_PKEYs.  A key (struct agentid_key) and a
 * key set (struct agentid_keyset) are reference counted and immutable
 * once shared, so they may be used from many threads at once.
 */
#ifndef AGENTID_JOSE_H
#define AGENTID_JOSE_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <agentid/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- algorithms ---- */

enum agentid_alg {
	AGENTID_ALG_UNKNOWN = 0,
	AGENTID_ALG_ES256,
	AGENTID_ALG_ES384,
	AGENTID_ALG_ES512,
	AGENTID_ALG_RS256,
	AGENTID_ALG_RS384,
	AGENTID_ALG_RS512,
	AGENTID_ALG_PS256,
	AGENTID_ALG_PS384,
	AGENTID_ALG_PS512,
	AGENTID_ALG_EDDSA,
	/*
	 * "Ed25519" of RFC 9864: EdDSA on the Ed25519 curve only, the fully
	 * specified name of what "EdDSA" (RFC 8037, now deprecated) means for
	 * the only Edwards curve we support.  Added last so that the values
	 * above stay stable.
	 */
	AGENTID_ALG_ED25519,
	AGENTID_ALG__COUNT
};

#define AGENTID_ALG_BIT(a) (1u << (a))
#define AGENTID_ALGS_EC                                                                            \
	(AGENTID_ALG_BIT(AGENTID_ALG_ES256) | AGENTID_ALG_BIT(AGENTID_ALG_ES384)                   \
	    | AGENTID_ALG_BIT(AGENTID_ALG_ES512))
#define AGENTID_ALGS_RSA                                                                           \
	(AGENTID_ALG_BIT(AGENTID_ALG_RS256) | AGENTID_ALG_BIT(AGENTID_ALG_RS384)                   \
	    | AGENTID_ALG_BIT(AGENTID_ALG_RS512) | AGENTID_ALG_BIT(AGENTID_ALG_PS256)              \
	    | AGENTID_ALG_BIT(AGENTID_ALG_PS384) | AGENTID_ALG_BIT(AGENTID_ALG_PS512))
/* Both names of EdDSA with Ed25519: "EdDSA" (RFC 8037) and "Ed25519" (RFC 9864). */
#define AGENTID_ALGS_ED25519                                                                       \
	(AGENTID_ALG_BIT(AGENTID_ALG_EDDSA) | AGENTID_ALG_BIT(AGENTID_ALG_ED25519))
/* What SPIFFE JWT-SVIDs allow: RS*, ES*, PS* (not EdDSA nor Ed25519). */
#define AGENTID_ALGS_JWT_SVID (AGENTID_ALGS_EC | AGENTID_ALGS_RSA)
#define AGENTID_ALGS_ALL (AGENTID_ALGS_JWT_SVID | AGENTID_ALGS_ED25519)

/* "ES256" -> AGENTID_ALG_ES256.  "none", "HS256" and anything unknown -> AGENTID_ALG_UNKNOWN. */
enum agentid_alg agentid_alg_from_name(const char *name, size_t len);
/* AGENTID_ALG_ES256 -> "ES256"; NULL for UNKNOWN. */
const char *agentid_alg_name(enum agentid_alg alg);
/* Parses "ES256,EdDSA" (comma or space separated) into a bit mask; AGENTID_EINVAL on an unknown
 * name. */
int agentid_algs_parse(const char *list, unsigned *mask);

/* ---- base64url (RFC 4648 section 5, no padding, canonical) ---- */

/* Encoded length of n bytes, without terminator. */
size_t agentid_b64url_encoded_len(size_t n);
/* Upper bound of decoded length of n characters. */
size_t agentid_b64url_decoded_max(size_t n);
/* Writes a NUL-terminated encoding; outsz must be >= encoded_len + 1. */
int agentid_b64url_encode(
    const unsigned char *in, size_t n, char *out, size_t outsz, size_t *outlen);
/* Allocating variant; *out must be freed with agentid_free(). */
int agentid_b64url_encode_alloc(const unsigned char *in, size_t n, char **out);
/*
 * Strict decoding: rejects '=', '+', '/', whitespace, any other foreign
 * character, a length of 1 mod 4, and non-zero trailing bits.
 */
int agentid_b64url_decode(
    const char *in, size_t n, unsigned char *out, size_t outsz, size_t *outlen);

/* ---- strict JSON ---- */

/*
 * Parses exactly one JSON value: duplicate member names, nesting deeper
 * than max_depth, NUL characters and trailing data are rejected with
 * reasons DUPLICATE_MEMBER / TOO_DEEP / BAD_JSON.
 */
int agentid_json_parse(
    const char *s, size_t len, int max_depth, json_t **out, struct agentid_error *err);

/* ---- keys ---- */

struct agentid_key;

/*
 * Parses one JWK (public, or private with "d") into a key. Unknown kty,
 * curve, or a JWK "alg" we do not implement (e.g. RSA-OAEP) ->
 * AGENTID_EUNSUPPORTED.  Weak or malformed keys (RSA < 2048 bits, EC
 * coordinates not full length or not on the curve, RSA members with
 * leading zero octets, private parts not matching) -> AGENTID_EREJECTED
 * with BAD_KEY (BAD_ENCODING for bad base64url); an "x5c" certificate
 * whose key differs from the JWK's -> KEY_MISMATCH.
 */
int agentid_key_from_jwk(const json_t *jwk, struct agentid_key **out, struct agentid_error *err);
/*
 * Parses a PEM private key, public key or certificate (its public key; the
 * certificate is kept, further certificates become the chain).  Encrypted
 * private keys are refused (BAD_KEY); no passphrase is ever prompted for.
 */
int agentid_key_from_pem(
    const char *pem, size_t len, struct agentid_key **out, struct agentid_error *err);
/* A JWK (the file starts with '{') or PEM, as above; a missing file -> AGENTID_ENOTFOUND. */
int agentid_key_load_file(const char *path, struct agentid_key **out, struct agentid_error *err);
/*
 * Takes its own reference on pkey.  Other key types -> AGENTID_EUNSUPPORTED;
 * RSA < 2048 bits -> AGENTID_EREJECTED.
 */
int agentid_key_from_evp(EVP_PKEY *pkey, struct agentid_key **out);
/* Generates a fresh key for alg (P-256/384/521, RSA-3072 for RS/PS, Ed25519). */
int agentid_key_generate(enum agentid_alg alg, struct agentid_key **out);

struct agentid_key *agentid_key_ref(struct agentid_key *key);
void agentid_key_free(struct agentid_key *key); /* drops one reference; NULL is fine */

EVP_PKEY *agentid_key_evp(const struct agentid_key *key);
/* The certificate the key came from (PEM certificate, or x5c[0] of a JWK); NULL if none. */
X509 *agentid_key_cert(const struct agentid_key *key);
/* x5c[1..] of a JWK, or NULL. */
STACK_OF(X509) *agentid_key_cert_chain(const struct agentid_key *key);
const char *agentid_key_kid(const struct agentid_key *key); /* NULL when none */
/* Sets kid; only allowed before the key is shared with another thread. */
int agentid_key_set_kid(struct agentid_key *key, const char *kid);
/* The JWK "alg" restriction, or AGENTID_ALG_UNKNOWN when the JWK did not set one. */
enum agentid_alg agentid_key_alg(const struct agentid_key *key);
int agentid_key_set_alg(struct agentid_key *key, enum agentid_alg alg);
/* The JWK "use" ("sig", "jwt-svid", "x509-svid", ...), or NULL. */
const char *agentid_key_use(const struct agentid_key *key);
int agentid_key_set_use(struct agentid_key *key, const char *use);
int agentid_key_is_private(const struct agentid_key *key);
/*
 * 1 when the key may verify/sign alg: EC curve must match (P-256 for
 * ES256, ...), RSA modulus >= 2048 bits for RS and PS, Ed25519 for EdDSA
 * and Ed25519, and the JWK "alg" restriction (if any) must equal alg.  So
 * an Ed25519 key without "alg" serves both "EdDSA" and "Ed25519", a key
 * marked "alg":"EdDSA" only "EdDSA" and one marked "alg":"Ed25519" only
 * "Ed25519".  A key whose "use" is "enc" supports no signature algorithm.
 * 0 otherwise.
 */
int agentid_key_supports_alg(const struct agentid_key *key, enum agentid_alg alg);
/*
 * The JWK "alg" when set; else ES256/ES384/ES512 by curve, RS256 for RSA,
 * EdDSA for Ed25519 (the name every JOSE library understands); UNKNOWN
 * otherwise.
 */
enum agentid_alg agentid_key_default_alg(const struct agentid_key *key);

#define AGENTID_THUMBPRINT_LEN 43 /* base64url of a SHA-256 digest */
/* RFC 7638 SHA-256 thumbprint of the public key, base64url; out has AGENTID_THUMBPRINT_LEN+1 bytes.
 */
int agentid_key_thumbprint(const struct agentid_key *key, char *out, size_t outsz);
/* Public JWK: kty and key members, plus kid, alg, use when set, and x5c when a certificate is held.
 */
int agentid_key_to_jwk(const struct agentid_key *key, json_t **out);
/* PEM of the private key (PKCS#8) or, with public_only, of the public key (SPKI). agentid_free()
 * it. */
int agentid_key_to_pem(const struct agentid_key *key, int public_only, char **out);
/* Writes the private key as PKCS#8 PEM to path, created with mode 0600 (atomically replaced). */
int agentid_key_write_private_file(const struct agentid_key *key, const char *path);

/* ---- key sets (JWK Set) ---- */

struct agentid_keyset;

int agentid_keyset_new(struct agentid_keyset **out);
/*
 * Parses a JWK Set.  Keys of unknown kty, or that fail to parse, are
 * skipped (logged at DEBUG); a set that is not a JSON object with a "keys"
 * array is rejected.
 */
int agentid_keyset_parse(
    const char *json, size_t len, struct agentid_keyset **out, struct agentid_error *err);
int agentid_keyset_parse_json(
    const json_t *jwks, struct agentid_keyset **out, struct agentid_error *err);
/* Adds a reference to key. */
int agentid_keyset_add(struct agentid_keyset *ks, struct agentid_key *key);
size_t agentid_keyset_count(const struct agentid_keyset *ks);
const struct agentid_key *agentid_keyset_get(const struct agentid_keyset *ks, size_t i);
/* Exact byte match of kid; NULL when absent. */
const struct agentid_key *agentid_keyset_find(
    const struct agentid_keyset *ks, const char *kid, size_t kid_len);
/* {"keys":[...public JWKs...]} */
int agentid_keyset_to_json(const struct agentid_keyset *ks, json_t **out);
struct agentid_keyset *agentid_keyset_ref(struct agentid_keyset *ks);
void agentid_keyset_free(struct agentid_keyset *ks);

/* ---- raw signatures (JWS encoding: ECDSA is raw R||S of fixed length) ---- */

int agentid_sig_sign(const struct agentid_key *key, enum agentid_alg alg, const void *msg,
    size_t len, unsigned char **sig, size_t *sig_len);
/* 0 when valid; AGENTID_EREJECTED with BAD_SIGNATURE or KEY_MISMATCH otherwise. */
int agentid_sig_verify(const struct agentid_key *key, enum agentid_alg alg, const void *msg,
    size_t len, const unsigned char *sig, size_t sig_len, struct agentid_error *err);

/* ---- JWS compact serialization ---- */

struct agentid_jws {
	json_t *header; /* protected header, a JSON object */
	json_t *payload; /* payload, a JSON object */
	enum agentid_alg alg; /* from header "alg"; never UNKNOWN after a successful parse */
	const char *kid; /* header "kid" or NULL; points into header */
	const char *typ; /* header "typ" or NULL; points into header */
	const char *signing_input; /* "header.payload" bytes (not NUL-terminated) */
	size_t signing_input_len;
	unsigned char *sig;
	size_t sig_len;
	char *buf_; /* private storage */
};

/*
 * Structural parse: size limit, three base64url parts, strict JSON with
 * duplicate and depth limits, header "alg" known and not none/HS*, "crit"
 * rejected (we understand no extensions), "kid"/"typ" strings when present.
 * Does NOT verify the signature and does not reject embedded keys (DPoP
 * proofs carry "jwk"); the verifier does.  lim may be NULL for defaults.
 */
int agentid_jws_parse(const char *token, size_t len, const struct agentid_limits *lim,
    struct agentid_jws **out, struct agentid_error *err);
/* Signature check of a parsed JWS with key (key must support jws->alg). */
int agentid_jws_verify(
    const struct agentid_jws *jws, const struct agentid_key *key, struct agentid_error *err);
void agentid_jws_free(struct agentid_jws *jws);

/*
 * Signs payload.  The header is {"alg": alg, "kid": key kid if set} plus
 * the members of header_extra (may be NULL; e.g. {"typ":"at+jwt"}).  *out
 * is a NUL-terminated compact JWS to agentid_free().
 */
int agentid_jws_sign(const struct agentid_key *key, enum agentid_alg alg,
    const json_t *header_extra, const json_t *payload, char **out);

#ifdef __cplusplus
}
#endif
#endif
