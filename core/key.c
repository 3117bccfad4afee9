/*
 * Keys: JWK (RFC 7517/7518, RFC 8037 for Ed25519) and PEM import, JWK and
 * PEM export, key generation, RFC 7638 thumbprints.
 *
 * Only the key types JOSE signatures need are accepted: EC on P-256,
 * P-384 and P-521, RSA of at least 2048 bits, and Ed25519.  Every key is
 * checked once on import (EC points on the curve, private halves matching
 * public halves) so that verification never meets a malformed key.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "jose_int.h"

#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 16384
#define KEY_FILE_MAX (1024 * 1024)
#define KID_MAX 1024

static const struct {
	const char *crv; /* JWK name */
	const char *group; /* OpenSSL group name */
	int nid;
	size_t coord_len;
	enum agentid_alg alg;
} ec_curves[] = {
	{ "P-256", "prime256v1", NID_X9_62_prime256v1, 32, AGENTID_ALG_ES256 },
	{ "P-384", "secp384r1", NID_secp384r1, 48, AGENTID_ALG_ES384 },
	{ "P-521", "secp521r1", NID_secp521r1, 66, AGENTID_ALG_ES512 },
};

#define N_CURVES (sizeof(ec_curves) / sizeof(ec_curves[0]))

/* ---------------------------------------------------------------- helpers */

static int
curve_index_by_nid(int nid)
{
	size_t i;

	for (i = 0; i < N_CURVES; i++)
		if (ec_curves[i].nid == nid)
			return (int)i;
	return -1;
}

static int
curve_index_by_crv(const char *crv)
{
	size_t i;

	for (i = 0; i < N_CURVES; i++)
		if (strcmp(ec_curves[i].crv, crv) == 0)
			return (int)i;
	return -1;
}

/* A string member of a JSON object: NULL when absent; -1 when present but not a clean string. */
static int
jwk_string(const json_t *jwk, const char *name, const char **out, size_t *len)
{
	const json_t *v = json_object_get(jwk, name);

	*out = NULL;
	if (len != NULL)
		*len = 0;
	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return -1;
	/* A NUL inside the value would make C string handling disagree with the JSON. */
	if (strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	*out = json_string_value(v);
	if (len != NULL)
		*len = json_string_length(v);
	return 0;
}

/*
 * Decodes a base64url member into a freshly allocated buffer.  Missing,
 * non-string, empty or badly encoded members are rejected with BAD_KEY
 * (or BAD_ENCODING for the encoding itself).
 */
static int
jwk_b64_member(const json_t *jwk, const char *name, unsigned char **out, size_t *outlen,
    struct agentid_error *err)
{
	const char *s;
	unsigned char *buf;
	size_t len, cap;
	int r;

	*out = NULL;
	*outlen = 0;
	if (jwk_string(jwk, name, &s, &len) != 0)
		return agentid_error_set(
		    err, AGENTID_R_BAD_KEY, "JWK member \"%s\" is not a string", name);
	if (s == NULL || len == 0)
		return agentid_error_set(
		    err, AGENTID_R_BAD_KEY, "JWK member \"%s\" is missing", name);
	cap = agentid_b64url_decoded_max(len);
	if ((buf = agentid_malloc(cap)) == NULL)
		return AGENTID_ENOMEM;
	if ((r = agentid_b64url_decode(s, len, buf, cap, outlen)) != 0) {
		agentid_free(buf);
		return agentid_error_set(
		    err, AGENTID_R_BAD_ENCODING, "JWK member \"%s\" is not base64url", name);
	}
	*out = buf;
	return 0;
}

static void
secret_free(unsigned char *p, size_t n)
{
	if (p != NULL)
		agentid_freezero(p, n);
}

static struct agentid_key *
key_alloc(void)
{
	struct agentid_key *key;

	if ((key = agentid_calloc(1, sizeof(*key))) == NULL)
		return NULL;
	agentid_ref_init(&key->ref);
	return key;
}

/*
 * Fills the cached type information from key->pkey and rejects key types
 * and sizes we do not support.
 */
static int
key_classify(struct agentid_key *key, struct agentid_error *err)
{
	EVP_PKEY *pkey = key->pkey;
	EC_GROUP *group = NULL;
	char gname[64];
	size_t glen = 0;
	int idx, r;

	if (EVP_PKEY_is_a(pkey, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(
		        pkey, OSSL_PKEY_PARAM_GROUP_NAME, gname, sizeof(gname), &glen)
		    != 1)
			return agentid_error_set(
			    err, AGENTID_R_BAD_KEY, "EC key without a named curve");
		idx = curve_index_by_nid(OBJ_txt2nid(gname));
		if (idx < 0) {
			agentid_error_set(
			    err, AGENTID_R_BAD_KEY, "EC curve %s is not supported", gname);
			return AGENTID_EUNSUPPORTED;
		}
		key->type = AGENTID_KEY_EC;
		key->curve_nid = ec_curves[idx].nid;
		key->coord_len = ec_curves[idx].coord_len;
		key->sig_len = 2 * key->coord_len;
		/* The group order bounds r and s of every signature we check. */
		if ((group = EC_GROUP_new_by_curve_name(key->curve_nid)) == NULL)
			return AGENTID_ECRYPTO;
		r = BN_bn2binpad(EC_GROUP_get0_order(group), key->order, (int)key->coord_len);
		EC_GROUP_free(group);
		if (r != (int)key->coord_len)
			return AGENTID_ECRYPTO;
		return 0;
	}
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		key->type = AGENTID_KEY_RSA;
		key->rsa_bits = EVP_PKEY_get_bits(pkey);
		if (key->rsa_bits < RSA_MIN_BITS)
			return agentid_error_set(err, AGENTID_R_BAD_KEY,
			    "RSA modulus of %d bits is below %d", key->rsa_bits, RSA_MIN_BITS);
		if (key->rsa_bits > RSA_MAX_BITS)
			return agentid_error_set(err, AGENTID_R_BAD_KEY,
			    "RSA modulus of %d bits is too large", key->rsa_bits);
		key->sig_len = (size_t)(key->rsa_bits + 7) / 8;
		return 0;
	}
	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		key->type = AGENTID_KEY_ED25519;
		key->sig_len = 64;
		return 0;
	}
	agentid_error_set(err, AGENTID_R_BAD_KEY, "key type %s is not supported",
	    EVP_PKEY_get0_type_name(pkey) != NULL ? EVP_PKEY_get0_type_name(pkey) : "?");
	return AGENTID_EUNSUPPORTED;
}

