/*
 * X.509-SVID validation (X509-SVID.md): the SPIFFE ID in the single URI
 * SAN, the leaf rules of sections 4.1, 4.3 and 5.2, and RFC 5280 path
 * validation against the X.509 authorities of the ID's own trust domain.
 */
#include "config.h"

#include <limits.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <agentid/spiffe.h>

#include "internal.h"
#include "spiffe_int.h"

#define PEM_FILE_MAX (1024 * 1024)

/*
 * Copies the only URI SAN of cert (NUL-terminated, agentid_free) without
 * judging its content.  Rejects (CERT_INVALID) a certificate with no URI SAN
 * or more than one, as X509-SVID.md section 2 requires.
 */
static int
uri_san_copy(X509 *cert, char **uri, size_t *uri_len, struct agentid_error *err)
{
	GENERAL_NAMES *names;
	const GENERAL_NAME *gn;
	const ASN1_IA5STRING *found = NULL;
	int crit = -1, i, n, count = 0, r;

	*uri = NULL;
	*uri_len = 0;
	/* X509_get_ext_d2i decodes a fresh copy that must be freed here. */
	names = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	if (names == NULL) {
		ERR_clear_error();
		if (crit == -2)
			return agentid_error_set(err, AGENTID_R_CERT_INVALID,
			    "certificate has more than one subjectAltName extension");
		if (crit >= 0)
			return agentid_error_set(err, AGENTID_R_CERT_INVALID,
			    "certificate has a malformed subjectAltName extension");
		return agentid_error_set(err, AGENTID_R_CERT_INVALID, "certificate has no URI SAN");
	}
	n = sk_GENERAL_NAME_num(names);
	for (i = 0; i < n; i++) {
		gn = sk_GENERAL_NAME_value(names, i);
		if (gn->type == GEN_URI) {
			found = gn->d.uniformResourceIdentifier;
			count++;
		}
	}
	if (count == 0) {
		r = agentid_error_set(err, AGENTID_R_CERT_INVALID, "certificate has no URI SAN");
		goto out;
	}
	if (count > 1) {
		r = agentid_error_set(
		    err, AGENTID_R_CERT_INVALID, "certificate has more than one URI SAN");
		goto out;
	}
	if (ASN1_STRING_length(found) < 0) {
		r = agentid_error_set(err, AGENTID_R_CERT_INVALID, "malformed URI SAN");
		goto out;
	}
	*uri_len = (size_t)ASN1_STRING_length(found);
	if ((*uri = agentid_strndup((const char *)ASN1_STRING_get0_data(found), *uri_len))
	    == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	r = 0;
out:
	GENERAL_NAMES_free(names);
	return r;
}

AGENTID_EXPORT int
agentid_x509svid_id_unverified(X509 *cert, char **spiffe_id, struct agentid_error *err)
{
	char *uri = NULL;
	size_t len;
	int r;

	if (spiffe_id != NULL)
		*spiffe_id = NULL;
	if (cert == NULL || spiffe_id == NULL)
		return AGENTID_EINVAL;
	if ((r = uri_san_copy(cert, &uri, &len, err)) != 0)
		return r;
	/* A NUL inside the URI makes len differ from strlen and fails the parse. */
	if ((r = agentid_spiffe_id_parse(uri, len, NULL, err)) != 0) {
		agentid_free(uri);
		return r;
	}
	*spiffe_id = uri;
	return 0;
}

int
agentid_x509_spiffe_td(X509 *cert, char *td, size_t tdsz, struct agentid_error *err)
{
	struct agentid_error local;
	const char *p, *end;
	char *uri = NULL;
	size_t uri_len, n;
	int r;

	if (tdsz > 0)
		td[0] = '\0';
	agentid_error_clear(&local);
	if ((r = uri_san_copy(cert, &uri, &uri_len, &local)) != 0) {
		/* Two URI SANs make the certificate ambiguous; none means "no trust domain". */
		if (r == AGENTID_EREJECTED && strstr(local.detail, "more than one") != NULL)
			return agentid_error_set(err, AGENTID_R_CERT_INVALID, "%s", local.detail);
		return r == AGENTID_EREJECTED ? 0 : r;
	}
	if (uri_len < 9 || memcmp(uri, "spiffe://", 9) != 0) {
		r = 0;
		goto out;
	}
	p = uri + 9;
	end = memchr(p, '/', uri_len - 9);
	n = end != NULL ? (size_t)(end - p) : uri_len - 9;
	if ((r = agentid_trust_domain_validate(p, n, err)) != 0)
		goto out;
	if (n + 1 > tdsz) {
		r = AGENTID_ERANGE;
		goto out;
	}
	memcpy(td, p, n);
	td[n] = '\0';
	r = 1;
out:
	agentid_free(uri);
	return r;
}

/* Leaf rules of X509-SVID.md sections 4.1 and 4.3 / 5.2. */
static int
check_leaf(X509 *leaf, struct agentid_error *err)
{
	uint32_t flags, ku;

	flags = X509_get_extension_flags(leaf);
	if (flags & EXFLAG_INVALID)
		return agentid_error_set(err, AGENTID_R_CERT_INVALID,
		    "certificate has malformed or duplicate extensions");
	if (flags & EXFLAG_CA)
		return agentid_error_set(
		    err, AGENTID_R_LEAF_IS_CA, "leaf certificate has basicConstraints cA=true");
	if (!(flags & EXFLAG_KUSAGE))
		return agentid_error_set(
		    err, AGENTID_R_BAD_KEY_USAGE, "leaf certificate has no keyUsage extension");
	ku = X509_get_key_usage(leaf);
	if (ku & (KU_KEY_CERT_SIGN | KU_CRL_SIGN))
		return agentid_error_set(err, AGENTID_R_BAD_KEY_USAGE,
		    "leaf certificate keyUsage has keyCertSign or cRLSign");
	if (!(ku & KU_DIGITAL_SIGNATURE))
		return agentid_error_set(err, AGENTID_R_BAD_KEY_USAGE,
		    "leaf certificate keyUsage lacks digitalSignature");
	return 0;
}

static int
verify_chain(X509 *leaf, STACK_OF(X509) *intermediates, STACK_OF(X509) *authorities, time_t now,
    struct agentid_error *err)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509_VERIFY_PARAM *param;
	int i, ok, verr, depth, r = AGENTID_ECRYPTO;

	if ((store = X509_STORE_new()) == NULL || (ctx = X509_STORE_CTX_new()) == NULL)
		goto out;
	for (i = 0; i < sk_X509_num(authorities); i++)
		if (!X509_STORE_add_cert(store, sk_X509_value(authorities, i)))
			goto out;
	if (!X509_STORE_CTX_init(ctx, store, leaf, intermediates))
		goto out;
	/*
	 * Default purpose (none): SPIFFE does not constrain the extended key
	 * usage.  No X509_V_FLAG_PARTIAL_CHAIN: an intermediate that happens to
	 * be in the bundle is not a trust anchor on its own.
	 */
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_time(param, now);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_USE_CHECK_TIME);
	X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
	ok = X509_verify_cert(ctx);
	if (ok == 1) {
		r = 0;
		goto out;
	}
	verr = X509_STORE_CTX_get_error(ctx);
	depth = X509_STORE_CTX_get_error_depth(ctx);
	ERR_clear_error();
	if (verr == X509_V_ERR_CERT_HAS_EXPIRED || verr == X509_V_ERR_CERT_NOT_YET_VALID) {
		r = agentid_error_set(err, AGENTID_R_CERT_EXPIRED, "%s (depth %d)",
		    X509_verify_cert_error_string(verr), depth);
		goto out;
	}
	if (verr == X509_V_OK) {
		/* Internal failure (for example allocation) without a verify error. */
		r = AGENTID_ECRYPTO;
		goto out;
	}
	r = agentid_error_set(err, AGENTID_R_CERT_UNTRUSTED, "%s (depth %d)",
	    X509_verify_cert_error_string(verr), depth);
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return r;
}

