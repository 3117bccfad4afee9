/*
 * Raw JWS signatures (RFC 7518 section 3, RFC 8037 section 3.1).
 *
 * ECDSA signatures travel as the fixed-length concatenation R || S, never
 * as DER.  Verification checks the length and the range of R and S itself
 * (0 < R, S < n) before OpenSSL sees anything, so the "psychic signature"
 * R = S = 0 is refused by our code and not by luck, and then re-encodes
 * the pair as DER in a stack buffer, without allocating.
 *
 * EVP_DigestVerifyInit_ex and EVP_DigestSignInit_ex are expensive in
 * OpenSSL 3.0: each call fetches the digest and the signature algorithm
 * by name, walks the provider's name map and takes the method-store locks
 * that every worker thread shares.  So each key keeps one initialised
 * context per algorithm and direction, made on first use, and every
 * operation works on a duplicate of its EVP_PKEY_CTX, which copies the
 * provider's state and takes references but looks nothing up.  The
 * duplicate is finalised in place (EVP_MD_CTX_FLAG_FINALISE), which
 * spares OpenSSL a second duplicate inside the Final call.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdint.h>
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
	[AGENTID_ALG_ED25519] = { SIG_EDDSA, NULL },
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

/*
 * The prepared context of key for alg in one direction, made on first use.
 * Two threads may race to make it: one wins the compare-and-swap, the
 * other frees its copy.  key is const to callers, but the cache is not
 * part of its value (the object itself is never const: it comes from
 * agentid_calloc).
 */
static EVP_MD_CTX *
sig_template(const struct agentid_key *key, enum agentid_alg alg, int sign)
{
	_Atomic(EVP_MD_CTX *) *slot
	    = &((struct agentid_key *)(uintptr_t)key)->sig_tmpl[sign ? 1 : 0][alg];
	EVP_MD_CTX *t, *expected = NULL;

	if ((t = atomic_load_explicit(slot, memory_order_acquire)) != NULL)
		return t;
	if ((t = EVP_MD_CTX_new()) == NULL)
		return NULL;
	if (sig_ctx_init(t, key, alg, sign) != 0) {
		EVP_MD_CTX_free(t);
		return NULL;
	}
	if (!atomic_compare_exchange_strong_explicit(
	        slot, &expected, t, memory_order_acq_rel, memory_order_acquire)) {
		EVP_MD_CTX_free(t);
		t = expected;
	}
	return t;
}

void
agentid_sig_templates_free(struct agentid_key *key)
{
	size_t d, a;

	for (d = 0; d < 2; d++)
		for (a = 0; a < AGENTID_ALG__COUNT; a++) {
			EVP_MD_CTX_free(atomic_load(&key->sig_tmpl[d][a]));
			atomic_store(&key->sig_tmpl[d][a], NULL);
		}
}

/*
 * A context for one signature operation: a duplicate of the prepared
 * EVP_PKEY_CTX in a fresh EVP_MD_CTX (the provider path of EVP_DigestSign
 * and EVP_DigestVerify only uses the EVP_PKEY_CTX).  EVP_MD_CTX_set_pkey_ctx
 * leaves the EVP_PKEY_CTX to us: sig_ctx_free releases both.
 */
static int
sig_ctx_new(const struct agentid_key *key, enum agentid_alg alg, int sign, EVP_MD_CTX **out)
{
	EVP_MD_CTX *tmpl, *ctx;
	EVP_PKEY_CTX *pctx;

	*out = NULL;
	if ((tmpl = sig_template(key, alg, sign)) == NULL)
		return AGENTID_ECRYPTO;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return AGENTID_ENOMEM;
	if ((pctx = EVP_PKEY_CTX_dup(EVP_MD_CTX_get_pkey_ctx(tmpl))) == NULL) {
		EVP_MD_CTX_free(ctx);
		return AGENTID_ECRYPTO;
	}
	EVP_MD_CTX_set_pkey_ctx(ctx, pctx);
	EVP_MD_CTX_set_flags(ctx, EVP_MD_CTX_FLAG_FINALISE);
	*out = ctx;
	return 0;
}

static void
sig_ctx_free(EVP_MD_CTX *ctx)
{
	EVP_PKEY_CTX *pctx;

	if (ctx == NULL)
		return;
	pctx = EVP_MD_CTX_get_pkey_ctx(ctx);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_CTX_free(pctx);
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
	if ((r = sig_ctx_new(key, alg, 0, &ctx)) != 0) {
		ERR_clear_error();
		return r;
	}
	ok = EVP_DigestVerify(ctx, vsig, vlen, msg, len);
	sig_ctx_free(ctx);
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
	if ((r = sig_ctx_new(key, alg, 1, &ctx)) != 0)
		goto out;
	r = AGENTID_ECRYPTO;
	/* The largest signature of the key (DER for ECDSA), so one call signs. */
	if (EVP_PKEY_get_size(key->pkey) <= 0)
		goto out;
	blen = (size_t)EVP_PKEY_get_size(key->pkey);
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
	sig_ctx_free(ctx);
	agentid_free(buf);
	agentid_free(raw);
	return r;
}