/*
 * Whether pkey holds a private half.  Asking for a private parameter is
 * the one way that works for every provider key type.
 */
static int
pkey_has_private(EVP_PKEY *pkey)
{
	BIGNUM *bn = NULL;
	unsigned char raw[64];
	size_t rawlen = sizeof(raw);
	int has;

	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		has = EVP_PKEY_get_raw_private_key(pkey, raw, &rawlen) == 1;
		OPENSSL_cleanse(raw, sizeof(raw));
		ERR_clear_error();
		return has;
	}
	if (EVP_PKEY_is_a(pkey, "RSA"))
		has = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_D, &bn) == 1;
	else
		has = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1;
	BN_clear_free(bn);
	ERR_clear_error();
	return has;
}

/*
 * RSA sanity checks that cost microseconds rather than the milliseconds of
 * OpenSSL's SP 800-56B validation (which runs primality tests): n and e
 * odd, e > 1, and for a private key n = p * q.  A private half that does
 * not match would only make our own signatures fail, never accept a
 * forged one, so this is hygiene, not a security boundary.
 */
static int
rsa_check(EVP_PKEY *pkey, int is_private, struct agentid_error *err)
{
	BIGNUM *n = NULL, *e = NULL, *p = NULL, *q = NULL, *pq = NULL;
	BN_CTX *bnctx = NULL;
	int r = AGENTID_ECRYPTO;

	if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1
	    || EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
		goto out;
	if (!BN_is_odd(n) || !BN_is_odd(e) || BN_is_one(e)) {
		r = agentid_error_set(err, AGENTID_R_BAD_KEY, "RSA public key is invalid");
		goto out;
	}
	if (is_private && EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_FACTOR1, &p) == 1
	    && EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_FACTOR2, &q) == 1) {
		if ((bnctx = BN_CTX_secure_new()) == NULL || (pq = BN_secure_new()) == NULL
		    || BN_mul(pq, p, q, bnctx) != 1)
			goto out;
		if (BN_cmp(pq, n) != 0) {
			r = agentid_error_set(
			    err, AGENTID_R_BAD_KEY, "RSA private key does not match its modulus");
			goto out;
		}
	}
	r = 0;
out:
	ERR_clear_error();
	BN_free(n);
	BN_free(e);
	BN_clear_free(p);
	BN_clear_free(q);
	BN_clear_free(pq);
	BN_CTX_free(bnctx);
	return r;
}

/*
 * Checks the key material once, on import: EC points on the curve (the
 * "quick" check suffices, the NIST curves have cofactor 1), EC private
 * scalars matching the public point, RSA as above.  Ed25519 public keys
 * need no check and private ones were compared with "x" by the caller.
 */
static int
pkey_check(struct agentid_key *key, struct agentid_error *err)
{
	EVP_PKEY_CTX *ctx;
	int ok;

	if (key->type == AGENTID_KEY_RSA)
		return rsa_check(key->pkey, key->is_private, err);
	if (key->type != AGENTID_KEY_EC)
		return 0;
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL)) == NULL)
		return AGENTID_ENOMEM;
	ok = EVP_PKEY_public_check_quick(ctx) == 1;
	if (ok && key->is_private)
		ok = EVP_PKEY_pairwise_check(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	if (!ok) {
		ERR_clear_error();
		return agentid_error_set(err, AGENTID_R_BAD_KEY, "key fails its consistency check");
	}
	return 0;
}

/* Builds an EVP_PKEY of type name from params. */
static int
pkey_fromdata(
    const char *name, OSSL_PARAM_BLD *bld, int selection, EVP_PKEY **out, struct agentid_error *err)
{
	EVP_PKEY_CTX *ctx = NULL;
	OSSL_PARAM *params = NULL;
	int r = AGENTID_ECRYPTO;

	*out = NULL;
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL)) == NULL)
		goto out;
	if (EVP_PKEY_fromdata_init(ctx) != 1)
		goto out;
	if (EVP_PKEY_fromdata(ctx, out, selection, params) != 1) {
		ERR_clear_error();
		r = agentid_error_set(
		    err, AGENTID_R_BAD_KEY, "%s key parameters are invalid", name);
		goto out;
	}
	r = 0;
out:
	OSSL_PARAM_free(params);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/* ---------------------------------------------------------------- JWK import */

