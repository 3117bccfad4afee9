/*
 * Raw JWS signatures (RFC 7518 section 3, RFC 8037 section 3.1).
 *
 * ECDSA signatures travel as the fixed-length concatenation R || S, never
 * as DER.  Verification checks the length and the range of R and S itself
 * (0 < R, S < n) before OpenSSL sees anything, so the "psychic signature"
 * R = S = 0 is refused by our code and not by luck, and then re-encodes
 * the pair as DER in a stack buffer, without allocating.
 */
#include "config.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "jose_int.h"

enum sig_kind { SIG_ECDSA, SIG_RSA_PKCS1, SIG_RSA_PSS, SIG_EDDSA };

static const struct {
	enum sig_kind kind;
	const char *md; /* NULL for EdDSA, which hashes internally */
} sig_algs[AGENTID_ALG__COUNT] = {
	[AGENTID_ALG_ES256] = { SIG_ECDSA, "SHA256" },
	[AGENTID_ALG_ES384] = { SIG_ECDSA, "SHA384" },
	[AGENTID_ALG_ES512] = { SIG_ECDSA, "SHA512" },
	[AGENTID_ALG_RS256] = { SIG_RSA_PKCS1, "SHA256" },
	[AGENTID_ALG_RS384] = { SIG_RSA_PKCS1, "SHA384" },
	[AGENTID_ALG_RS512] = { SIG_RSA_PKCS1, "SHA512" },
	[AGENTID_ALG_PS256] = { SIG_RSA_PSS, "SHA256" },
	[AGENTID_ALG_PS384] = { SIG_RSA_PSS, "SHA384" },
	[AGENTID_ALG_PS512] = { SIG_RSA_PSS, "SHA512" },
	[AGENTID_ALG_EDDSA] = { SIG_EDDSA, NULL },
};

/* DER of SEQUENCE { INTEGER r, INTEGER s } for P-521 is at most 3 + 2 * (2 + 1 + 66) bytes. */
#define ECDSA_DER_MAX 160

/*
 * Sets up ctx for alg: the digest, and for PSS the padding with a salt as
 * long as the hash and MGF1 over the same hash (RFC 7518 section 3.5).
 */
static int
sig_ctx_init(EVP_MD_CTX *ctx, const struct agentid_key *key, enum agentid_alg alg, int sign)
{
	EVP_PKEY_CTX *pctx = NULL;
	const char *md = sig_algs[alg].md;
	int ok;

	if (sign)
		ok = EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, key->pkey, NULL) == 1;
	else
		ok = EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL, key->pkey, NULL) == 1;
	if (!ok)
		return AGENTID_ECRYPTO;
	if (sig_algs[alg].kind == SIG_RSA_PSS) {
		if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1
		    || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1
		    || EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, md, NULL) != 1)
			return AGENTID_ECRYPTO;
	} else if (sig_algs[alg].kind == SIG_RSA_PKCS1) {
		if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
			return AGENTID_ECRYPTO;
	}
	return 0;
}

/* Appends a DER INTEGER holding the unsigned big-endian v (len bytes) at p. */
static size_t
der_put_uint(unsigned char *p, const unsigned char *v, size_t len)
{
	size_t o = 0;

	/* Minimal encoding: no leading zero bytes, but one 0x00 if the top bit is set. */
	while (len > 1 && v[0] == 0) {
		v++;
		len--;
	}
	p[o++] = 0x02;
	p[o++] = (unsigned char)(len + ((v[0] & 0x80) ? 1 : 0));
	if (v[0] & 0x80)
		p[o++] = 0x00;
	memcpy(p + o, v, len);
	return o + len;
}

/* Encodes R || S (each n bytes, n <= 66) as a DER ECDSA-Sig-Value. */
static size_t
ecdsa_raw_to_der(const unsigned char *raw, size_t n, unsigned char *der)
{
	unsigned char body[ECDSA_DER_MAX];
	size_t blen = 0, o = 0;

	blen += der_put_uint(body + blen, raw, n);
	blen += der_put_uint(body + blen, raw + n, n);
	der[o++] = 0x30;
	if (blen >= 0x80)
		der[o++] = 0x81;
	der[o++] = (unsigned char)blen;
	memcpy(der + o, body, blen);
	return o + blen;
}

/* 1 when the big-endian v (n bytes) is zero or >= the group order. */
static int
ecdsa_scalar_out_of_range(const unsigned char *v, size_t n, const unsigned char *order)
{
	unsigned char acc = 0;
	size_t i;

	for (i = 0; i < n; i++)
		acc |= v[i];
	if (acc == 0)
		return 1;
	return memcmp(v, order, n) >= 0;
}

