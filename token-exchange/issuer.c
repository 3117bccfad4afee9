/*
 * Issuer signing keys.  Three roles: the current key signs; the next key is
 * published in /jwks before it signs, so verifiers have it cached when an
 * operator promotes it (rename next -> current, SIGHUP); retired keys stay
 * published, and keep verifying our own tokens at the token endpoint, until
 * the last token they signed has expired.  kid = RFC 7638 thumbprint.
 *
 * A key file that does not exist yet is generated on first start (mode
 * 0600), so a fresh install needs no key ceremony; operators who manage
 * keys elsewhere simply provide the files.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exchange.h"

static int
load_or_create(const char *path, enum agentid_alg alg, int may_create, struct agentid_key **out,
    char *errbuf, size_t errlen)
{
	struct agentid_error err;
	struct agentid_key *key = NULL;
	char kid[AGENTID_THUMBPRINT_LEN + 1];
	struct stat st;
	int r;

	*out = NULL;
	agentid_error_clear(&err);
	if (stat(path, &st) != 0 && errno == ENOENT && may_create) {
		if ((r = agentid_key_generate(alg, &key)) != 0
		    || (r = agentid_key_write_private_file(key, path)) != 0) {
			snprintf(errbuf, errlen, "%s: cannot create signing key: %s", path,
			    agentid_strerror(r));
			agentid_key_free(key);
			return -1;
		}
		xc_log(AGENTID_LOG_INFO, "created signing key %s", path);
	} else if ((r = agentid_key_load_file(path, &key, &err)) != 0) {
		snprintf(errbuf, errlen, "%s: cannot load signing key: %s%s%s", path,
		    r == AGENTID_EREJECTED ? agentid_reason_text(err.reason) : agentid_strerror(r),
		    err.detail[0] ? ": " : "", err.detail);
		return -1;
	}
	if (!agentid_key_is_private(key)) {
		snprintf(errbuf, errlen, "%s: not a private key", path);
		agentid_key_free(key);
		return -1;
	}
	if (!agentid_key_supports_alg(key, alg)) {
		snprintf(errbuf, errlen, "%s: key cannot sign %s", path, agentid_alg_name(alg));
		agentid_key_free(key);
		return -1;
	}
	if (agentid_key_thumbprint(key, kid, sizeof(kid)) != 0 || agentid_key_set_kid(key, kid) != 0
	    || agentid_key_set_alg(key, alg) != 0 || agentid_key_set_use(key, "sig") != 0) {
		snprintf(errbuf, errlen, "%s: cannot prepare key", path);
		agentid_key_free(key);
		return -1;
	}
	*out = key;
	return 0;
}

int
xc_issuer_load(const struct xc_config *c, struct xc_issuer **out, char *errbuf, size_t errlen)
{
	struct xc_issuer *is;
	struct agentid_key *k = NULL;
	json_t *jwks = NULL;
	size_t i;
	int r = -1;

	*out = NULL;
	if ((is = calloc(1, sizeof(*is))) == NULL)
		return -1;
	is->alg = agentid_alg_from_name(c->alg, strlen(c->alg));
	if (agentid_keyset_new(&is->verify) != 0)
		goto out;
	if (load_or_create(c->key_current, is->alg, 1, &is->current, errbuf, errlen) != 0)
		goto out;
	if (agentid_keyset_add(is->verify, is->current) != 0)
		goto out;
	if (c->key_next != NULL) {
		if (load_or_create(c->key_next, is->alg, 1, &k, errbuf, errlen) != 0)
			goto out;
		if (agentid_keyset_add(is->verify, k) != 0)
			goto out;
		agentid_key_free(k);
		k = NULL;
	}
	for (i = 0; i < c->n_keys_retired; i++) {
		if (load_or_create(c->keys_retired[i], is->alg, 0, &k, errbuf, errlen) != 0)
			goto out;
		if (agentid_keyset_add(is->verify, k) != 0)
			goto out;
		agentid_key_free(k);
		k = NULL;
	}
	if (agentid_keyset_to_json(is->verify, &jwks) != 0
	    || (is->jwks_json = json_dumps(jwks, JSON_COMPACT)) == NULL) {
		snprintf(errbuf, errlen, "cannot build the JWK Set");
		goto out;
	}
	*out = is;
	is = NULL;
	r = 0;
out:
	agentid_key_free(k);
	json_decref(jwks);
	xc_issuer_free(is);
	return r;
}

void
xc_issuer_free(struct xc_issuer *is)
{
	if (is == NULL)
		return;
	agentid_key_free(is->current);
	agentid_keyset_free(is->verify);
	free(is->jwks_json);
	free(is);
}

int
xc_issuer_sign(const struct xc_issuer *is, const char *typ, const json_t *claims, char **out)
{
	json_t *hdr;
	char *jws = NULL;
	int r;

	*out = NULL;
	if ((hdr = json_pack("{s:s}", "typ", typ)) == NULL)
		return AGENTID_ENOMEM;
	r = agentid_jws_sign(is->current, is->alg, hdr, claims, &jws);
	json_decref(hdr);
	if (r != 0)
		return r;
	/* Hand out a libc string so callers need not know which allocator made it. */
	*out = strdup(jws);
	agentid_free(jws);
	return *out == NULL ? AGENTID_ENOMEM : 0;
}