static int
jwk_ec(const json_t *jwk, int has_d, EVP_PKEY **out, struct agentid_error *err)
{
	unsigned char *x = NULL, *y = NULL, *d = NULL;
	unsigned char point[1 + 2 * AGENTID_EC_MAX_COORD];
	size_t xlen, ylen, dlen = 0, cl;
	OSSL_PARAM_BLD *bld = NULL;
	BIGNUM *dbn = NULL;
	const char *crv;
	int idx, r;

	*out = NULL;
	if (jwk_string(jwk, "crv", &crv, NULL) != 0 || crv == NULL)
		return agentid_error_set(err, AGENTID_R_BAD_KEY, "EC JWK without \"crv\"");
	if ((idx = curve_index_by_crv(crv)) < 0) {
		agentid_error_set(err, AGENTID_R_BAD_KEY, "EC curve is not supported");
		return AGENTID_EUNSUPPORTED;
	}
	cl = ec_curves[idx].coord_len;
	if ((r = jwk_b64_member(jwk, "x", &x, &xlen, err)) != 0
	    || (r = jwk_b64_member(jwk, "y", &y, &ylen, err)) != 0)
		goto out;
	/* RFC 7518 section 6.2.1.2: coordinates are always full length. */
	if (xlen != cl || ylen != cl) {
		r = agentid_error_set(err, AGENTID_R_BAD_KEY, "EC coordinate has the wrong length");
		goto out;
	}
	point[0] = 0x04;
	memcpy(point + 1, x, cl);
	memcpy(point + 1 + cl, y, cl);
	if (has_d) {
		if ((r = jwk_b64_member(jwk, "d", &d, &dlen, err)) != 0)
			goto out;
		if (dlen != cl) {
			r = agentid_error_set(
			    err, AGENTID_R_BAD_KEY, "EC private key has the wrong length");
			goto out;
		}
		if ((dbn = BN_secure_new()) == NULL || BN_bin2bn(d, (int)dlen, dbn) == NULL) {
			r = AGENTID_ENOMEM;
			goto out;
		}
	}
	r = AGENTID_ENOMEM;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto out;
	if (OSSL_PARAM_BLD_push_utf8_string(
	        bld, OSSL_PKEY_PARAM_GROUP_NAME, ec_curves[idx].group, 0)
	        != 1
	    || OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * cl)
	        != 1)
		goto out;
	if (dbn != NULL && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, dbn) != 1)
		goto out;
	r = pkey_fromdata(
	    "EC", bld, dbn != NULL ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, out, err);
out:
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(dbn);
	agentid_free(x);
	agentid_free(y);
	secret_free(d, dlen);
	return r;
}

/* RFC 7518 section 6.3.1: unsigned big-endian in the minimum number of octets. */
static int
jwk_rsa_bn(const json_t *jwk, const char *name, int secret, BIGNUM **out, struct agentid_error *err)
{
	unsigned char *b = NULL;
	size_t blen = 0;
	int r;

	*out = NULL;
	if ((r = jwk_b64_member(jwk, name, &b, &blen, err)) != 0)
		return r;
	if (b[0] == 0) {
		r = agentid_error_set(
		    err, AGENTID_R_BAD_KEY, "RSA member \"%s\" has a leading zero", name);
		goto out;
	}
	if ((*out = secret ? BN_secure_new() : BN_new()) == NULL
	    || BN_bin2bn(b, (int)blen, *out) == NULL) {
		BN_clear_free(*out);
		*out = NULL;
		r = AGENTID_ENOMEM;
		goto out;
	}
	r = 0;
out:
	secret_free(b, blen);
	return r;
}

static int
jwk_rsa(const json_t *jwk, int has_d, EVP_PKEY **out, struct agentid_error *err)
{
	static const char *const priv_names[] = { "d", "p", "q", "dp", "dq", "qi" };
	static const char *const priv_params[]
	    = { OSSL_PKEY_PARAM_RSA_D, OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
		      OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2,
		      OSSL_PKEY_PARAM_RSA_COEFFICIENT1 };
	BIGNUM *n = NULL, *e = NULL, *priv[6] = { NULL };
	OSSL_PARAM_BLD *bld = NULL;
	size_t i;
	int r, bits;

	*out = NULL;
	if ((r = jwk_rsa_bn(jwk, "n", 0, &n, err)) != 0
	    || (r = jwk_rsa_bn(jwk, "e", 0, &e, err)) != 0)
		goto out;
	/* Refuse weak keys before doing any work with them. */
	bits = BN_num_bits(n);
	if (bits < RSA_MIN_BITS) {
		r = agentid_error_set(err, AGENTID_R_BAD_KEY, "RSA modulus of %d bits is below %d",
		    bits, RSA_MIN_BITS);
		goto out;
	}
	if (bits > RSA_MAX_BITS) {
		r = agentid_error_set(
		    err, AGENTID_R_BAD_KEY, "RSA modulus of %d bits is too large", bits);
		goto out;
	}
	if (!BN_is_odd(e) || BN_is_one(e)) {
		r = agentid_error_set(err, AGENTID_R_BAD_KEY, "RSA public exponent is invalid");
		goto out;
	}
	if (has_d) {
		if (json_object_get(jwk, "oth") != NULL) {
			agentid_error_set(
			    err, AGENTID_R_BAD_KEY, "multi-prime RSA is not supported");
			r = AGENTID_EUNSUPPORTED;
			goto out;
		}
		for (i = 0; i < 6; i++)
			if ((r = jwk_rsa_bn(jwk, priv_names[i], 1, &priv[i], err)) != 0)
				goto out;
	}
	r = AGENTID_ENOMEM;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto out;
	if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1
	    || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1)
		goto out;
	if (has_d)
		for (i = 0; i < 6; i++)
			if (OSSL_PARAM_BLD_push_BN(bld, priv_params[i], priv[i]) != 1)
				goto out;
	r = pkey_fromdata("RSA", bld, has_d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, out, err);
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	for (i = 0; i < 6; i++)
		BN_clear_free(priv[i]);
	return r;
}

