/*
 * SPIFFE bundles (SPIFFE_Trust_Domain_and_Bundle.md, X509-SVID.md and
 * JWT-SVID.md section 6): a JWK Set whose keys are JWT authorities
 * (use "jwt-svid") or X.509 authorities (use "x509-svid"), plus
 * spiffe_sequence and spiffe_refresh_hint.  A plain JWK Set (no "use", or
 * use "sig") is accepted as well so that an issuer's JWKS can be loaded
 * the same way; its keys become JWT authorities.
 *
 * JWKs are parsed by the JOSE layer (agentid_key_from_jwk); this file only
 * decides which keys a bundle keeps.  A bundle is immutable once shared and
 * reference counted.
 */
#include "config.h"

#include <limits.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <agentid/spiffe.h>

#include "internal.h"
#include "spiffe_int.h"

#define BUNDLE_FILE_MAX (4 * 1024 * 1024)

struct agentid_bundle {
	agentid_refcnt ref;
	char *td; /* NULL: unbound */
	struct agentid_keyset *jwt;
	STACK_OF(X509) *x509;
	int64_t seq;
	int64_t hint;
};

/* ---- standard base64 (x5c, spiffe-helper's JWT bundle file) ---- */

int
agentid_b64std_encode(const unsigned char *in, size_t n, char **out)
{
	char *s;
	size_t cap;

	*out = NULL;
	if (n > (size_t)INT_MAX / 4 * 3 - 3)
		return AGENTID_ERANGE;
	cap = (n + 2) / 3 * 4 + 1;
	if ((s = agentid_malloc(cap)) == NULL)
		return AGENTID_ENOMEM;
	EVP_EncodeBlock((unsigned char *)s, in, (int)n);
	*out = s;
	return 0;
}