AGENTID_EXPORT int
agentid_sig_verify(const struct agentid_key *key, enum agentid_alg alg, const void *msg, size_t len,
    const unsigned char *sig, size_t sig_len, struct agentid_error *err)
{
	unsigned char der[ECDSA_DER_MAX];
	const unsigned char *vsig = sig;
	size_t vlen = sig_len;
	EVP_MD_CTX *ctx;
	int r, ok;

	if (key == NULL || (msg == NULL && len != 0) || (sig == NULL && sig_len != 0))
		return AGENTID_EINVAL;
	if ((unsigned)alg >= AGENTID_ALG__COUNT || alg == AGENTID_ALG_UNKNOWN)
		return agentid_error_set(err, AGENTID_R_ALG_NOT_ALLOWED, "unknown algorithm");
	if (!agentid_key_supports_alg(key, alg))
		return agentid_error_set(err, AGENTID_R_KEY_MISMATCH,
		    "key cannot verify %s signatures", agentid_alg_name(alg));
	if (sig_len != key->sig_len)
		return agentid_error_set(err, AGENTID_R_BAD_SIGNATURE,
		    "signature is %zu bytes, expected %zu", sig_len, key->sig_len);
	if (sig_algs[alg].kind == SIG_ECDSA) {
		/*
		 * Checked here, explicitly: R and S must lie in [1, n-1].  A
		 * zero pair would otherwise depend on the library to refuse it.
		 */
		if (ecdsa_scalar_out_of_range(sig, key->coord_len, key->order)
		    || ecdsa_scalar_out_of_range(sig + key->coord_len, key->coord_len, key->order))
			return agentid_error_set(
			    err, AGENTID_R_BAD_SIGNATURE, "ECDSA signature value out of range");
		vlen = ecdsa_raw_to_der(sig, key->coord_len, der);
		vsig = der;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return AGENTID_ENOMEM;
	if ((r = sig_ctx_init(ctx, key, alg, 0)) != 0) {
		EVP_MD_CTX_free(ctx);
		ERR_clear_error();
		return r;
	}
	ok = EVP_DigestVerify(ctx, vsig, vlen, msg, len);
	EVP_MD_CTX_free(ctx);
	if (ok != 1) {
		ERR_clear_error();
		return agentid_error_set(err, AGENTID_R_BAD_SIGNATURE,
		    "%s signature does not verify", agentid_alg_name(alg));
	}
	return 0;
}

/* Converts an OpenSSL DER ECDSA signature into R || S of n bytes each. */
static int
ecdsa_der_to_raw(const unsigned char *der, size_t derlen, size_t n, unsigned char *raw)
{
	const unsigned char *p = der;
	const BIGNUM *br, *bs;
	ECDSA_SIG *es;
	int ok;

	if ((es = d2i_ECDSA_SIG(NULL, &p, (long)derlen)) == NULL)
		return AGENTID_ECRYPTO;
	ECDSA_SIG_get0(es, &br, &bs);
	ok = BN_bn2binpad(br, raw, (int)n) == (int)n && BN_bn2binpad(bs, raw + n, (int)n) == (int)n;
	ECDSA_SIG_free(es);
	return ok ? 0 : AGENTID_ECRYPTO;
}

AGENTID_EXPORT int
agentid_sig_sign(const struct agentid_key *key, enum agentid_alg alg, const void *msg, size_t len,
    unsigned char **sig, size_t *sig_len)
{
	EVP_MD_CTX *ctx = NULL;
	unsigned char *buf = NULL, *raw = NULL;
	size_t blen = 0;
	int r;

	if (sig != NULL)
		*sig = NULL;
	if (sig_len != NULL)
		*sig_len = 0;
	if (key == NULL || sig == NULL || sig_len == NULL || (msg == NULL && len != 0))
		return AGENTID_EINVAL;
	if ((unsigned)alg >= AGENTID_ALG__COUNT || alg == AGENTID_ALG_UNKNOWN || !key->is_private
	    || !agentid_key_supports_alg(key, alg))
		return AGENTID_EINVAL;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return AGENTID_ENOMEM;
	if ((r = sig_ctx_init(ctx, key, alg, 1)) != 0)
		goto out;
	r = AGENTID_ECRYPTO;
	if (EVP_DigestSign(ctx, NULL, &blen, msg, len) != 1)
		goto out;
	if ((buf = agentid_malloc(blen)) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	if (EVP_DigestSign(ctx, buf, &blen, msg, len) != 1)
		goto out;
	if (sig_algs[alg].kind == SIG_ECDSA) {
		if ((raw = agentid_malloc(key->sig_len)) == NULL) {
			r = AGENTID_ENOMEM;
			goto out;
		}
		if ((r = ecdsa_der_to_raw(buf, blen, key->coord_len, raw)) != 0)
			goto out;
		*sig = raw;
		*sig_len = key->sig_len;
		raw = NULL;
	} else {
		*sig = buf;
		*sig_len = blen;
		buf = NULL;
	}
	r = 0;
out:
	if (r != 0)
		ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	agentid_free(buf);
	agentid_free(raw);
	return r;
}