static int
jwk_okp(const json_t *jwk, int has_d, EVP_PKEY **out, struct agentid_error *err)
{
	unsigned char *x = NULL, *d = NULL, pub[32];
	size_t xlen = 0, dlen = 0, publen = sizeof(pub);
	const char *crv;
	int r;

	*out = NULL;
	if (jwk_string(jwk, "crv", &crv, NULL) != 0 || crv == NULL)
		return agentid_error_set(err, AGENTID_R_BAD_KEY, "OKP JWK without \"crv\"");
	if (strcmp(crv, "Ed25519") != 0) {
		agentid_error_set(err, AGENTID_R_BAD_KEY, "OKP curve is not supported");
		return AGENTID_EUNSUPPORTED;
	}
	if ((r = jwk_b64_member(jwk, "x", &x, &xlen, err)) != 0)
		goto out;
	if (xlen != 32) {
		r = agentid_error_set(
		    err, AGENTID_R_BAD_KEY, "Ed25519 public key has the wrong length");
		goto out;
	}
	if (has_d) {
		if ((r = jwk_b64_member(jwk, "d", &d, &dlen, err)) != 0)
			goto out;
		if (dlen != 32) {
			r = agentid_error_set(
			    err, AGENTID_R_BAD_KEY, "Ed25519 private key has the wrong length");
			goto out;
		}
		*out = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d, dlen);
		if (*out == NULL) {
			r = AGENTID_ECRYPTO;
			goto out;
		}
		/* The public key is derived from d; it must be the one the JWK states. */
		if (EVP_PKEY_get_raw_public_key(*out, pub, &publen) != 1 || publen != 32
		    || memcmp(pub, x, 32) != 0) {
			EVP_PKEY_free(*out);
			*out = NULL;
			r = agentid_error_set(
			    err, AGENTID_R_BAD_KEY, "Ed25519 private key does not match \"x\"");
			goto out;
		}
	} else if ((*out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xlen)) == NULL) {
		ERR_clear_error();
		r = agentid_error_set(err, AGENTID_R_BAD_KEY, "Ed25519 public key is invalid");
		goto out;
	}
	r = 0;
out:
	agentid_free(x);
	secret_free(d, dlen);
	return r;
}

/* "x5c": certificates in standard base64 DER; the first one holds the key. */
static int
jwk_x5c(const json_t *x5c, struct agentid_key *key, struct agentid_error *err)
{
	const unsigned char *p;
	unsigned char *der = NULL;
	size_t i, derlen = 0;
	const json_t *v;
	X509 *cert = NULL;
	int r;

	if (!json_is_array(x5c) || json_array_size(x5c) == 0)
		return agentid_error_set(
		    err, AGENTID_R_BAD_KEY, "\"x5c\" is not a non-empty array");
	json_array_foreach(x5c, i, v)
	{
		if (!json_is_string(v)) {
			r = agentid_error_set(
			    err, AGENTID_R_BAD_KEY, "\"x5c\" entry is not a string");
			goto out;
		}
		r = agentid_b64std_decode_alloc(
		    json_string_value(v), json_string_length(v), &der, &derlen);
		if (r == AGENTID_ENOMEM)
			goto out;
		if (r != 0 || derlen == 0 || derlen > LONG_MAX) {
			r = agentid_error_set(
			    err, AGENTID_R_BAD_ENCODING, "\"x5c\" entry %zu is not base64", i);
			goto out;
		}
		p = der;
		if ((cert = d2i_X509(NULL, &p, (long)derlen)) == NULL || p != der + derlen) {
			ERR_clear_error();
			r = agentid_error_set(err, AGENTID_R_CERT_INVALID,
			    "\"x5c\" entry %zu is not a DER certificate", i);
			goto out;
		}
		agentid_free(der);
		der = NULL;
		if (i == 0) {
			key->cert = cert;
		} else {
			if (key->chain == NULL && (key->chain = sk_X509_new_null()) == NULL) {
				r = AGENTID_ENOMEM;
				goto out;
			}
			if (sk_X509_push(key->chain, cert) <= 0) {
				r = AGENTID_ENOMEM;
				goto out;
			}
		}
		cert = NULL;
	}
	/* RFC 7517 section 4.7: the certificate's key MUST match the JWK's. */
	if (EVP_PKEY_eq(X509_get0_pubkey(key->cert), key->pkey) != 1) {
		ERR_clear_error();
		r = agentid_error_set(
		    err, AGENTID_R_KEY_MISMATCH, "\"x5c\" certificate does not hold the JWK's key");
		goto out;
	}
	r = 0;
out:
	X509_free(cert);
	agentid_free(der);
	return r;
}

static int
key_set_str(char **dst, const char *s)
{
	char *p = NULL;

	if (s != NULL && (p = agentid_strdup(s)) == NULL)
		return AGENTID_ENOMEM;
	agentid_free(*dst);
	*dst = p;
	return 0;
}

