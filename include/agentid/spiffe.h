/*
 * agentid: SPIFFE primitives -- IDs and trust domains, ID patterns,
 * bundles, trust (bundles keyed by trust domain), X.509-SVID validation and
 * credentials delivered as files (spiffe-helper layout).
 */
#ifndef AGENTID_SPIFFE_H
#define AGENTID_SPIFFE_H

#include <openssl/x509.h>

#include <agentid/common.h>
#include <agentid/jose.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AGENTID_SPIFFE_ID_MAX 2048 /* bytes; SPIFFE-ID.md: must handle IDs this long */
#define AGENTID_TRUST_DOMAIN_MAX 255 /* bytes of the trust domain name */

/* ---- IDs ---- */

/* A parsed SPIFFE ID: views into the caller's string (not NUL-terminated). */
struct agentid_spiffe_id {
	const char *td; /* trust domain name */
	size_t td_len;
	const char *path; /* "" or "/seg/seg" */
	size_t path_len;
};

/*
 * Validates s exactly per SPIFFE-ID.md: scheme "spiffe" (lower case), "://",
 * trust domain of [a-z0-9._-] (non-empty), optional path of segments of
 * [A-Za-z0-9._-] that are not empty, "." or ".."; no trailing slash, no
 * userinfo, port, query, fragment or percent-encoding; at most
 * AGENTID_SPIFFE_ID_MAX bytes.  Rejection reason: BAD_SPIFFE_ID with a
 * detail saying which rule failed.  out may be NULL.
 */
int agentid_spiffe_id_parse(
    const char *s, size_t len, struct agentid_spiffe_id *out, struct agentid_error *err);
/* Validates a bare trust domain name ("example.org"). */
int agentid_trust_domain_validate(const char *td, size_t len, struct agentid_error *err);

/* ---- ID patterns (for policy) ---- */
/* (Line comments here: a slash-star inside a block comment trips -Wcomment.) */
//   "spiffe://td/a/b"    exactly that ID
//   "spiffe://td/a/*"    any ID strictly below /a (one or more further segments)
//   "spiffe://td/*"      any ID in trust domain td (including spiffe://td)
//   "*"                  any valid SPIFFE ID
struct agentid_spiffe_pattern;

int agentid_spiffe_pattern_parse(
    const char *s, size_t len, struct agentid_spiffe_pattern **out, struct agentid_error *err);
/* 1 when the (already validated) ID matches, 0 otherwise.  Byte-for-byte comparison. */
int agentid_spiffe_pattern_match(
    const struct agentid_spiffe_pattern *p, const char *id, size_t len);
void agentid_spiffe_pattern_free(struct agentid_spiffe_pattern *p);

/* A list of patterns; matches when any pattern matches. */
struct agentid_spiffe_patterns;
int agentid_spiffe_patterns_parse(const char *const *pats, size_t n,
    struct agentid_spiffe_patterns **out, struct agentid_error *err);
int agentid_spiffe_patterns_match(
    const struct agentid_spiffe_patterns *ps, const char *id, size_t len);
void agentid_spiffe_patterns_free(struct agentid_spiffe_patterns *ps);

/* ---- bundles ---- */

/*
 * A trust domain's bundle: JWT authorities (keys with use "jwt-svid",
 * which must carry a kid) and X.509 authorities (keys with use
 * "x509-svid", one certificate in x5c; per X509-SVID.md 6.2 further x5c
 * entries are ignored), spiffe_sequence and spiffe_refresh_hint.  A plain JWK Set (keys without
 * "use", or use "sig") is accepted too: its keys become JWT authorities.  Unknown kty and unknown
 * use are ignored; an empty "keys" array trusts nothing.
 *
 * The trust domain is given by the caller or, when td is NULL, taken from
 * the URI SAN "spiffe://<td>" of the X.509 authorities (as SPIRE and
 * `agentid dev ca` write them).  A bundle without a trust domain holds
 * issuer keys that are bound to no trust domain (an exchange server's JWKS).
 */
struct agentid_bundle;

int agentid_bundle_new(const char *td, struct agentid_bundle **out);
int agentid_bundle_parse(const char *td, const char *json, size_t len, struct agentid_bundle **out,
    struct agentid_error *err);
/* The same from an already parsed JSON document (root is not modified or kept). */
int agentid_bundle_parse_json(
    const char *td, const json_t *root, struct agentid_bundle **out, struct agentid_error *err);
/* Reads a JSON bundle/JWKS, or a PEM file of CA certificates (X.509 authorities only). */
int agentid_bundle_load_file(
    const char *td, const char *path, struct agentid_bundle **out, struct agentid_error *err);
const char *agentid_bundle_trust_domain(const struct agentid_bundle *b); /* NULL when unbound */
const struct agentid_keyset *agentid_bundle_jwt_keys(const struct agentid_bundle *b);
STACK_OF(X509) *agentid_bundle_x509_authorities(const struct agentid_bundle *b);
int64_t agentid_bundle_sequence(const struct agentid_bundle *b); /* -1 when absent */
int64_t agentid_bundle_refresh_hint(const struct agentid_bundle *b); /* -1 when absent */
/* Building (before sharing). */
int agentid_bundle_add_jwt_key(struct agentid_bundle *b, struct agentid_key *key);
int agentid_bundle_add_x509_authority(struct agentid_bundle *b, X509 *ca);
int agentid_bundle_set_sequence(struct agentid_bundle *b, int64_t seq);
int agentid_bundle_set_refresh_hint(struct agentid_bundle *b, int64_t secs);
/* SPIFFE bundle JSON: keys with use jwt-svid / x509-svid, spiffe_sequence, spiffe_refresh_hint. */
int agentid_bundle_to_json(const struct agentid_bundle *b, json_t **out);
struct agentid_bundle *agentid_bundle_ref(struct agentid_bundle *b);
void agentid_bundle_free(struct agentid_bundle *b);