AGENTID_EXPORT int
agentid_x509svid_verify(X509 *leaf, STACK_OF(X509) *intermediates,
    const struct agentid_trust *trust, time_t now, char **spiffe_id, struct agentid_error *err)
{
	const struct agentid_bundle *b;
	struct agentid_spiffe_id id;
	STACK_OF(X509) *auth;
	char *s = NULL;
	int r;

	if (spiffe_id != NULL)
		*spiffe_id = NULL;
	if (leaf == NULL || trust == NULL)
		return AGENTID_EINVAL;
	if ((r = agentid_x509svid_id_unverified(leaf, &s, err)) != 0)
		goto out;
	if ((r = agentid_spiffe_id_parse(s, strlen(s), &id, err)) != 0)
		goto out;
	/* X509-SVID.md 3.1: leaf IDs have a non-root path. */
	if (id.path_len == 0) {
		r = agentid_error_set(err, AGENTID_R_BAD_SPIFFE_ID,
		    "leaf SPIFFE ID has no path (it names a trust domain, not a workload)");
		goto out;
	}
	if ((r = check_leaf(leaf, err)) != 0)
		goto out;
	if ((b = agentid_trust_find(trust, id.td, id.td_len)) == NULL) {
		r = agentid_error_set(err, AGENTID_R_UNTRUSTED_DOMAIN,
		    "no bundle for trust domain %.*s", (int)id.td_len, id.td);
		goto out;
	}
	auth = agentid_bundle_x509_authorities(b);
	if (auth == NULL || sk_X509_num(auth) == 0) {
		/* An empty bundle revokes everything (SPIFFE_Trust_Domain_and_Bundle.md 4.1.3). */
		r = agentid_error_set(err, AGENTID_R_UNTRUSTED_DOMAIN,
		    "trust domain %.*s has no X.509 authorities", (int)id.td_len, id.td);
		goto out;
	}
	if ((r = verify_chain(leaf, intermediates, auth, now, err)) != 0)
		goto out;
	if (spiffe_id != NULL) {
		*spiffe_id = s;
		s = NULL;
	}
	r = 0;
out:
	agentid_free(s);
	return r;
}