AGENTID_EXPORT int
agentid_key_from_jwk(const json_t *jwk, struct agentid_key **out, struct agentid_error *err)
{
	struct agentid_key *key = NULL;
	const char *kty, *kid, *alg, *use;
	size_t kidlen, alglen;
	const json_t *x5c;
	int r, has_d;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || jwk == NULL)
		return AGENTID_EINVAL;
	if (!json_is_object(jwk))
		return agentid_error_set(err, AGENTID_R_BAD_KEY, "JWK is not a JSON object");
	if (jwk_string(jwk, "kty", &kty, NULL) != 0 || kty == NULL)
		return agentid_error_set(err, AGENTID_R_BAD_KEY, "JWK without a \"kty\" string");
	if (jwk_string(jwk, "kid", &kid, &kidlen) != 0 || (kid != NULL && kidlen > KID_MAX))
		return agentid_error_set(err, AGENTID_R_BAD_KEY, "JWK \"kid\" is not a string");
	if (jwk_string(jwk, "use", &use, NULL) != 0)
		return agentid_error_set(err, AGENTID_R_BAD_KEY, "JWK \"use\" is not a string");
	if (jwk_string(jwk, "alg", &alg, &alglen) != 0)
		return agentid_error_set(err, AGENTID_R_BAD_KEY, "JWK \"alg\" is not a string");
	has_d = json_object_get(jwk, "d") != NULL;
	if ((key = key_alloc()) == NULL)
		return AGENTID_ENOMEM;
	/*
	 * A key restricted to an algorithm we do not implement (RSA-OAEP,
	 * HS256, ...) must not silently become an unrestricted signing key.
	 */
	if (alg != NULL && (key->alg = agentid_alg_from_name(alg, alglen)) == AGENTID_ALG_UNKNOWN) {
		agentid_error_set(
		    err, AGENTID_R_BAD_KEY, "JWK \"alg\" is not a supported algorithm");
		r = AGENTID_EUNSUPPORTED;
		goto out;
	}
	if (strcmp(kty, "EC") == 0)
		r = jwk_ec(jwk, has_d, &key->pkey, err);
	else if (strcmp(kty, "RSA") == 0)
		r = jwk_rsa(jwk, has_d, &key->pkey, err);
	else if (strcmp(kty, "OKP") == 0)
		r = jwk_okp(jwk, has_d, &key->pkey, err);
	else {
		agentid_error_set(err, AGENTID_R_BAD_KEY, "JWK \"kty\" is not supported");
		r = AGENTID_EUNSUPPORTED;
	}
	if (r != 0)
		goto out;
	key->is_private = has_d;
	if ((r = key_classify(key, err)) != 0)
		goto out;
	if ((r = pkey_check(key, err)) != 0)
		goto out;
	if (key->alg != AGENTID_ALG_UNKNOWN && !agentid_key_supports_alg(key, key->alg)) {
		r = agentid_error_set(
		    err, AGENTID_R_KEY_MISMATCH, "JWK \"alg\" does not fit its key type");
		goto out;
	}
	if ((x5c = json_object_get(jwk, "x5c")) != NULL && (r = jwk_x5c(x5c, key, err)) != 0)
		goto out;
	if ((r = key_set_str(&key->kid, kid)) != 0 || (r = key_set_str(&key->use, use)) != 0)
		goto out;
	*out = key;
	key = NULL;
	r = 0;
out:
	agentid_key_free(key);
	return r;
}

/* ---------------------------------------------------------------- PEM import */

static int
no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
	/* Encrypted PEM is not supported; never prompt on a terminal. */
	return 0;
}

static int
pem_certificates(BIO *bio, struct agentid_key *key, struct agentid_error *err)
{
	X509 *cert;

	if ((key->cert = PEM_read_bio_X509(bio, NULL, no_passphrase_cb, NULL)) == NULL) {
		ERR_clear_error();
		return agentid_error_set(err, AGENTID_R_CERT_INVALID, "PEM certificate is invalid");
	}
	/* Further certificates in the same file form the chain. */
	while ((cert = PEM_read_bio_X509(bio, NULL, no_passphrase_cb, NULL)) != NULL) {
		if (key->chain == NULL && (key->chain = sk_X509_new_null()) == NULL) {
			X509_free(cert);
			return AGENTID_ENOMEM;
		}
		if (sk_X509_push(key->chain, cert) <= 0) {
			X509_free(cert);
			return AGENTID_ENOMEM;
		}
	}
	ERR_clear_error();
	if ((key->pkey = X509_get_pubkey(key->cert)) == NULL)
		return agentid_error_set(err, AGENTID_R_BAD_KEY, "certificate key is unusable");
	return 0;
}

static int
pem_key(const char *pem, size_t len, EVP_PKEY **out, struct agentid_error *err)
{
	OSSL_DECODER_CTX *dctx;
	const unsigned char *p = (const unsigned char *)pem;
	size_t left = len;
	int ok;

	*out = NULL;
	dctx = OSSL_DECODER_CTX_new_for_pkey(out, "PEM", NULL, NULL, 0, NULL, NULL);
	if (dctx == NULL)
		return AGENTID_ECRYPTO;
	OSSL_DECODER_CTX_set_pem_password_cb(dctx, no_passphrase_cb, NULL);
	ok = OSSL_DECODER_from_data(dctx, &p, &left) == 1 && *out != NULL;
	OSSL_DECODER_CTX_free(dctx);
	if (!ok) {
		ERR_clear_error();
		EVP_PKEY_free(*out);
		*out = NULL;
		return agentid_error_set(err, AGENTID_R_BAD_KEY, "no usable PEM key");
	}
	return 0;
}

AGENTID_EXPORT int
agentid_key_from_pem(
    const char *pem, size_t len, struct agentid_key **out, struct agentid_error *err)
{
	struct agentid_key *key = NULL;
	BIO *bio = NULL;
	int r;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || pem == NULL || len > INT_MAX)
		return AGENTID_EINVAL;
	if ((key = key_alloc()) == NULL)
		return AGENTID_ENOMEM;
	if (memmem(pem, len, "-----BEGIN CERTIFICATE-----", 27) != NULL) {
		if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
			r = AGENTID_ENOMEM;
			goto out;
		}
		if ((r = pem_certificates(bio, key, err)) != 0)
			goto out;
	} else if ((r = pem_key(pem, len, &key->pkey, err)) != 0)
		goto out;
	if ((r = key_classify(key, err)) != 0)
		goto out;
	key->is_private = key->cert == NULL && pkey_has_private(key->pkey);
	if ((r = pkey_check(key, err)) != 0)
		goto out;
	*out = key;
	key = NULL;
	r = 0;
out:
	BIO_free(bio);
	agentid_key_free(key);
	return r;
}

AGENTID_EXPORT int
agentid_key_load_file(const char *path, struct agentid_key **out, struct agentid_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	json_t *jwk = NULL;
	int r;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || path == NULL)
		return AGENTID_EINVAL;
	if ((r = agentid_read_file(path, KEY_FILE_MAX, &buf, &len)) != 0)
		return r;
	/* A file that starts with '{' is a JWK; anything else is PEM. */
	{
		size_t i = 0;

		while (i < len
		    && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
			i++;
		if (i < len && buf[i] == '{') {
			if ((r = agentid_json_parse(buf, len, 0, &jwk, err)) == 0)
				r = agentid_key_from_jwk(jwk, out, err);
		} else
			r = agentid_key_from_pem(buf, len, out, err);
	}
	json_decref(jwk);
	agentid_freezero(buf, len);
	return r;
}