int
agentid_b64std_decode(const char *in, size_t n, unsigned char **out, size_t *outlen)
{
	EVP_ENCODE_CTX *ctx = NULL;
	unsigned char *buf = NULL;
	int l1 = 0, l2 = 0, r;

	*out = NULL;
	*outlen = 0;
	if (n > INT_MAX / 2)
		return AGENTID_ERANGE;
	if ((buf = agentid_malloc(n / 4 * 3 + 4)) == NULL || (ctx = EVP_ENCODE_CTX_new()) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	/* EVP_Decode* handles padding and rejects foreign characters. */
	EVP_DecodeInit(ctx);
	if (EVP_DecodeUpdate(ctx, buf, &l1, (const unsigned char *)in, (int)n) < 0
	    || EVP_DecodeFinal(ctx, buf + l1, &l2) < 0) {
		r = AGENTID_EINVAL;
		goto out;
	}
	*out = buf;
	*outlen = (size_t)l1 + (size_t)l2;
	buf = NULL;
	r = 0;
out:
	EVP_ENCODE_CTX_free(ctx);
	agentid_free(buf);
	return r;
}

/* ---- building ---- */

AGENTID_EXPORT int
agentid_bundle_new(const char *td, struct agentid_bundle **out)
{
	struct agentid_bundle *b = NULL;
	int r;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	if (td != NULL && agentid_trust_domain_validate(td, strlen(td), NULL) != 0)
		return AGENTID_EINVAL;
	if ((b = agentid_calloc(1, sizeof(*b))) == NULL)
		return AGENTID_ENOMEM;
	agentid_ref_init(&b->ref);
	b->seq = -1;
	b->hint = -1;
	if (td != NULL && (b->td = agentid_strdup(td)) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	if ((b->x509 = sk_X509_new_null()) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	if ((r = agentid_keyset_new(&b->jwt)) != 0)
		goto out;
	*out = b;
	b = NULL;
	r = 0;
out:
	agentid_bundle_free(b);
	return r;
}

AGENTID_EXPORT int
agentid_bundle_add_jwt_key(struct agentid_bundle *b, struct agentid_key *key)
{
	if (b == NULL || key == NULL)
		return AGENTID_EINVAL;
	return agentid_keyset_add(b->jwt, key);
}

AGENTID_EXPORT int
agentid_bundle_add_x509_authority(struct agentid_bundle *b, X509 *ca)
{
	if (b == NULL || ca == NULL)
		return AGENTID_EINVAL;
	if (!X509_up_ref(ca))
		return AGENTID_ECRYPTO;
	if (!sk_X509_push(b->x509, ca)) {
		X509_free(ca);
		return AGENTID_ENOMEM;
	}
	return 0;
}

AGENTID_EXPORT int
agentid_bundle_set_sequence(struct agentid_bundle *b, int64_t seq)
{
	if (b == NULL || seq < -1)
		return AGENTID_EINVAL;
	b->seq = seq;
	return 0;
}

AGENTID_EXPORT int
agentid_bundle_set_refresh_hint(struct agentid_bundle *b, int64_t secs)
{
	if (b == NULL || secs < -1)
		return AGENTID_EINVAL;
	b->hint = secs;
	return 0;
}

/* ---- accessors ---- */

AGENTID_EXPORT const char *
agentid_bundle_trust_domain(const struct agentid_bundle *b)
{
	return b != NULL ? b->td : NULL;
}

AGENTID_EXPORT const struct agentid_keyset *
agentid_bundle_jwt_keys(const struct agentid_bundle *b)
{
	return b != NULL ? b->jwt : NULL;
}

AGENTID_EXPORT STACK_OF(X509) *
agentid_bundle_x509_authorities(const struct agentid_bundle *b)
{
	return b != NULL ? b->x509 : NULL;
}

AGENTID_EXPORT int64_t
agentid_bundle_sequence(const struct agentid_bundle *b)
{
	return b != NULL ? b->seq : -1;
}

AGENTID_EXPORT int64_t
agentid_bundle_refresh_hint(const struct agentid_bundle *b)
{
	return b != NULL ? b->hint : -1;
}

AGENTID_EXPORT struct agentid_bundle *
agentid_bundle_ref(struct agentid_bundle *b)
{
	if (b != NULL)
		agentid_ref_get(&b->ref);
	return b;
}

AGENTID_EXPORT void
agentid_bundle_free(struct agentid_bundle *b)
{
	if (b == NULL || !agentid_ref_put(&b->ref))
		return;
	agentid_free(b->td);
	agentid_keyset_free(b->jwt);
	sk_X509_pop_free(b->x509, X509_free);
	agentid_free(b);
}

/* ---- parsing ---- */

/*
 * The trust domain named by the X.509 authorities: 1 and td filled when
 * they agree, 0 when none names one, a rejection when they disagree.
 */
static int
infer_td(STACK_OF(X509) *certs, char *td, size_t tdsz, struct agentid_error *err)
{
	char one[AGENTID_TRUST_DOMAIN_MAX + 1];
	int i, r, found = 0;

	td[0] = '\0';
	for (i = 0; i < sk_X509_num(certs); i++) {
		r = agentid_x509_spiffe_td(sk_X509_value(certs, i), one, sizeof(one), err);
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		if (found && strcmp(one, td) != 0)
			return agentid_error_set(err, AGENTID_R_UNTRUSTED_DOMAIN,
			    "X.509 authorities name different trust domains (%s, %s)", td, one);
		if (!found)
			memcpy(td, one, strlen(one) + 1);
		found = 1;
	}
	return found;
}

/* Binds an unbound bundle to the trust domain of its X.509 authorities, if they name one. */
static int
bind_inferred_td(struct agentid_bundle *b, struct agentid_error *err)
{
	char td[AGENTID_TRUST_DOMAIN_MAX + 1];
	int r;

	if (b->td != NULL)
		return 0;
	if ((r = infer_td(b->x509, td, sizeof(td), err)) <= 0)
		return r;
	if ((b->td = agentid_strdup(td)) == NULL)
		return AGENTID_ENOMEM;
	return 0;
}

static int
get_counter(const json_t *root, const char *name, int64_t *out, struct agentid_error *err)
{
	const json_t *v = json_object_get(root, name);

	*out = -1;
	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return agentid_error_set(err, AGENTID_R_BAD_JSON,
		    "bundle member %s is not a non-negative integer", name);
	*out = (int64_t)json_integer_value(v);
	return 0;
}

enum key_role { ROLE_IGNORE, ROLE_JWT, ROLE_JWT_SVID, ROLE_X509 };

/* Decides from "use" (and "kid"/"x5c") what a bundle entry is for. */
static enum key_role
key_role(const json_t *jwk, size_t i)
{
	const json_t *use, *kid, *x5c;
	const char *u;

	use = json_object_get(jwk, "use");
	if (use == NULL)
		return ROLE_JWT;
	if (!json_is_string(use)) {
		agentid_log(
		    AGENTID_LOG_DEBUG, "bundle key %zu: \"use\" is not a string; ignored", i);
		return ROLE_IGNORE;
	}
	u = json_string_value(use);
	if (strcmp(u, "sig") == 0)
		return ROLE_JWT;
	if (strcmp(u, "jwt-svid") == 0) {
		kid = json_object_get(jwk, "kid");
		if (!json_is_string(kid) || json_string_length(kid) == 0) {
			agentid_log(AGENTID_LOG_WARN,
			    "bundle key %zu: jwt-svid key without a kid ignored (JWT-SVID.md 6.1)",
			    i);
			return ROLE_IGNORE;
		}
		return ROLE_JWT_SVID;
	}
	if (strcmp(u, "x509-svid") == 0) {
		/* X509-SVID.md 6.2: without a certificate in x5c the entry is ignored. */
		x5c = json_object_get(jwk, "x5c");
		if (!json_is_array(x5c) || json_array_size(x5c) == 0) {
			agentid_log(AGENTID_LOG_WARN,
			    "bundle key %zu: x509-svid key without x5c ignored", i);
			return ROLE_IGNORE;
		}
		if (json_array_size(x5c) > 1)
			agentid_log(AGENTID_LOG_DEBUG,
			    "bundle key %zu: x5c holds %zu certificates; only the first is used", i,
			    json_array_size(x5c));
		return ROLE_X509;
	}
	agentid_log(AGENTID_LOG_DEBUG, "bundle key %zu: unknown use \"%.32s\" ignored", i, u);
	return ROLE_IGNORE;
}

/* Adds entry i of "keys" to b, or skips it; only fatal errors are returned. */
static int
add_entry(struct agentid_bundle *b, const json_t *jwk, size_t i)
{
	struct agentid_key *key = NULL;
	struct agentid_error kerr;
	enum key_role role;
	X509 *cert;
	int r;

	if (!json_is_object(jwk)) {
		agentid_log(AGENTID_LOG_DEBUG, "bundle key %zu: not a JSON object; ignored", i);
		return 0;
	}
	if ((role = key_role(jwk, i)) == ROLE_IGNORE)
		return 0;
	agentid_error_clear(&kerr);
	r = agentid_key_from_jwk(jwk, &key, &kerr);
	if (r == AGENTID_ENOMEM)
		return r;
	if (r == AGENTID_EUNSUPPORTED) {
		agentid_log(AGENTID_LOG_DEBUG, "bundle key %zu: unknown key type ignored", i);
		return 0;
	}
	if (r != 0) {
		agentid_log(AGENTID_LOG_WARN, "bundle key %zu: unusable key ignored: %s", i,
		    kerr.detail[0] != '\0' ? kerr.detail : agentid_strerror(r));
		return 0;
	}
	if (agentid_key_is_private(key)) {
		/* A bundle publishes public keys; do not keep secrets that arrive by mistake. */
		agentid_log(AGENTID_LOG_WARN, "bundle key %zu: private key in a bundle ignored", i);
		r = 0;
		goto out;
	}
	if (role == ROLE_X509) {
		if ((cert = agentid_key_cert(key)) == NULL) {
			agentid_log(
			    AGENTID_LOG_WARN, "bundle key %zu: x5c certificate unusable", i);
			r = 0;
			goto out;
		}
		r = agentid_bundle_add_x509_authority(b, cert);
		goto out;
	}
	r = agentid_keyset_add(b->jwt, key);
out:
	agentid_key_free(key);
	return r;
}

/*
 * Builds a bundle from a parsed JSON document.  Declared in spiffe.h next
 * to agentid_bundle_parse.
 */
AGENTID_EXPORT int
agentid_bundle_parse_json(
    const char *td, const json_t *root, struct agentid_bundle **out, struct agentid_error *err)
{
	struct agentid_bundle *b = NULL;
	const json_t *keys;
	int64_t seq, hint;
	size_t i;
	int r;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	if (root == NULL)
		return AGENTID_EINVAL;
	if (td != NULL && (r = agentid_trust_domain_validate(td, strlen(td), err)) != 0)
		return r;
	if (!json_is_object(root))
		return agentid_error_set(err, AGENTID_R_BAD_JSON, "bundle is not a JSON object");
	keys = json_object_get(root, "keys");
	if (!json_is_array(keys))
		return agentid_error_set(err, AGENTID_R_BAD_JSON, "bundle has no \"keys\" array");
	if ((r = get_counter(root, "spiffe_sequence", &seq, err)) != 0
	    || (r = get_counter(root, "spiffe_refresh_hint", &hint, err)) != 0)
		return r;
	if ((r = agentid_bundle_new(td, &b)) != 0)
		goto out;
	b->seq = seq;
	b->hint = hint;
	for (i = 0; i < json_array_size(keys); i++)
		if ((r = add_entry(b, json_array_get(keys, i), i)) != 0)
			goto out;
	if ((r = bind_inferred_td(b, err)) != 0)
		goto out;
	*out = b;
	b = NULL;
	r = 0;
out:
	agentid_bundle_free(b);
	return r;
}

AGENTID_EXPORT int
agentid_bundle_parse(const char *td, const char *json, size_t len, struct agentid_bundle **out,
    struct agentid_error *err)
{
	json_t *root = NULL;
	int r;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	if (json == NULL)
		return AGENTID_EINVAL;
	if ((r = agentid_json_parse(json, len, AGENTID_DEFAULT_MAX_JSON_DEPTH, &root, err)) != 0)
		return r;
	r = agentid_bundle_parse_json(td, root, out, err);
	json_decref(root);
	return r;
}

/* A PEM file of CA certificates: every certificate is an X.509 authority. */
static int
bundle_from_pem(const char *td, const char *pem, size_t len, struct agentid_bundle **out,
    struct agentid_error *err)
{
	struct agentid_bundle *b = NULL;
	STACK_OF(X509) *rest = NULL;
	X509 *first = NULL;
	int i, r;

	if ((r = agentid_x509_load_pem(pem, len, &first, &rest, err)) != 0)
		return r;
	if ((r = agentid_bundle_new(td, &b)) != 0)
		goto out;
	if ((r = agentid_bundle_add_x509_authority(b, first)) != 0)
		goto out;
	for (i = 0; i < sk_X509_num(rest); i++)
		if ((r = agentid_bundle_add_x509_authority(b, sk_X509_value(rest, i))) != 0)
			goto out;
	if ((r = bind_inferred_td(b, err)) != 0)
		goto out;
	*out = b;
	b = NULL;
out:
	X509_free(first);
	sk_X509_pop_free(rest, X509_free);
	agentid_bundle_free(b);
	return r;
}

AGENTID_EXPORT int
agentid_bundle_load_file(
    const char *td, const char *path, struct agentid_bundle **out, struct agentid_error *err)
{
	char *buf = NULL;
	size_t len = 0, i;
	int r;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	if (path == NULL)
		return AGENTID_EINVAL;
	if (td != NULL && (r = agentid_trust_domain_validate(td, strlen(td), err)) != 0)
		return r;
	if ((r = agentid_read_file(path, BUNDLE_FILE_MAX, &buf, &len)) != 0)
		return r;
	for (i = 0; i < len && strchr(" \t\r\n", buf[i]) != NULL && buf[i] != '\0'; i++)
		;
	if (i < len && buf[i] == '{')
		r = agentid_bundle_parse(td, buf, len, out, err);
	else if (strstr(buf, "-----BEGIN") != NULL)
		r = bundle_from_pem(td, buf, len, out, err);
	else
		r = agentid_error_set(
		    err, AGENTID_R_BAD_JSON, "bundle file is neither JSON nor PEM certificates");
	agentid_free(buf);
	return r;
}

/* ---- serialising ---- */

static int
x509_authority_jwk(X509 *cert, json_t **out)
{
	struct agentid_key *key = NULL;
	unsigned char *der = NULL;
	char *b64 = NULL;
	json_t *jwk = NULL, *x5c = NULL;
	int len, r;

	*out = NULL;
	if ((r = agentid_key_from_evp(X509_get0_pubkey(cert), &key)) != 0)
		goto out;
	if ((r = agentid_key_to_jwk(key, &jwk)) != 0)
		goto out;
	if ((len = i2d_X509(cert, &der)) <= 0) {
		r = AGENTID_ECRYPTO;
		goto out;
	}
	if ((r = agentid_b64std_encode(der, (size_t)len, &b64)) != 0)
		goto out;
	/* X509-SVID.md 6.1: use x509-svid, no kid, exactly one certificate. */
	json_object_del(jwk, "kid");
	json_object_del(jwk, "alg");
	if ((x5c = json_array()) == NULL || json_array_append_new(x5c, json_string(b64)) != 0
	    || json_object_set_new(jwk, "use", json_string("x509-svid")) != 0
	    || json_object_set(jwk, "x5c", x5c) != 0) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	*out = jwk;
	jwk = NULL;
	r = 0;
out:
	json_decref(x5c);
	json_decref(jwk);
	agentid_free(b64);
	OPENSSL_free(der);
	agentid_key_free(key);
	return r;
}

static int
jwt_authority_jwk(const struct agentid_key *key, json_t **out)
{
	char tp[AGENTID_THUMBPRINT_LEN + 1];
	json_t *jwk = NULL;
	int r;

	*out = NULL;
	if ((r = agentid_key_to_jwk(key, &jwk)) != 0)
		return r;
	/* JWT-SVID.md 6.1: a kid is required; the project's default kid is the thumbprint. */
	if (agentid_key_kid(key) == NULL) {
		if ((r = agentid_key_thumbprint(key, tp, sizeof(tp))) != 0)
			goto out;
		if (json_object_set_new(jwk, "kid", json_string(tp)) != 0) {
			r = AGENTID_ENOMEM;
			goto out;
		}
	}
	if (json_object_set_new(jwk, "use", json_string("jwt-svid")) != 0) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	*out = jwk;
	jwk = NULL;
out:
	json_decref(jwk);
	return r;
}

AGENTID_EXPORT int
agentid_bundle_to_json(const struct agentid_bundle *b, json_t **out)
{
	json_t *root = NULL, *keys = NULL, *jwk = NULL;
	size_t i;
	int n, r;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	if (b == NULL)
		return AGENTID_EINVAL;
	if ((root = json_object()) == NULL || (keys = json_array()) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	if ((b->seq >= 0
	        && json_object_set_new(root, "spiffe_sequence", json_integer((json_int_t)b->seq))
	            != 0)
	    || (b->hint >= 0
	        && json_object_set_new(
	               root, "spiffe_refresh_hint", json_integer((json_int_t)b->hint))
	            != 0)) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	n = sk_X509_num(b->x509);
	for (i = 0; i < (size_t)(n > 0 ? n : 0); i++) {
		if ((r = x509_authority_jwk(sk_X509_value(b->x509, (int)i), &jwk)) != 0)
			goto out;
		if (json_array_append_new(keys, jwk) != 0) {
			jwk = NULL;
			r = AGENTID_ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < agentid_keyset_count(b->jwt); i++) {
		if ((r = jwt_authority_jwk(agentid_keyset_get(b->jwt, i), &jwk)) != 0)
			goto out;
		if (json_array_append_new(keys, jwk) != 0) {
			jwk = NULL;
			r = AGENTID_ENOMEM;
			goto out;
		}
	}
	if (json_object_set(root, "keys", keys) != 0) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	*out = root;
	root = NULL;
	r = 0;
out:
	json_decref(keys);
	json_decref(root);
	return r;
}
