/*
 * SVID sources: credentials in the spiffe-helper file layout, picked up
 * again when they change on disk; a corrupt new file keeps the old value.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "testutil.h"

static char dir[512];
static int dir_seq;
static char *jwt_kid;

/* A fresh empty directory under the test's temporary directory. */
static const char *
new_dir(void)
{
	snprintf(dir, sizeof(dir), "%s/s%d", tu_tmpdir(), ++dir_seq);
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
	return dir;
}

/* Writes data to dir/name and sets its mtime to a distinct fixed value. */
static void
put(const char *name, const char *data, size_t len, time_t mtime)
{
	struct timespec ts[2];
	const char *p = tu_write_file(dir, name, data, len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	ts[0].tv_sec = ts[1].tv_sec = mtime;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	CU_ASSERT_EQUAL(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static void
put_str(const char *name, const char *s, time_t mtime)
{
	put(name, s, strlen(s), mtime);
}

static void
put_vector(const char *name, const char *vector, time_t mtime)
{
	size_t len;
	char *s = tu_read_vector(vector, &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	put(name, s, len, mtime);
	free(s);
}

static struct agentid_key *
jwt_key(void)
{
	struct agentid_key *k = NULL;
	struct agentid_error e = { 0 };

	CU_ASSERT_EQUAL_FATAL(agentid_key_load_file(tu_vector("x509/jwt-key.pem"), &k, &e), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_key_set_kid(k, jwt_kid), 0);
	return k;
}

/* A JWT-SVID for sub signed with the vectors' JWT key. */
static char *
jwt_svid(const char *sub)
{
	struct agentid_key *k = jwt_key();
	json_t *hdr = json_pack("{s:s}", "typ", "JWT");
	json_t *pl = json_pack("{s:s, s:s, s:I}", "sub", sub, "aud", "test", "exp",
	    (json_int_t)time(NULL) + 3600);
	char *tok = NULL;

	CU_ASSERT_EQUAL_FATAL(agentid_jws_sign(k, AGENTID_ALG_ES256, hdr, pl, &tok), 0);
	json_decref(hdr);
	json_decref(pl);
	agentid_key_free(k);
	return tok;
}

/* spiffe-helper's jwt_bundle.json: {"<td>": "<base64 of the JWK Set>"}. */
static char *
helper_jwt_bundle(const char *td, struct agentid_key *k)
{
	struct agentid_keyset *ks = NULL;
	json_t *j = NULL, *set;
	char *jwks, *b64, *out;
	int n;

	CU_ASSERT_EQUAL_FATAL(agentid_keyset_new(&ks), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_keyset_add(ks, k), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_keyset_to_json(ks, &j), 0);
	agentid_keyset_free(ks);
	jwks = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	b64 = malloc(strlen(jwks) * 2 + 4);
	n = EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)jwks, (int)strlen(jwks));
	CU_ASSERT(n > 0);
	free(jwks);
	set = json_pack("{s:s}", td, b64);
	free(b64);
	out = json_dumps(set, JSON_COMPACT);
	json_decref(set);
	return out;
}

/* Fills dir with a complete, valid spiffe-helper layout. */
static void
helper_layout(void)
{
	struct agentid_key *k = jwt_key();
	char *tok = jwt_svid("spiffe://example.org/workload");
	char *jb = helper_jwt_bundle("example.org", k);

	new_dir();
	put_vector("svid.pem", "x509/svid-valid.pem", 1000);
	put_vector("svid_key.pem", "x509/svid-valid-key.pem", 1000);
	put_vector("svid_bundle.pem", "x509/ca.pem", 1000);
	put_str("jwt_svid.token", tok, 1000);
	put_str("jwt_bundle.json", jb, 1000);
	agentid_free(tok);
	free(jb);
	agentid_key_free(k);
}

static struct agentid_svid_source *
open_dir(void)
{
	struct agentid_svid_files f = { 0 };
	struct agentid_svid_source *src = NULL;
	struct agentid_error e = { 0 };
	int r;

	f.dir = dir;
	r = agentid_svid_source_open(&f, &src, &e);
	if (r != 0)
		fprintf(stderr, "\n  open: %s: %s\n", agentid_strerror(r), e.detail);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	return src;
}

static const char *
verify_cert(const struct agentid_svid_source *src)
{
	struct agentid_trust *t = agentid_svid_source_trust(src);
	struct agentid_error e = { 0 };
	int r;

	r = agentid_x509svid_verify(agentid_svid_source_cert(src),
	    agentid_svid_source_chain(src), t, time(NULL), NULL, &e);
	agentid_trust_free(t);
	return r == 0 ? "ok" : agentid_reason_code(e.reason);
}

static void
test_open(void)
{
	struct agentid_svid_source *src;
	struct agentid_trust *t;
	const struct agentid_key *k;
	struct agentid_jws *jws = NULL;
	struct agentid_error e = { 0 };
	const char *tok;
	int changed = -1;

	helper_layout();
	src = open_dir();
	CU_ASSERT_STRING_EQUAL(agentid_svid_source_spiffe_id(src), "spiffe://example.org/workload");
	CU_ASSERT_PTR_NOT_NULL(agentid_svid_source_cert(src));
	CU_ASSERT_EQUAL(sk_X509_num(agentid_svid_source_chain(src)), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(agentid_svid_source_key(src));
	CU_ASSERT(agentid_key_is_private(agentid_svid_source_key(src)));
	CU_ASSERT_EQUAL(X509_check_private_key(agentid_svid_source_cert(src),
	    agentid_key_evp(agentid_svid_source_key(src))), 1);
	CU_ASSERT_STRING_EQUAL(verify_cert(src), "ok");

	/* The JWT-SVID verifies with the JWT key of its own trust domain from the bundle file. */
	tok = agentid_svid_source_jwt_svid(src);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
	CU_ASSERT_EQUAL_FATAL(agentid_jws_parse(tok, strlen(tok), NULL, &jws, &e), 0);
	t = agentid_svid_source_trust(src);
	CU_ASSERT_EQUAL(agentid_trust_count(t), 1);
	k = agentid_trust_find_jwt_key(t, "example.org", 11, jws->kid, strlen(jws->kid));
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	CU_ASSERT_EQUAL(agentid_jws_verify(jws, k, &e), 0);
	agentid_jws_free(jws);
	agentid_trust_free(t);

	/* Nothing changed. */
	CU_ASSERT_EQUAL(agentid_svid_source_refresh(src, &changed, &e), 0);
	CU_ASSERT_EQUAL(changed, 0);
	agentid_svid_source_free(src);
}

static void
test_change_picked_up(void)
{
	struct agentid_svid_source *src;
	struct agentid_trust *old, *t;
	struct agentid_key *k2 = NULL;
	struct agentid_error e = { 0 };
	X509 *before;
	char *jb, *tok;
	int changed = -1;

	helper_layout();
	src = open_dir();
	before = agentid_svid_source_cert(src);

	/* Renewal: a new SVID with an intermediate, and its key. */
	put_vector("svid.pem", "x509/svid-valid-chain.pem", 2000);
	put_vector("svid_key.pem", "x509/svid-valid-chain-key.pem", 2000);
	CU_ASSERT_EQUAL(agentid_svid_source_refresh(src, &changed, &e), 0);
	CU_ASSERT_EQUAL(changed, 1);
	CU_ASSERT_PTR_NOT_EQUAL(agentid_svid_source_cert(src), before);
	CU_ASSERT_STRING_EQUAL(agentid_svid_source_spiffe_id(src), "spiffe://example.org/chained");
	CU_ASSERT_EQUAL(sk_X509_num(agentid_svid_source_chain(src)), 1);
	CU_ASSERT_EQUAL(X509_check_private_key(agentid_svid_source_cert(src),
	    agentid_key_evp(agentid_svid_source_key(src))), 1);
	CU_ASSERT_STRING_EQUAL(verify_cert(src), "ok");

	/* JWT bundle rotation: the new key replaces the old one. */
	old = agentid_svid_source_trust(src);
	CU_ASSERT_EQUAL_FATAL(agentid_key_generate(AGENTID_ALG_ES256, &k2), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_key_set_kid(k2, "rotated"), 0);
	jb = helper_jwt_bundle("example.org", k2);
	put_str("jwt_bundle.json", jb, 3000);
	free(jb);
	tok = jwt_svid("spiffe://example.org/other");
	put_str("jwt_svid.token", tok, 3000);
	CU_ASSERT_EQUAL(agentid_svid_source_refresh(src, &changed, &e), 0);
	CU_ASSERT_EQUAL(changed, 1);
	CU_ASSERT_STRING_EQUAL(agentid_svid_source_jwt_svid(src), tok);
	agentid_free(tok);
	t = agentid_svid_source_trust(src);
	CU_ASSERT_PTR_NOT_EQUAL(t, old);
	CU_ASSERT_PTR_NOT_NULL(agentid_trust_find_jwt_key(t, "example.org", 11, "rotated", 7));
	CU_ASSERT_PTR_NULL(agentid_trust_find_jwt_key(t, "example.org", 11, jwt_kid,
	    strlen(jwt_kid)));
	/* The X.509 authorities survive a JWT bundle change. */
	CU_ASSERT_STRING_EQUAL(verify_cert(src), "ok");
	/* A reference taken before stays usable and unchanged. */
	CU_ASSERT_PTR_NOT_NULL(agentid_trust_find_jwt_key(old, "example.org", 11, jwt_kid,
	    strlen(jwt_kid)));
	agentid_trust_free(old);
	agentid_trust_free(t);
	agentid_key_free(k2);
	agentid_svid_source_free(src);
}

static void
test_same_size_same_mtime_new_inode(void)
{
	struct agentid_svid_source *src;
	struct agentid_error e = { 0 };
	char from[600], to[600];
	int changed = -1;
	struct stat st1, st2;

	/*
	 * The same content written next to it and renamed over it, with the
	 * same mtime: only the inode differs, and that is enough.
	 */
	helper_layout();
	src = open_dir();
	snprintf(to, sizeof(to), "%s/svid.pem", dir);
	snprintf(from, sizeof(from), "%s/svid.pem.new", dir);
	CU_ASSERT_EQUAL(stat(to, &st1), 0);
	put_vector("svid.pem.new", "x509/svid-valid.pem", 1000);
	CU_ASSERT_EQUAL(rename(from, to), 0);
	CU_ASSERT_EQUAL(stat(to, &st2), 0);
	CU_ASSERT_NOT_EQUAL(st1.st_ino, st2.st_ino);
	CU_ASSERT_EQUAL(st1.st_size, st2.st_size);
	CU_ASSERT_EQUAL(st1.st_mtim.tv_sec, st2.st_mtim.tv_sec);
	CU_ASSERT_EQUAL(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);
	CU_ASSERT_EQUAL(agentid_svid_source_refresh(src, &changed, &e), 0);
	CU_ASSERT_EQUAL(changed, 1);
	CU_ASSERT_STRING_EQUAL(agentid_svid_source_spiffe_id(src), "spiffe://example.org/workload");
	CU_ASSERT_EQUAL(agentid_svid_source_refresh(src, &changed, &e), 0);
	CU_ASSERT_EQUAL(changed, 0);
	agentid_svid_source_free(src);
}

static void
test_mtime_only(void)
{
	struct agentid_svid_source *src;
	struct agentid_error e = { 0 };
	struct timespec ts[2];
	char p[600];
	int changed = -1;

	/* Same inode and size; only the nanoseconds of the mtime differ. */
	helper_layout();
	src = open_dir();
	snprintf(p, sizeof(p), "%s/svid_bundle.pem", dir);
	ts[0].tv_sec = ts[1].tv_sec = 1000;
	ts[0].tv_nsec = ts[1].tv_nsec = 1;
	CU_ASSERT_EQUAL(utimensat(AT_FDCWD, p, ts, 0), 0);
	CU_ASSERT_EQUAL(agentid_svid_source_refresh(src, &changed, &e), 0);
	CU_ASSERT_EQUAL(changed, 1);
	CU_ASSERT_EQUAL(agentid_svid_source_refresh(src, &changed, &e), 0);
	CU_ASSERT_EQUAL(changed, 0);
	agentid_svid_source_free(src);
}

static void
test_corrupt_keeps_old(void)
{
	struct agentid_svid_source *src;
	struct agentid_trust *t;
	struct agentid_error e = { 0 };
	X509 *cert;
	const struct agentid_key *key;
	char *tok;
	int changed = -1;

	helper_layout();
	src = open_dir();
	cert = agentid_svid_source_cert(src);
	key = agentid_svid_source_key(src);
	tok = strdup(agentid_svid_source_jwt_svid(src));

	/* Half-written certificate: rejected, the old one stays. */
	put_str("svid.pem", "-----BEGIN CERTIFICATE-----\nMIIB1TCCAXug", 2000);
	CU_ASSERT_EQUAL(agentid_svid_source_refresh(src, &changed, &e), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "cert_invalid");
	CU_ASSERT_EQUAL(changed, 0);
	CU_ASSERT_PTR_EQUAL(agentid_svid_source_cert(src), cert);
	CU_ASSERT_STRING_EQUAL(agentid_svid_source_spiffe_id(src), "spiffe://example.org/workload");
	/* It is retried (and still fails) on the next refresh. */
	CU_ASSERT_EQUAL(agentid_svid_source_refresh(src, &changed, &e), AGENTID_EREJECTED);

	/* Corrupt key, bundle, JWT-SVID and JWT bundle: all keep their values. */
	put_str("svid_key.pem", "garbage", 2000);
	put_str("svid_bundle.pem", "garbage", 2000);
	put_str("jwt_svid.token", "not.a.jwt", 2000);
	put_str("jwt_bundle.json", "{\"example.org\": \"@@@\"}", 2000);
	CU_ASSERT_NOT_EQUAL(agentid_svid_source_refresh(src, &changed, &e), 0);
	CU_ASSERT_EQUAL(changed, 0);
	CU_ASSERT_PTR_EQUAL(agentid_svid_source_key(src), key);
	CU_ASSERT_STRING_EQUAL(agentid_svid_source_jwt_svid(src), tok);
	CU_ASSERT_STRING_EQUAL(verify_cert(src), "ok");
	t = agentid_svid_source_trust(src);
	CU_ASSERT_PTR_NOT_NULL(agentid_trust_find_jwt_key(t, "example.org", 11, jwt_kid,
	    strlen(jwt_kid)));
	agentid_trust_free(t);

	/* A JWT bundle naming a bad trust domain is refused as a whole. */
	put_str("jwt_bundle.json", "{\"Example.org\": \"e30=\"}", 2500);
	CU_ASSERT_NOT_EQUAL(agentid_svid_source_refresh(src, &changed, &e), 0);
	t = agentid_svid_source_trust(src);
	CU_ASSERT_PTR_NOT_NULL(agentid_trust_find_jwt_key(t, "example.org", 11, jwt_kid,
	    strlen(jwt_kid)));
	agentid_trust_free(t);

	/* Good files again: picked up. */
	put_vector("svid.pem", "x509/svid-valid-chain.pem", 3000);
	put_vector("svid_key.pem", "x509/svid-valid-chain-key.pem", 3000);
	put_vector("svid_bundle.pem", "x509/ca.pem", 3000);
	CU_ASSERT_NOT_EQUAL(agentid_svid_source_refresh(src, &changed, &e), 0); /* JWT files */
	CU_ASSERT_EQUAL(changed, 1);
	CU_ASSERT_STRING_EQUAL(agentid_svid_source_spiffe_id(src), "spiffe://example.org/chained");
	CU_ASSERT_STRING_EQUAL(verify_cert(src), "ok");
	free(tok);
	agentid_svid_source_free(src);
}

static void
test_removed_file_keeps_value(void)
{
	struct agentid_svid_source *src;
	struct agentid_error e = { 0 };
	char p[600];
	int changed = -1;

	helper_layout();
	src = open_dir();
	snprintf(p, sizeof(p), "%s/svid.pem", dir);
	CU_ASSERT_EQUAL(unlink(p), 0);
	CU_ASSERT_EQUAL(agentid_svid_source_refresh(src, &changed, &e), 0);
	CU_ASSERT_EQUAL(changed, 0);
	CU_ASSERT_STRING_EQUAL(agentid_svid_source_spiffe_id(src), "spiffe://example.org/workload");
	agentid_svid_source_free(src);
}

static void
test_federated(void)
{
	struct agentid_svid_source *src;
	struct agentid_trust *t;
	struct agentid_key *k2 = NULL;
	struct agentid_error e = { 0 };
	X509 *leaf = NULL;
	json_t *set, *more;
	char *a, *b, *both, *jb, *jb2;
	size_t n;

	/*
	 * include_federated_domains: other.org's CA shares svid_bundle.pem and
	 * jwt_bundle.json holds one entry per trust domain.
	 */
	helper_layout();
	a = tu_read_vector("x509/ca.pem", NULL);
	b = tu_read_vector("x509/other.org-ca.pem", NULL);
	n = strlen(a) + strlen(b) + 3;
	both = malloc(n);
	snprintf(both, n, "%s\n%s\n", a, b);
	put_str("svid_bundle.pem", both, 1000);
	free(a);
	free(b);
	free(both);
	CU_ASSERT_EQUAL_FATAL(agentid_key_generate(AGENTID_ALG_ES256, &k2), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_key_set_kid(k2, "other-kid"), 0);
	{
		struct agentid_key *k = jwt_key();

		jb = helper_jwt_bundle("example.org", k);
		agentid_key_free(k);
	}
	jb2 = helper_jwt_bundle("other.org", k2);
	set = json_loads(jb, 0, NULL);
	more = json_loads(jb2, 0, NULL);
	json_object_update(set, more);
	free(jb);
	free(jb2);
	jb = json_dumps(set, JSON_COMPACT);
	json_decref(set);
	json_decref(more);
	put_str("jwt_bundle.json", jb, 1000);
	free(jb);

	src = open_dir();
	t = agentid_svid_source_trust(src);
	CU_ASSERT_EQUAL(agentid_trust_count(t), 2);
	CU_ASSERT_STRING_EQUAL(verify_cert(src), "ok");
	CU_ASSERT_EQUAL_FATAL(agentid_x509_load_pem_file(tu_vector("x509/svid-other-org.pem"),
	    &leaf, NULL, &e), 0);
	CU_ASSERT_EQUAL(agentid_x509svid_verify(leaf, NULL, t, time(NULL), NULL, &e), 0);
	X509_free(leaf);
	CU_ASSERT_EQUAL_FATAL(agentid_x509_load_pem_file(
	    tu_vector("x509/svid-wrong-trust-domain.pem"), &leaf, NULL, &e), 0);
	CU_ASSERT_EQUAL(agentid_x509svid_verify(leaf, NULL, t, time(NULL), NULL, &e),
	    AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "cert_untrusted");
	X509_free(leaf);
	/* Each trust domain's JWT keys stay in their own bundle. */
	CU_ASSERT_PTR_NOT_NULL(agentid_trust_find_jwt_key(t, "other.org", 9, "other-kid", 9));
	CU_ASSERT_PTR_NULL(agentid_trust_find_jwt_key(t, "example.org", 11, "other-kid", 9));
	CU_ASSERT_PTR_NOT_NULL(agentid_trust_find_jwt_key(t, "example.org", 11, jwt_kid,
	    strlen(jwt_kid)));
	CU_ASSERT_PTR_NULL(agentid_trust_find_jwt_key(t, "other.org", 9, jwt_kid,
	    strlen(jwt_kid)));
	agentid_trust_free(t);
	agentid_key_free(k2);
	agentid_svid_source_free(src);
}

static void
test_open_partial_and_errors(void)
{
	struct agentid_svid_files f = { 0 };
	struct agentid_svid_source *src = (void *)1;
	struct agentid_trust *t;
	struct agentid_key *k;
	struct agentid_keyset *ks = NULL;
	struct agentid_error e = { 0 };
	json_t *j = NULL;
	char *s;

	/* Nothing there. */
	f.dir = new_dir();
	CU_ASSERT_EQUAL(agentid_svid_source_open(&f, &src, &e), AGENTID_ENOTFOUND);
	CU_ASSERT_PTR_NULL(src);

	/* Only a plain JWKS under a custom name, bound to the configured trust domain. */
	k = jwt_key();
	CU_ASSERT_EQUAL_FATAL(agentid_keyset_new(&ks), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_keyset_add(ks, k), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_keyset_to_json(ks, &j), 0);
	s = json_dumps(j, JSON_COMPACT);
	put_str("keys.json", s, 1000);
	free(s);
	json_decref(j);
	agentid_keyset_free(ks);
	agentid_key_free(k);
	f.jwt_bundle_file = "keys.json";
	f.trust_domain = "example.org";
	CU_ASSERT_EQUAL_FATAL(agentid_svid_source_open(&f, &src, &e), 0);
	CU_ASSERT_PTR_NULL(agentid_svid_source_cert(src));
	CU_ASSERT_PTR_NULL(agentid_svid_source_spiffe_id(src));
	CU_ASSERT_PTR_NULL(agentid_svid_source_jwt_svid(src));
	t = agentid_svid_source_trust(src);
	CU_ASSERT_PTR_NOT_NULL(agentid_trust_find_jwt_key(t, "example.org", 11, jwt_kid,
	    strlen(jwt_kid)));
	agentid_trust_free(t);
	agentid_svid_source_free(src);

	/* Without a configured trust domain a plain JWKS is unbound. */
	f.trust_domain = NULL;
	CU_ASSERT_EQUAL_FATAL(agentid_svid_source_open(&f, &src, &e), 0);
	t = agentid_svid_source_trust(src);
	CU_ASSERT_PTR_NULL(agentid_trust_find_jwt_key(t, "example.org", 11, jwt_kid,
	    strlen(jwt_kid)));
	CU_ASSERT_PTR_NOT_NULL(agentid_trust_find_jwt_key(t, NULL, 0, jwt_kid, strlen(jwt_kid)));
	agentid_trust_free(t);
	agentid_svid_source_free(src);

	/* A corrupt file at open time is an error, not a silent gap. */
	put_str("svid.pem", "garbage", 1000);
	f.jwt_bundle_file = NULL;
	CU_ASSERT_EQUAL(agentid_svid_source_open(&f, &src, &e), AGENTID_EREJECTED);
	CU_ASSERT_PTR_NULL(src);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "cert_invalid");

	/* A key file without a private key. */
	new_dir();
	f.dir = dir;
	put_vector("svid_key.pem", "x509/svid-valid.pem", 1000);
	CU_ASSERT_EQUAL(agentid_svid_source_open(&f, &src, &e), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "bad_key");

	f.trust_domain = "Bad";
	CU_ASSERT_EQUAL(agentid_svid_source_open(&f, &src, &e), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "bad_spiffe_id");
	CU_ASSERT_EQUAL(agentid_svid_source_open(NULL, &src, &e), AGENTID_EINVAL);
	agentid_svid_source_free(NULL);
	CU_ASSERT_EQUAL(agentid_svid_source_refresh(NULL, NULL, &e), AGENTID_EINVAL);
}

static void
test_absolute_names(void)
{
	struct agentid_svid_files f = { 0 };
	struct agentid_svid_source *src = NULL;
	struct agentid_error e = { 0 };

	/* Absolute file names ignore dir; the bundle is a PEM of CA certificates. */
	f.dir = "/nonexistent";
	f.cert_file = tu_vector("x509/svid-valid-chain.pem");
	CU_ASSERT_EQUAL_FATAL(agentid_svid_source_open(&f, &src, &e), 0);
	CU_ASSERT_STRING_EQUAL(agentid_svid_source_spiffe_id(src), "spiffe://example.org/chained");
	CU_ASSERT_PTR_NULL(agentid_svid_source_key(src));
	CU_ASSERT_PTR_NULL(agentid_svid_source_trust(src));
	agentid_svid_source_free(src);
}

int
main(void)
{
	static const struct tu_test tests[] = {
		{ "open a spiffe-helper directory", test_open },
		{ "changed files are picked up", test_change_picked_up },
		{ "new inode, same size and mtime", test_same_size_same_mtime_new_inode },
		{ "mtime nanoseconds", test_mtime_only },
		{ "corrupt new file keeps the old value", test_corrupt_keeps_old },
		{ "removed file keeps the old value", test_removed_file_keeps_value },
		{ "federated trust domains", test_federated },
		{ "partial layouts and errors", test_open_partial_and_errors },
		{ "absolute file names", test_absolute_names },
		TU_END
	};
	int r;

	if ((jwt_kid = tu_read_vector("x509/jwt-key.kid", NULL)) == NULL)
		return 1;
	r = tu_run("source", tests);
	free(jwt_kid);
	return r;
}