/* ---- trust: bundles keyed by trust domain, plus unbound issuer keys ---- */

struct agentid_trust;

int agentid_trust_new(struct agentid_trust **out);
/* Adds a reference to b; replaces a bundle of the same trust domain.  Unbound bundles accumulate.
 */
int agentid_trust_add_bundle(struct agentid_trust *t, struct agentid_bundle *b);
const struct agentid_bundle *agentid_trust_find(
    const struct agentid_trust *t, const char *td, size_t td_len);
size_t agentid_trust_count(const struct agentid_trust *t);
const struct agentid_bundle *agentid_trust_get(const struct agentid_trust *t, size_t i);
/*
 * JWT key lookup.  With td != NULL, only that trust domain's bundle is
 * searched (a JWT-SVID is verified only with keys of its own trust domain).
 * With td == NULL, only unbound bundles (issuer keys, e.g. an exchange
 * server's JWKS) are searched: a trust domain's JWT-SVID authority must not
 * be able to mint access tokens.
 */
const struct agentid_key *agentid_trust_find_jwt_key(
    const struct agentid_trust *t, const char *td, size_t td_len, const char *kid, size_t kid_len);
struct agentid_trust *agentid_trust_ref(struct agentid_trust *t);
void agentid_trust_free(struct agentid_trust *t);

/* ---- X.509-SVID ---- */

/*
 * Validates an X.509-SVID per X509-SVID.md: exactly one URI SAN holding a
 * valid SPIFFE ID; leaf cA=false, keyUsage with digitalSignature and
 * without keyCertSign/cRLSign; the chain (leaf + intermediates) verifies
 * (RFC 5280) against the X.509 authorities of the ID's trust domain at
 * time now.  On success *spiffe_id is a copy (agentid_free) of the ID.
 * Reasons: CERT_INVALID, LEAF_IS_CA, BAD_KEY_USAGE, UNTRUSTED_DOMAIN,
 * CERT_EXPIRED, CERT_UNTRUSTED, BAD_SPIFFE_ID.
 */
int agentid_x509svid_verify(X509 *leaf, STACK_OF(X509) *intermediates,
    const struct agentid_trust *trust, time_t now, char **spiffe_id, struct agentid_error *err);
/* The SPIFFE ID from the single URI SAN, without any chain or key-usage check. */
int agentid_x509svid_id_unverified(X509 *cert, char **spiffe_id, struct agentid_error *err);
/* Reads a PEM file: first certificate is the leaf, the rest intermediates (*chain may be empty). */
int agentid_x509_load_pem_file(
    const char *path, X509 **leaf, STACK_OF(X509) **chain, struct agentid_error *err);
int agentid_x509_load_pem(
    const char *pem, size_t len, X509 **leaf, STACK_OF(X509) **chain, struct agentid_error *err);

/* ---- credentials from files (spiffe-helper layout) ---- */

struct agentid_svid_files {
	const char *dir; /* directory the names below are relative to (may be NULL) */
	const char *cert_file; /* X.509-SVID chain PEM, default "svid.pem" */
	const char *key_file; /* private key PEM, default "svid_key.pem" */
	const char *bundle_file; /* X.509 bundle PEM, default "svid_bundle.pem" */
	const char *jwt_svid_file; /* JWT-SVID, default "jwt_svid.token" */
	const char *jwt_bundle_file; /* JWT bundle JSON, default "jwt_bundle.json" (see below) */
	const char *trust_domain; /* NULL: taken from the SVID's ID */
};

/*
 * The JWT bundle file is either what spiffe-helper writes, a JSON object
 * mapping each trust domain name to the standard base64 of its JWK Set
 * (an object value is taken as the JWK Set itself), or a single JWK Set /
 * SPIFFE bundle, bound to trust_domain or else the SVID's trust domain
 * (unbound when neither is known).  The X.509 bundle file may hold federated
 * trust domains' authorities too; each certificate goes to the trust domain
 * of its spiffe:// URI SAN, the others to the SVID's own.
 */
struct agentid_svid_source;

/* Reads whatever of the files exists (at least one must). */
int agentid_svid_source_open(const struct agentid_svid_files *files,
    struct agentid_svid_source **out, struct agentid_error *err);
/*
 * Re-reads the files whose inode, size or mtime changed.  A file that
 * fails to parse leaves the previous good value in place (and returns the
 * error).  *changed is set to 1 when anything was replaced.
 */
int agentid_svid_source_refresh(
    struct agentid_svid_source *src, int *changed, struct agentid_error *err);
X509 *agentid_svid_source_cert(const struct agentid_svid_source *src);
STACK_OF(X509) *agentid_svid_source_chain(const struct agentid_svid_source *src);
const struct agentid_key *agentid_svid_source_key(const struct agentid_svid_source *src);
const char *agentid_svid_source_spiffe_id(const struct agentid_svid_source *src);
const char *agentid_svid_source_jwt_svid(const struct agentid_svid_source *src);
/* Trust built from the X.509 and JWT bundle files; a new reference, free with agentid_trust_free.
 */
struct agentid_trust *agentid_svid_source_trust(const struct agentid_svid_source *src);
void agentid_svid_source_free(struct agentid_svid_source *src);

#ifdef __cplusplus
}
#endif
#endif