AGENTID_EXPORT int
agentid_key_from_evp(EVP_PKEY *pkey, struct agentid_key **out)
{
	struct agentid_key *key;
	int r;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || pkey == NULL)
		return AGENTID_EINVAL;
	if ((key = key_alloc()) == NULL)
		return AGENTID_ENOMEM;
	if (EVP_PKEY_up_ref(pkey) != 1) {
		agentid_key_free(key);
		return AGENTID_ECRYPTO;
	}
	key->pkey = pkey;
	if ((r = key_classify(key, NULL)) != 0) {
		agentid_key_free(key);
		return r;
	}
	key->is_private = pkey_has_private(pkey);
	*out = key;
	return 0;
}

AGENTID_EXPORT int
agentid_key_generate(enum agentid_alg alg, struct agentid_key **out)
{
	EVP_PKEY *pkey = NULL;
	int r;

	if (out != NULL)
		*out = NULL;
	if (out == NULL)
		return AGENTID_EINVAL;
	switch (alg) {
	case AGENTID_ALG_ES256:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case AGENTID_ALG_ES384:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		break;
	case AGENTID_ALG_ES512:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
		break;
	case AGENTID_ALG_RS256:
	case AGENTID_ALG_RS384:
	case AGENTID_ALG_RS512:
	case AGENTID_ALG_PS256:
	case AGENTID_ALG_PS384:
	case AGENTID_ALG_PS512:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
		break;
	case AGENTID_ALG_EDDSA:
	case AGENTID_ALG_ED25519:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	default:
		return AGENTID_EINVAL;
	}
	if (pkey == NULL)
		return AGENTID_ECRYPTO;
	r = agentid_key_from_evp(pkey, out);
	EVP_PKEY_free(pkey);
	return r;
}

/* ---------------------------------------------------------------- accessors */

AGENTID_EXPORT struct agentid_key *
agentid_key_ref(struct agentid_key *key)
{
	if (key != NULL)
		agentid_ref_get(&key->ref);
	return key;
}

AGENTID_EXPORT void
agentid_key_free(struct agentid_key *key)
{
	if (key == NULL || !agentid_ref_put(&key->ref))
		return;
	agentid_sig_templates_free(key);
	EVP_PKEY_free(key->pkey);
	X509_free(key->cert);
	sk_X509_pop_free(key->chain, X509_free);
	agentid_free(key->kid);
	agentid_free(key->use);
	agentid_freezero(key, sizeof(*key));
}

AGENTID_EXPORT EVP_PKEY *
agentid_key_evp(const struct agentid_key *key)
{
	return key != NULL ? key->pkey : NULL;
}

AGENTID_EXPORT X509 *
agentid_key_cert(const struct agentid_key *key)
{
	return key != NULL ? key->cert : NULL;
}

/* clang-format cannot parse the STACK_OF() macro as a type. */
/* clang-format off */
AGENTID_EXPORT STACK_OF(X509) *
agentid_key_cert_chain(const struct agentid_key *key)
{
	return key != NULL ? key->chain : NULL;
}
/* clang-format on */

AGENTID_EXPORT const char *
agentid_key_kid(const struct agentid_key *key)
{
	return key != NULL ? key->kid : NULL;
}

AGENTID_EXPORT int
agentid_key_set_kid(struct agentid_key *key, const char *kid)
{
	if (key == NULL || (kid != NULL && strlen(kid) > KID_MAX))
		return AGENTID_EINVAL;
	return key_set_str(&key->kid, kid);
}

AGENTID_EXPORT enum agentid_alg
agentid_key_alg(const struct agentid_key *key)
{
	return key != NULL ? key->alg : AGENTID_ALG_UNKNOWN;
}

AGENTID_EXPORT int
agentid_key_set_alg(struct agentid_key *key, enum agentid_alg alg)
{
	enum agentid_alg old;

	if (key == NULL || (unsigned)alg >= AGENTID_ALG__COUNT)
		return AGENTID_EINVAL;
	old = key->alg;
	key->alg = AGENTID_ALG_UNKNOWN;
	if (alg != AGENTID_ALG_UNKNOWN && !agentid_key_supports_alg(key, alg)) {
		key->alg = old;
		return AGENTID_EINVAL;
	}
	key->alg = alg;
	return 0;
}

AGENTID_EXPORT const char *
agentid_key_use(const struct agentid_key *key)
{
	return key != NULL ? key->use : NULL;
}

AGENTID_EXPORT int
agentid_key_set_use(struct agentid_key *key, const char *use)
{
	if (key == NULL)
		return AGENTID_EINVAL;
	return key_set_str(&key->use, use);
}

AGENTID_EXPORT int
agentid_key_is_private(const struct agentid_key *key)
{
	return key != NULL && key->is_private;
}