AGENTID_EXPORT int
agentid_x509_load_pem(
    const char *pem, size_t len, X509 **leaf, STACK_OF(X509) **chain, struct agentid_error *err)
{
	BIO *bio = NULL;
	X509 *first = NULL, *x = NULL;
	STACK_OF(X509) *rest = NULL;
	unsigned long e;
	int r;

	if (leaf != NULL)
		*leaf = NULL;
	if (chain != NULL)
		*chain = NULL;
	if (pem == NULL || leaf == NULL)
		return AGENTID_EINVAL;
	if (len > INT_MAX)
		return AGENTID_ERANGE;
	ERR_clear_error();
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL || (rest = sk_X509_new_null()) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	for (;;) {
		if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
			e = ERR_peek_last_error();
			/* "no start line" is how the PEM reader reports a clean end of input. */
			if (ERR_GET_LIB(e) == ERR_LIB_PEM
			    && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
				break;
			r = agentid_error_set(
			    err, AGENTID_R_CERT_INVALID, "malformed certificate in PEM input");
			goto out;
		}
		if (first == NULL) {
			first = x;
		} else if (!sk_X509_push(rest, x)) {
			X509_free(x);
			r = AGENTID_ENOMEM;
			goto out;
		}
		x = NULL;
	}
	if (first == NULL) {
		r = agentid_error_set(err, AGENTID_R_CERT_INVALID, "no certificate in PEM input");
		goto out;
	}
	*leaf = first;
	first = NULL;
	if (chain != NULL) {
		*chain = rest;
		rest = NULL;
	}
	r = 0;
out:
	ERR_clear_error();
	X509_free(first);
	sk_X509_pop_free(rest, X509_free);
	BIO_free(bio);
	return r;
}

AGENTID_EXPORT int
agentid_x509_load_pem_file(
    const char *path, X509 **leaf, STACK_OF(X509) **chain, struct agentid_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (leaf != NULL)
		*leaf = NULL;
	if (chain != NULL)
		*chain = NULL;
	if (path == NULL)
		return AGENTID_EINVAL;
	if ((r = agentid_read_file(path, PEM_FILE_MAX, &buf, &len)) != 0)
		return r;
	r = agentid_x509_load_pem(buf, len, leaf, chain, err);
	agentid_free(buf);
	return r;
}
