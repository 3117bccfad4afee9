/*
 * Token Status Lists: the draft's encoding examples byte for byte, the
 * draft's signed example, signing and verification of list tokens, and the
 * checker (refresh, flipped bits, stale and refused lists).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "testutil.h"

#define URI "https://issuer.example/statuslists/1"

static json_t *
load_json_vector(const char *name)
{
	json_error_t jerr;
	char *s = tu_read_vector(name, NULL);
	json_t *j;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	j = json_loads(s, 0, &jerr);
	free(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	return j;
}

/* Decodes the vector, checks the given entries, and re-encodes to the same lst. */
static void
check_draft_vector(const char *name, unsigned bits, size_t size, const size_t *idx,
    const unsigned *val, size_t n)
{
	struct agentid_status_list *l = NULL, *built = NULL;
	struct agentid_error err;
	json_t *vec = load_json_vector(name), *enc = NULL, *enc2 = NULL;
	unsigned v;
	size_t i, k;

	CU_ASSERT_EQUAL_FATAL(agentid_status_list_decode(vec, 0, &l, &err), 0);
	CU_ASSERT_EQUAL(agentid_status_list_bits(l), bits);
	CU_ASSERT_EQUAL(agentid_status_list_size(l), size);
	for (i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(agentid_status_list_get(l, idx[i], &v), 0);
		CU_ASSERT_EQUAL(v, val[i]);
	}
	/* Every entry not listed is VALID: count the non-zero ones. */
	for (i = 0, k = 0; i < size; i++) {
		agentid_status_list_get(l, i, &v);
		if (v != 0)
			k++;
	}
	for (i = 0; i < n; i++)
		if (val[i] == 0)
			k++;
	CU_ASSERT_EQUAL(k, n);
	CU_ASSERT_EQUAL_FATAL(agentid_status_list_encode(l, &enc), 0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(enc, "lst")),
	    json_string_value(json_object_get(vec, "lst")));
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(enc, "bits")), bits);
	/* The same list built entry by entry encodes identically. */
	CU_ASSERT_EQUAL_FATAL(agentid_status_list_new(size, bits, &built), 0);
	for (i = 0; i < n; i++)
		CU_ASSERT_EQUAL(agentid_status_list_set(built, idx[i], val[i]), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_status_list_encode(built, &enc2), 0);
	CU_ASSERT_TRUE(json_equal(enc, enc2));
	json_decref(vec);
	json_decref(enc);
	json_decref(enc2);
	agentid_status_list_free(l);
	agentid_status_list_free(built);
}

static void
test_draft_1bit(void)
{
	static const size_t idx[] = { 0, 3, 4, 5, 7, 8, 9, 13, 15 };
	static const unsigned val[] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	struct agentid_status_list *l = NULL;
	struct agentid_error err;
	json_t *vec = load_json_vector("statuslist-draft-1bit.json");
	const unsigned char *b;
	size_t len;

	check_draft_vector("statuslist-draft-1bit.json", 1, 16, idx, val, 9);
	/* The draft states the byte array: [0xb9, 0xa3]. */
	CU_ASSERT_EQUAL_FATAL(agentid_status_list_decode(vec, 0, &l, &err), 0);
	b = agentid_status_list_bytes(l, &len);
	CU_ASSERT_EQUAL(len, 2);
	CU_ASSERT_EQUAL(b[0], 0xb9);
	CU_ASSERT_EQUAL(b[1], 0xa3);
	agentid_status_list_free(l);
	json_decref(vec);
}