AGENTID_EXPORT int
agentid_key_supports_alg(const struct agentid_key *key, enum agentid_alg alg)
{
	if (key == NULL)
		return 0;
	/*
	 * A JWK "alg" restricts the key to exactly that name.  "EdDSA" and
	 * "Ed25519" compute the same signature with an Ed25519 key, yet a key
	 * marked with one does not verify tokens headed with the other: RFC
	 * 9864 makes them distinct identifiers, and a publisher that names one
	 * says which its signers use.  An Ed25519 key without "alg" serves
	 * both, so deployments can move from "EdDSA" to "Ed25519" without
	 * touching their key sets.
	 */
	if (key->alg != AGENTID_ALG_UNKNOWN && key->alg != alg)
		return 0;
	/* An encryption key must not verify signatures (RFC 7517 section 4.2). */
	if (key->use != NULL && strcmp(key->use, "enc") == 0)
		return 0;
	switch (alg) {
	case AGENTID_ALG_ES256:
		return key->type == AGENTID_KEY_EC && key->curve_nid == NID_X9_62_prime256v1;
	case AGENTID_ALG_ES384:
		return key->type == AGENTID_KEY_EC && key->curve_nid == NID_secp384r1;
	case AGENTID_ALG_ES512:
		return key->type == AGENTID_KEY_EC && key->curve_nid == NID_secp521r1;
	case AGENTID_ALG_RS256:
	case AGENTID_ALG_RS384:
	case AGENTID_ALG_RS512:
	case AGENTID_ALG_PS256:
	case AGENTID_ALG_PS384:
	case AGENTID_ALG_PS512:
		return key->type == AGENTID_KEY_RSA && key->rsa_bits >= RSA_MIN_BITS;
	case AGENTID_ALG_EDDSA:
	case AGENTID_ALG_ED25519:
		/* The key type is the curve: no other Edwards or OKP key passes. */
		return key->type == AGENTID_KEY_ED25519;
	default:
		return 0;
	}
}

AGENTID_EXPORT enum agentid_alg
agentid_key_default_alg(const struct agentid_key *key)
{
	int idx;

	if (key == NULL)
		return AGENTID_ALG_UNKNOWN;
	if (key->alg != AGENTID_ALG_UNKNOWN)
		return key->alg;
	switch (key->type) {
	case AGENTID_KEY_EC:
		idx = curve_index_by_nid(key->curve_nid);
		return idx >= 0 ? ec_curves[idx].alg : AGENTID_ALG_UNKNOWN;
	case AGENTID_KEY_RSA:
		return AGENTID_ALG_RS256;
	case AGENTID_KEY_ED25519:
		return AGENTID_ALG_EDDSA;
	default:
		return AGENTID_ALG_UNKNOWN;
	}
}

/* ---------------------------------------------------------------- export */

/* base64url of a BIGNUM parameter, minimal (RSA) or padded to padlen bytes (EC). */
static int
param_b64(EVP_PKEY *pkey, const char *param, size_t padlen, char **out)
{
	unsigned char buf[RSA_MAX_BITS / 8];
	BIGNUM *bn = NULL;
	int n, r;

	*out = NULL;
	if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
		return AGENTID_ECRYPTO;
	if (padlen != 0)
		n = BN_bn2binpad(bn, buf, (int)padlen);
	else if (BN_num_bytes(bn) > (int)sizeof(buf))
		n = -1;
	else
		n = BN_bn2bin(bn, buf);
	BN_free(bn);
	if (n <= 0)
		return AGENTID_ECRYPTO;
	r = agentid_b64url_encode_alloc(buf, (size_t)n, out);
	return r;
}

/*
 * The required public members of the key, as (name, value) pairs in
 * lexicographic order of the names -- exactly what RFC 7638 hashes.
 */
struct jwk_members {
	const char *kty;
	const char *crv;
	char *a, *b; /* EC: x, y; RSA: e, n; OKP: x */
};

static void
jwk_members_free(struct jwk_members *m)
{
	agentid_free(m->a);
	agentid_free(m->b);
}

static int
jwk_members_get(const struct agentid_key *key, struct jwk_members *m)
{
	unsigned char raw[32];
	size_t rawlen = sizeof(raw);
	int idx, r;

	memset(m, 0, sizeof(*m));
	switch (key->type) {
	case AGENTID_KEY_EC:
		m->kty = "EC";
		if ((idx = curve_index_by_nid(key->curve_nid)) < 0)
			return AGENTID_EINVAL;
		m->crv = ec_curves[idx].crv;
		if ((r = param_b64(key->pkey, OSSL_PKEY_PARAM_EC_PUB_X, key->coord_len, &m->a)) != 0
		    || (r = param_b64(key->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, key->coord_len, &m->b))
		        != 0)
			goto fail;
		return 0;
	case AGENTID_KEY_RSA:
		m->kty = "RSA";
		if ((r = param_b64(key->pkey, OSSL_PKEY_PARAM_RSA_E, 0, &m->a)) != 0
		    || (r = param_b64(key->pkey, OSSL_PKEY_PARAM_RSA_N, 0, &m->b)) != 0)
			goto fail;
		return 0;
	case AGENTID_KEY_ED25519:
		m->kty = "OKP";
		m->crv = "Ed25519";
		if (EVP_PKEY_get_raw_public_key(key->pkey, raw, &rawlen) != 1 || rawlen != 32)
			return AGENTID_ECRYPTO;
		return agentid_b64url_encode_alloc(raw, rawlen, &m->a);
	default:
		return AGENTID_EINVAL;
	}
fail:
	jwk_members_free(m);
	return r;
}