/* Appends the base64url of in[0..n) at *p and advances it. */
static int
put_b64(char **p, const char *end, const void *in, size_t n)
{
	size_t w;
	int r;

	if ((r = agentid_b64url_encode(in, n, *p, (size_t)(end - *p), &w)) != 0)
		return r;
	*p += w;
	return 0;
}

/*
 * Signs payload, which is JSON text, with the current key: the same compact
 * JWS agentid_jws_sign makes from the parsed claims (header {"alg", "kid",
 * "typ"} in that order), without building the claims as JSON values first
 * and serialising them again.  typ and the kid must need no JSON escaping
 * (media types; RFC 7638 thumbprints are base64url).  *out to free().
 */
int
xc_issuer_sign_text(
    const struct xc_issuer *is, const char *typ, const char *payload, size_t len, char **out)
{
	const char *alg = agentid_alg_name(is->alg), *kid = agentid_key_kid(is->current);
	unsigned char *sig = NULL;
	size_t hlen, sig_len = 0, n;
	char hdr[256], *b = NULL, *p, *end;
	int r, w;

	*out = NULL;
	if (alg == NULL)
		return AGENTID_EINVAL;
	w = kid != NULL ? snprintf(
	        hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"%s\"}", alg, kid, typ)
	                : snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"%s\"}", alg, typ);
	if (w < 0 || (size_t)w >= sizeof(hdr))
		return AGENTID_EINVAL;
	hlen = (size_t)w;
	/* header.payload.signature; a signature is at most 1024 bytes (RSA-8192). */
	n = agentid_b64url_encoded_len(hlen) + agentid_b64url_encoded_len(len)
	    + agentid_b64url_encoded_len(1024) + 3;
	if ((b = malloc(n)) == NULL)
		return AGENTID_ENOMEM;
	p = b;
	end = b + n;
	if ((r = put_b64(&p, end, hdr, hlen)) != 0)
		goto out;
	*p++ = '.';
	if ((r = put_b64(&p, end, payload, len)) != 0)
		goto out;
	if ((r = agentid_sig_sign(is->current, is->alg, b, (size_t)(p - b), &sig, &sig_len)) != 0)
		goto out;
	*p++ = '.';
	if ((r = put_b64(&p, end, sig, sig_len)) != 0)
		goto out;
	*p = '\0';
	*out = b;
	b = NULL;
out:
	agentid_free(sig);
	free(b);
	return r;
}