static void
test_draft_2bit(void)
{
	static const size_t idx[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
	static const unsigned val[] = { 1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3 };
	struct agentid_status_list *l = NULL;
	struct agentid_error err;
	json_t *vec = load_json_vector("statuslist-draft-2bit.json");
	const unsigned char *b;
	size_t len;

	check_draft_vector("statuslist-draft-2bit.json", 2, 12, idx, val, 12);
	CU_ASSERT_EQUAL_FATAL(agentid_status_list_decode(vec, 0, &l, &err), 0);
	b = agentid_status_list_bytes(l, &len);
	CU_ASSERT_EQUAL(len, 3);
	CU_ASSERT_EQUAL(b[0], 0xc9);
	CU_ASSERT_EQUAL(b[1], 0x44);
	CU_ASSERT_EQUAL(b[2], 0xf9);
	agentid_status_list_free(l);
	json_decref(vec);
}

static void
test_draft_long(void)
{
	static const size_t idx12[] = { 0, 1993, 25460, 159495, 495669, 554353, 645645, 723232,
		854545, 934534, 1000345 };
	static const unsigned val1[] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	static const unsigned val2[] = { 1, 2, 1, 3, 1, 1, 2, 1, 1, 2, 3 };
	static const size_t idx4[] = { 0, 1993, 35460, 459495, 595669, 754353, 845645, 923232,
		924445, 934534, 1004534, 1000345, 1030203, 1030204, 1030205 };
	static const unsigned val4[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

	check_draft_vector("statuslist-draft-1bit-long.json", 1, 1u << 20, idx12, val1, 11);
	check_draft_vector("statuslist-draft-2bit-long.json", 2, 1u << 20, idx12, val2, 11);
	check_draft_vector("statuslist-draft-4bit-long.json", 4, 1u << 20, idx4, val4, 15);
}

static void
test_draft_8bit(void)
{
	/* The draft's 8-bit list sets 256 random indices; these are its first ones. */
	static const size_t idx[] = { 233478, 52451, 576778, 513575, 468106, 292632, 214947,
		182323, 884834, 66653, 62489, 196493 };
	struct agentid_status_list *l = NULL;
	struct agentid_error err;
	json_t *vec = load_json_vector("statuslist-draft-8bit-long.json"), *enc = NULL;
	unsigned v;
	size_t i;

	CU_ASSERT_EQUAL_FATAL(agentid_status_list_decode(vec, 0, &l, &err), 0);
	CU_ASSERT_EQUAL(agentid_status_list_size(l), 1u << 20);
	for (i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
		CU_ASSERT_EQUAL(agentid_status_list_get(l, idx[i], &v), 0);
		CU_ASSERT_EQUAL(v, i);
	}
	CU_ASSERT_EQUAL_FATAL(agentid_status_list_encode(l, &enc), 0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(enc, "lst")),
	    json_string_value(json_object_get(vec, "lst")));
	json_decref(enc);
	json_decref(vec);
	agentid_status_list_free(l);
}

static void
test_draft_jwt(void)
{
	struct agentid_status_list_token *t = NULL;
	struct agentid_keyset *ks = NULL;
	struct agentid_error err;
	size_t jlen, klen;
	char *jwt = tu_read_vector("statuslist-draft-es256.jwt", &jlen);
	char *jwks = tu_read_vector("statuslist-draft-es256.jwks", &klen);
	unsigned v;

	CU_ASSERT_PTR_NOT_NULL_FATAL(jwt);
	CU_ASSERT_PTR_NOT_NULL_FATAL(jwks);
	CU_ASSERT_EQUAL_FATAL(agentid_keyset_parse(jwks, klen, &ks, &err), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_status_list_verify_jwt(jwt, jlen, ks, 0,
	    "https://example.com/statuslists/1", "https://example.com", 1686920170 + 60, 0, 0, &t,
	    &err), 0);
	CU_ASSERT_EQUAL(t->iat, 1686920170);
	CU_ASSERT_EQUAL(t->exp, 2291720170LL);
	CU_ASSERT_EQUAL(t->ttl, 43200);
	CU_ASSERT_STRING_EQUAL(t->iss, "https://example.com");
	agentid_status_list_get(t->list, 0, &v);
	CU_ASSERT_EQUAL(v, 1);
	agentid_status_list_get(t->list, 1, &v);
	CU_ASSERT_EQUAL(v, 0);
	agentid_status_list_token_free(t);
	t = NULL;

	/* Fetched as another URI: sub does not match. */
	CU_ASSERT_EQUAL(agentid_status_list_verify_jwt(jwt, jlen, ks, 0,
	    "https://example.com/statuslists/2", NULL, 1686920170 + 60, 0, 0, &t, &err),
	    AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "claim_mismatch");
	/* Past exp. */
	CU_ASSERT_EQUAL(agentid_status_list_verify_jwt(jwt, jlen, ks, 0, NULL, NULL,
	    (time_t)2291720170LL + 3600, 0, 0, &t, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "expired");
	/* Another issuer expected. */
	CU_ASSERT_EQUAL(agentid_status_list_verify_jwt(jwt, jlen, ks, 0, NULL,
	    "https://other.example", 1686920170 + 60, 0, 0, &t, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "iss_mismatch");
	/* EdDSA only allowed. */
	CU_ASSERT_EQUAL(agentid_status_list_verify_jwt(jwt, jlen, ks,
	    AGENTID_ALG_BIT(AGENTID_ALG_EDDSA), NULL, NULL, 1686920170 + 60, 0, 0, &t, &err),
	    AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "alg_not_allowed");
	CU_ASSERT_PTR_NULL(t);
	agentid_keyset_free(ks);
	free(jwt);
	free(jwks);
}

static struct agentid_key *
make_key(enum agentid_alg alg, const char *kid)
{
	struct agentid_key *k = NULL;

	CU_ASSERT_EQUAL_FATAL(agentid_key_generate(alg, &k), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_key_set_kid(k, kid), 0);
	return k;
}

static struct agentid_keyset *
keyset_of(struct agentid_key *k)
{
	struct agentid_keyset *ks = NULL;

	CU_ASSERT_EQUAL_FATAL(agentid_keyset_new(&ks), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_keyset_add(ks, k), 0);
	return ks;
}

static char *
sign_list(const struct agentid_status_list *l, const struct agentid_key *k, const char *uri,
    int64_t iat, int64_t exp, int64_t ttl)
{
	struct agentid_status_list_claims c = { uri, "https://issuer.example", iat, exp, ttl };
	char *jwt = NULL;

	CU_ASSERT_EQUAL_FATAL(agentid_status_list_sign(l, k, agentid_key_default_alg(k), &c, &jwt),
	    0);
	return jwt;
}

static void
test_sign_verify(void)
{
	struct agentid_key *k = make_key(AGENTID_ALG_EDDSA, "list-1");
	struct agentid_key *other = make_key(AGENTID_ALG_EDDSA, "list-1");
	struct agentid_key *k2 = make_key(AGENTID_ALG_ES256, "list-2");
	struct agentid_keyset *ks = keyset_of(k), *ks_other = keyset_of(other),
			      *ks2 = keyset_of(k2);
	struct agentid_status_list *l = NULL;
	struct agentid_status_list_token *t = NULL;
	struct agentid_error err;
	time_t now = time(NULL);
	json_t *hdr, *payload, *sl = NULL;
	char *jwt, *bad = NULL;
	unsigned v;

	CU_ASSERT_EQUAL_FATAL(agentid_status_list_new(1000, 2, &l), 0);
	CU_ASSERT_EQUAL(agentid_status_list_set(l, 7, AGENTID_STATUS_INVALID), 0);
	CU_ASSERT_EQUAL(agentid_status_list_set(l, 999, AGENTID_STATUS_SUSPENDED), 0);
	CU_ASSERT_EQUAL(agentid_status_list_set(l, 1000, 1), AGENTID_ERANGE);
	CU_ASSERT_EQUAL(agentid_status_list_set(l, 3, 4), AGENTID_ERANGE);
	jwt = sign_list(l, k, URI, now, now + 600, 60);

	CU_ASSERT_EQUAL_FATAL(agentid_status_list_verify_jwt(jwt, strlen(jwt), ks, 0, URI,
	    "https://issuer.example", now, 0, 0, &t, &err), 0);
	CU_ASSERT_EQUAL(t->ttl, 60);
	agentid_status_list_get(t->list, 7, &v);
	CU_ASSERT_EQUAL(v, AGENTID_STATUS_INVALID);
	agentid_status_list_get(t->list, 999, &v);
	CU_ASSERT_EQUAL(v, AGENTID_STATUS_SUSPENDED);
	agentid_status_list_token_free(t);
	t = NULL;

	/* Same kid, another key: the signature does not verify. */
	CU_ASSERT_EQUAL(agentid_status_list_verify_jwt(jwt, strlen(jwt), ks_other, 0, URI, NULL,
	    now, 0, 0, &t, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_signature");
	/* A key set without that kid. */
	CU_ASSERT_EQUAL(agentid_status_list_verify_jwt(jwt, strlen(jwt), ks2, 0, URI, NULL, now,
	    0, 0, &t, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "unknown_kid");

	/* A properly signed JWT that is not a status list token. */
	CU_ASSERT_EQUAL_FATAL(agentid_status_list_encode(l, &sl), 0);
	hdr = json_pack("{s:s}", "typ", "JWT");
	payload = json_pack("{s:s, s:I, s:O}", "sub", URI, "iat", (json_int_t)now, "status_list",
	    sl);
	CU_ASSERT_EQUAL_FATAL(agentid_jws_sign(k, AGENTID_ALG_EDDSA, hdr, payload, &bad), 0);
	CU_ASSERT_EQUAL(agentid_status_list_verify_jwt(bad, strlen(bad), ks, 0, URI, NULL, now, 0,
	    0, &t, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "typ_mismatch");
	agentid_free(bad);
	bad = NULL;
	/* No iat. */
	json_object_set_new(hdr, "typ", json_string("statuslist+jwt"));
	json_object_del(payload, "iat");
	CU_ASSERT_EQUAL_FATAL(agentid_jws_sign(k, AGENTID_ALG_EDDSA, hdr, payload, &bad), 0);
	CU_ASSERT_EQUAL(agentid_status_list_verify_jwt(bad, strlen(bad), ks, 0, URI, NULL, now, 0,
	    0, &t, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "missing_claim");
	agentid_free(bad);

	json_decref(hdr);
	json_decref(payload);
	json_decref(sl);
	agentid_free(jwt);
	agentid_status_list_free(l);
	agentid_keyset_free(ks);
	agentid_keyset_free(ks_other);
	agentid_keyset_free(ks2);
	agentid_key_free(k);
	agentid_key_free(other);
	agentid_key_free(k2);
}

/* {"bits": bits, "lst": base64url(data)} */
static json_t *
raw_list_json(unsigned bits, const unsigned char *data, size_t len)
{
	char *lst = NULL;
	json_t *j;

	CU_ASSERT_EQUAL_FATAL(agentid_b64url_encode_alloc(data, len, &lst), 0);
	j = json_pack("{s:i, s:s}", "bits", (int)bits, "lst", lst);
	agentid_free(lst);
	return j;
}

static void
expect_decode_reject(json_t *j, size_t max, const char *reason)
{
	struct agentid_status_list *l = NULL;
	struct agentid_error err;

	CU_ASSERT_EQUAL(agentid_status_list_decode(j, max, &l, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), reason);
	CU_ASSERT_PTR_NULL(l);
	json_decref(j);
}

static void
test_decode_rejects(void)
{
	unsigned char raw[4096], z[8192], big[65536];
	uLongf zlen = sizeof(z);
	z_stream zs;

	memset(raw, 0, sizeof(raw));
	CU_ASSERT_EQUAL_FATAL(compress2(z, &zlen, raw, sizeof(raw), 9), Z_OK);
	/* bits must be 1, 2, 4 or 8. */
	expect_decode_reject(raw_list_json(3, z, zlen), 0, "malformed");
	expect_decode_reject(json_pack("{s:i}", "bits", 1), 0, "malformed");
	/* Padding is not base64url as the draft uses it. */
	expect_decode_reject(json_pack("{s:i, s:s}", "bits", 1, "lst", "eNrbuRgAAhcBXQ=="), 0,
	    "bad_encoding");
	/* Raw DEFLATE without the zlib (RFC 1950) wrapper. */
	memset(&zs, 0, sizeof(zs));
	CU_ASSERT_EQUAL_FATAL(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = raw;
	zs.avail_in = sizeof(raw);
	zs.next_out = big;
	zs.avail_out = sizeof(big);
	CU_ASSERT_EQUAL(deflate(&zs, Z_FINISH), Z_STREAM_END);
	expect_decode_reject(raw_list_json(1, big, zs.total_out), 0, "bad_encoding");
	deflateEnd(&zs);
	/* Truncated zlib stream, and trailing bytes after a complete one. */
	expect_decode_reject(raw_list_json(1, z, zlen - 3), 0, "bad_encoding");
	memcpy(big, z, zlen);
	big[zlen] = 0;
	expect_decode_reject(raw_list_json(1, big, zlen + 1), 0, "bad_encoding");
	/* A small stream that inflates past the limit (4096 bytes > 1000). */
	expect_decode_reject(raw_list_json(1, z, zlen), 1000, "too_large");
}

/* ---- checker ---- */

static const char *
write_list_file(const char *dir, const char *name, const char *jwt)
{
	char tmp[64];
	static char path[512];

	/* Replace atomically (new inode), as a publisher would. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tu_write_file(dir, tmp, jwt, strlen(jwt)));
	snprintf(path, sizeof(path), "%s/%s", dir, tmp);
	{
		char dst[512];
		snprintf(dst, sizeof(dst), "%s/%s", dir, name);
		CU_ASSERT_EQUAL_FATAL(rename(path, dst), 0);
		snprintf(path, sizeof(path), "%s", dst);
	}
	return path;
}

static struct agentid_status_checker *
make_checker(struct agentid_keyset *ks, long max_age, int fail_closed, const char *file)
{
	struct agentid_status_checker_config cfg;
	struct agentid_status_checker *chk = NULL;
	struct agentid_error err;

	agentid_status_checker_config_init(&cfg);
	cfg.keys = ks;
	cfg.issuer = "https://issuer.example";
	cfg.max_age = max_age;
	cfg.fail_closed = fail_closed;
	CU_ASSERT_EQUAL_FATAL(agentid_status_checker_new(&cfg, &chk, &err), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_status_checker_add_source(chk, URI, file), 0);
	return chk;
}

static void
expect_check(struct agentid_status_checker *chk, const char *uri, uint64_t idx, time_t now,
    const char *reason)
{
	struct agentid_error err;
	int r;

	agentid_error_clear(&err);
	r = agentid_status_check(chk, uri, strlen(uri), idx, now, &err);
	if (reason == NULL) {
		CU_ASSERT_EQUAL(r, 0);
	} else {
		CU_ASSERT_EQUAL(r, AGENTID_EREJECTED);
		CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), reason);
	}
}

static void
test_checker_flip(void)
{
	struct agentid_key *k = make_key(AGENTID_ALG_ES256, "sl");
	struct agentid_keyset *ks = keyset_of(k);
	struct agentid_status_list *l = NULL;
	struct agentid_status_checker *chk;
	struct agentid_error err;
	const char *dir = tu_tmpdir(), *path;
	time_t now = time(NULL);
	json_t *claims;
	char *jwt;

	CU_ASSERT_EQUAL_FATAL(agentid_status_list_new(128, 2, &l), 0);
	agentid_status_list_set(l, 5, AGENTID_STATUS_SUSPENDED);
	jwt = sign_list(l, k, URI, now, now + 3600, 60);
	path = write_list_file(dir, "flip.jwt", jwt);
	agentid_free(jwt);
	chk = make_checker(ks, 3600, 1, path);

	/* Before the first refresh nothing is known: fail closed. */
	expect_check(chk, URI, 1, now, "status_unavailable");
	CU_ASSERT_EQUAL(agentid_status_checker_refresh(chk, now, 0, &err), 0);
	CU_ASSERT(agentid_status_checker_next_refresh(chk) >= now + 10);
	expect_check(chk, URI, 1, now, NULL);
	expect_check(chk, URI, 5, now, "suspended");
	expect_check(chk, URI, 128, now, "bad_claim");
	expect_check(chk, "https://issuer.example/statuslists/9", 1, now, "status_unavailable");

	/* Revoke entry 1; the checker sees it after its refresh, not before. */
	agentid_status_list_set(l, 1, AGENTID_STATUS_INVALID);
	jwt = sign_list(l, k, URI, now + 1, now + 3600, 60);
	write_list_file(dir, "flip.jwt", jwt);
	agentid_free(jwt);
	expect_check(chk, URI, 1, now + 1, NULL);
	CU_ASSERT_EQUAL(agentid_status_checker_refresh(chk, now + 1, 0, &err), 0);
	expect_check(chk, URI, 1, now + 1, NULL); /* not due yet */
	CU_ASSERT_EQUAL(agentid_status_checker_refresh(chk, now + 1, 1, &err), 0);
	expect_check(chk, URI, 1, now + 1, "revoked");

	/* The token's claims lead to the same answer. */
	claims = json_pack("{s:{s:{s:i, s:s}}}", "status", "status_list", "idx", 1, "uri", URI);
	CU_ASSERT_EQUAL(agentid_status_check_claims(chk, claims, now + 1, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "revoked");
	json_decref(claims);
	claims = json_pack("{s:{s:{s:s, s:s}}}", "status", "status_list", "idx", "1", "uri", URI);
	CU_ASSERT_EQUAL(agentid_status_check_claims(chk, claims, now + 1, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_claim");
	json_decref(claims);
	claims = json_pack("{s:s}", "sub", "x");
	CU_ASSERT_EQUAL(agentid_status_check_claims(chk, claims, now + 1, &err), 0);
	json_decref(claims);

	agentid_status_checker_free(chk);
	agentid_status_list_free(l);
	agentid_keyset_free(ks);
	agentid_key_free(k);
}

static void
test_checker_stale_and_refused(void)
{
	struct agentid_key *k = make_key(AGENTID_ALG_EDDSA, "sl");
	struct agentid_key *evil = make_key(AGENTID_ALG_EDDSA, "sl");
	struct agentid_keyset *ks = keyset_of(k);
	struct agentid_status_list *l = NULL;
	struct agentid_status_checker *chk, *open_chk;
	struct agentid_error err;
	const char *dir = tu_tmpdir(), *path;
	time_t now = time(NULL);
	char *jwt;

	CU_ASSERT_EQUAL_FATAL(agentid_status_list_new(64, 1, &l), 0);
	agentid_status_list_set(l, 3, 1);
	jwt = sign_list(l, k, URI, now, now + 7200, 60);
	path = write_list_file(dir, "stale.jwt", jwt);
	agentid_free(jwt);
	chk = make_checker(ks, 600, 1, path);
	open_chk = make_checker(ks, 600, 0, path);
	CU_ASSERT_EQUAL(agentid_status_checker_refresh(chk, now, 1, &err), 0);
	CU_ASSERT_EQUAL(agentid_status_checker_refresh(open_chk, now, 1, &err), 0);
	expect_check(chk, URI, 3, now + 600, "revoked");
	/* Past max_age without a successful refresh: fail closed, or answer from the old list. */
	expect_check(chk, URI, 2, now + 601, "status_unavailable");
	expect_check(open_chk, URI, 2, now + 601, NULL);
	expect_check(open_chk, URI, 3, now + 601, "revoked");

	/* A list signed by another key (same kid) is refused; the last good one stays. */
	jwt = sign_list(l, evil, URI, now, now + 7200, 60);
	write_list_file(dir, "stale.jwt", jwt);
	agentid_free(jwt);
	CU_ASSERT_EQUAL(agentid_status_checker_refresh(chk, now + 10, 1, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_signature");
	expect_check(chk, URI, 3, now + 10, "revoked");
	/* Retry is scheduled after retry_seconds. */
	CU_ASSERT_EQUAL(agentid_status_checker_next_refresh(chk), now + 20);

	/* An expired list is refused. */
	jwt = sign_list(l, k, URI, now - 7200, now - 3600, 60);
	write_list_file(dir, "stale.jwt", jwt);
	agentid_free(jwt);
	CU_ASSERT_EQUAL(agentid_status_checker_refresh(chk, now + 20, 1, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "expired");

	/* A list for another URI is refused. */
	jwt = sign_list(l, k, "https://issuer.example/statuslists/2", now, now + 3600, 60);
	write_list_file(dir, "stale.jwt", jwt);
	agentid_free(jwt);
	CU_ASSERT_EQUAL(agentid_status_checker_refresh(chk, now + 30, 1, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "claim_mismatch");

	agentid_status_checker_free(chk);
	agentid_status_checker_free(open_chk);
	agentid_status_list_free(l);
	agentid_keyset_free(ks);
	agentid_key_free(k);
	agentid_key_free(evil);
}

static void
test_checker_list_exp(void)
{
	struct agentid_key *k = make_key(AGENTID_ALG_ES256, "sl");
	struct agentid_keyset *ks = keyset_of(k);
	struct agentid_status_list *l = NULL;
	struct agentid_status_checker *chk;
	struct agentid_error err;
	const char *path;
	time_t now = time(NULL);
	char *jwt;

	CU_ASSERT_EQUAL_FATAL(agentid_status_list_new(8, 1, &l), 0);
	jwt = sign_list(l, k, URI, now, now + 100, 0);
	path = write_list_file(tu_tmpdir(), "exp.jwt", jwt);
	agentid_free(jwt);
	chk = make_checker(ks, 3600, 1, path);
	CU_ASSERT_EQUAL(agentid_status_checker_refresh(chk, now, 0, &err), 0);
	expect_check(chk, URI, 0, now + 100, NULL);
	/* The list's own exp (plus leeway) bounds its use even within max_age. */
	expect_check(chk, URI, 0, now + 100 + AGENTID_DEFAULT_LEEWAY + 1, "status_unavailable");
	agentid_status_checker_free(chk);
	agentid_status_list_free(l);
	agentid_keyset_free(ks);
	agentid_key_free(k);
}

static void
test_checker_thread(void)
{
	struct agentid_key *k = make_key(AGENTID_ALG_ES256, "sl");
	struct agentid_keyset *ks = keyset_of(k);
	struct agentid_status_list *l = NULL;
	struct agentid_status_checker *chk;
	const char *path;
	time_t now = time(NULL);
	char *jwt;
	int i, ok = 0;

	CU_ASSERT_EQUAL_FATAL(agentid_status_list_new(8, 1, &l), 0);
	agentid_status_list_set(l, 2, 1);
	jwt = sign_list(l, k, URI, now, now + 600, 60);
	path = write_list_file(tu_tmpdir(), "thread.jwt", jwt);
	agentid_free(jwt);
	chk = make_checker(ks, 3600, 1, path);
	CU_ASSERT_EQUAL(agentid_status_checker_start(chk), 0);
	for (i = 0; i < 200 && !ok; i++) {
		struct agentid_error err;
		if (agentid_status_check(chk, URI, strlen(URI), 2, time(NULL), &err) ==
			AGENTID_EREJECTED &&
		    err.reason == AGENTID_R_REVOKED)
			ok = 1;
		else
			usleep(10000);
	}
	CU_ASSERT_TRUE(ok);
	agentid_status_checker_stop(chk);
	agentid_status_checker_free(chk);
	agentid_status_list_free(l);
	agentid_keyset_free(ks);
	agentid_key_free(k);
}

int
main(void)
{
	static const struct tu_test tests[] = {
		{ "draft example, 1 bit", test_draft_1bit },
		{ "draft example, 2 bits", test_draft_2bit },
		{ "draft test vectors, 1/2/4 bits, 2^20 entries", test_draft_long },
		{ "draft test vector, 8 bits", test_draft_8bit },
		{ "draft statuslist+jwt example verifies", test_draft_jwt },
		{ "sign and verify; wrong key, typ, iat refused", test_sign_verify },
		{ "decode rejects bad bits, encoding, zlib, bombs", test_decode_rejects },
		{ "checker sees a flipped bit after refresh", test_checker_flip },
		{ "checker: stale fails closed; bad lists refused", test_checker_stale_and_refused },
		{ "checker: list exp bounds its use", test_checker_list_exp },
		{ "checker: background refresh thread", test_checker_thread },
		TU_END
	};

	return tu_run("statuslist", tests);
}