AGENTID_EXPORT int
agentid_key_thumbprint(const struct agentid_key *key, char *out, size_t outsz)
{
	struct jwk_members m;
	struct agentid_buf b;
	unsigned char md[32];
	unsigned int mdlen = 0;
	int r;

	if (out == NULL || outsz < AGENTID_THUMBPRINT_LEN + 1)
		return AGENTID_ERANGE;
	out[0] = '\0';
	if (key == NULL)
		return AGENTID_EINVAL;
	if ((r = jwk_members_get(key, &m)) != 0)
		return r;
	agentid_buf_init(&b, 0);
	/*
	 * RFC 7638 section 3: the required members only, names sorted, no
	 * whitespace.  The values are base64url or fixed names, so none of
	 * them needs JSON escaping.
	 */
	switch (key->type) {
	case AGENTID_KEY_EC:
		r = agentid_buf_printf(&b,
		    "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", m.crv, m.a, m.b);
		break;
	case AGENTID_KEY_RSA:
		r = agentid_buf_printf(&b, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", m.a, m.b);
		break;
	default:
		r = agentid_buf_printf(
		    &b, "{\"crv\":\"%s\",\"kty\":\"OKP\",\"x\":\"%s\"}", m.crv, m.a);
		break;
	}
	if (r != 0)
		goto out;
	if (EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		r = AGENTID_ECRYPTO;
		goto out;
	}
	r = agentid_b64url_encode(md, mdlen, out, outsz, NULL);
out:
	agentid_buf_free(&b);
	jwk_members_free(&m);
	return r;
}

static int
json_set_str(json_t *obj, const char *name, const char *value)
{
	return json_object_set_new(obj, name, json_string(value)) == 0 ? 0 : AGENTID_ENOMEM;
}

static int
cert_b64(X509 *cert, json_t *arr)
{
	unsigned char *der = NULL;
	char *s = NULL;
	int len, r;

	if ((len = i2d_X509(cert, &der)) <= 0)
		return AGENTID_ECRYPTO;
	r = agentid_b64std_encode_alloc(der, (size_t)len, &s);
	OPENSSL_free(der);
	if (r != 0)
		return r;
	r = json_array_append_new(arr, json_string(s)) == 0 ? 0 : AGENTID_ENOMEM;
	agentid_free(s);
	return r;
}

AGENTID_EXPORT int
agentid_key_to_jwk(const struct agentid_key *key, json_t **out)
{
	struct jwk_members m;
	json_t *jwk = NULL, *x5c = NULL;
	int r, i;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || key == NULL)
		return AGENTID_EINVAL;
	if ((r = jwk_members_get(key, &m)) != 0)
		return r;
	r = AGENTID_ENOMEM;
	if ((jwk = json_object()) == NULL)
		goto out;
	if (json_set_str(jwk, "kty", m.kty) != 0)
		goto out;
	switch (key->type) {
	case AGENTID_KEY_EC:
		if (json_set_str(jwk, "crv", m.crv) != 0 || json_set_str(jwk, "x", m.a) != 0
		    || json_set_str(jwk, "y", m.b) != 0)
			goto out;
		break;
	case AGENTID_KEY_RSA:
		if (json_set_str(jwk, "n", m.b) != 0 || json_set_str(jwk, "e", m.a) != 0)
			goto out;
		break;
	default:
		if (json_set_str(jwk, "crv", m.crv) != 0 || json_set_str(jwk, "x", m.a) != 0)
			goto out;
		break;
	}
	if (key->kid != NULL && json_set_str(jwk, "kid", key->kid) != 0)
		goto out;
	if (key->alg != AGENTID_ALG_UNKNOWN
	    && json_set_str(jwk, "alg", agentid_alg_name(key->alg)) != 0)
		goto out;
	if (key->use != NULL && json_set_str(jwk, "use", key->use) != 0)
		goto out;
	if (key->cert != NULL) {
		if ((x5c = json_array()) == NULL)
			goto out;
		if ((r = cert_b64(key->cert, x5c)) != 0)
			goto out;
		for (i = 0; key->chain != NULL && i < sk_X509_num(key->chain); i++)
			if ((r = cert_b64(sk_X509_value(key->chain, i), x5c)) != 0)
				goto out;
		r = AGENTID_ENOMEM;
		if (json_object_set(jwk, "x5c", x5c) != 0)
			goto out;
	}
	*out = jwk;
	jwk = NULL;
	r = 0;
out:
	json_decref(x5c);
	json_decref(jwk);
	jwk_members_free(&m);
	return r;
}

AGENTID_EXPORT int
agentid_key_to_pem(const struct agentid_key *key, int public_only, char **out)
{
	BIO *bio = NULL;
	char *data, *p;
	long n;
	int r = AGENTID_ECRYPTO;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || key == NULL)
		return AGENTID_EINVAL;
	if (!public_only && !key->is_private)
		return AGENTID_EINVAL;
	/* Private keys go through secure memory so no copy lingers in the heap. */
	if ((bio = BIO_new(public_only ? BIO_s_mem() : BIO_s_secmem())) == NULL)
		return AGENTID_ENOMEM;
	if (public_only) {
		if (PEM_write_bio_PUBKEY(bio, key->pkey) != 1)
			goto out;
	} else if (PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL) != 1)
		goto out;
	if ((n = BIO_get_mem_data(bio, &data)) <= 0)
		goto out;
	if ((p = agentid_strndup(data, (size_t)n)) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	*out = p;
	r = 0;
out:
	if (r != 0)
		ERR_clear_error();
	BIO_free(bio);
	return r;
}

AGENTID_EXPORT int
agentid_key_write_private_file(const struct agentid_key *key, const char *path)
{
	struct agentid_buf tmp;
	char *pem = NULL;
	size_t len, off = 0;
	ssize_t n;
	int fd = -1, created = 0, r;

	if (key == NULL || path == NULL)
		return AGENTID_EINVAL;
	if ((r = agentid_key_to_pem(key, 0, &pem)) != 0)
		return r;
	len = strlen(pem);
	agentid_buf_init(&tmp, 0);
	if ((r = agentid_buf_printf(&tmp, "%s.tmpXXXXXX", path)) != 0)
		goto out;
	/* mkstemp creates the file with mode 0600 before any byte is written. */
	if ((fd = mkstemp(tmp.data)) < 0) {
		r = AGENTID_EIO;
		goto out;
	}
	created = 1;
	if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
		r = AGENTID_EIO;
		goto out;
	}
	while (off < len) {
		n = write(fd, pem + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = AGENTID_EIO;
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0) {
		r = AGENTID_EIO;
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		r = AGENTID_EIO;
		goto out;
	}
	fd = -1;
	/* rename() replaces the old file atomically: readers see the old key or the new one. */
	if (rename(tmp.data, path) != 0) {
		r = AGENTID_EIO;
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (r != 0 && created)
		unlink(tmp.data);
	agentid_buf_free(&tmp);
	agentid_freezero(pem, len + 1);
	return r;
}
