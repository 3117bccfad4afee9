/*
 * SPIFFE IDs (every rule of SPIFFE-ID.md section 2, accepted and rejected)
 * and SPIFFE ID patterns.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Asserts that s is accepted and splits into td and path as given. */
#define ACCEPT(s, want_td, want_path)                                                             \
	do {                                                                                      \
		struct agentid_spiffe_id id_;                                                     \
		struct agentid_error e_ = { 0 };                                                  \
		CU_ASSERT_EQUAL_FATAL(agentid_spiffe_id_parse(s, strlen(s), &id_, &e_), 0);       \
		CU_ASSERT_EQUAL(id_.td_len, strlen(want_td));                                     \
		CU_ASSERT_NSTRING_EQUAL(id_.td, want_td, strlen(want_td));                        \
		CU_ASSERT_EQUAL(id_.path_len, strlen(want_path));                                 \
		CU_ASSERT_NSTRING_EQUAL(id_.path, want_path, strlen(want_path));                  \
	} while (0)

/* Asserts that s is rejected as bad_spiffe_id with a detail containing frag. */
static void
reject_n(const char *s, size_t len, const char *frag)
{
	struct agentid_error e = { 0 };
	struct agentid_spiffe_id id;

	CU_ASSERT_EQUAL(agentid_spiffe_id_parse(s, len, &id, &e), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "bad_spiffe_id");
	if (strstr(e.detail, frag) == NULL) {
		fprintf(stderr, "\n  \"%.60s\": detail \"%s\" lacks \"%s\"\n", s, e.detail, frag);
		CU_FAIL("wrong detail");
	}
	/* Outputs are cleared on failure. */
	CU_ASSERT_PTR_NULL(id.td);
	CU_ASSERT_EQUAL(id.path_len, 0);
}

static void
reject(const char *s, const char *frag)
{
	reject_n(s, strlen(s), frag);
}

static void
test_valid(void)
{
	ACCEPT("spiffe://example.org", "example.org", "");
	ACCEPT("spiffe://example.org/workload", "example.org", "/workload");
	ACCEPT("spiffe://staging.example.com/payments/mysql", "staging.example.com",
	    "/payments/mysql");
	ACCEPT("spiffe://k8s-west.example.com/ns/staging/sa/default", "k8s-west.example.com",
	    "/ns/staging/sa/default");
	ACCEPT("spiffe://example.com/9eebccd2-12bf-40a6-b262-65fe0487d453", "example.com",
	    "/9eebccd2-12bf-40a6-b262-65fe0487d453");
	/* Every allowed character of the trust domain and of the path. */
	ACCEPT("spiffe://abcdefghijklmnopqrstuvwxyz0123456789.-_", "abcdefghijklmnopqrstuvwxyz0123456789.-_", "");
	ACCEPT("spiffe://td/ABCXYZabcxyz0189.-_", "td", "/ABCXYZabcxyz0189.-_");
	/* An IPv4 address is a valid trust domain name. */
	ACCEPT("spiffe://192.168.0.1/x", "192.168.0.1", "/x");
	/* Segments that merely contain dots are fine. */
	ACCEPT("spiffe://td/.../a.b/..c/.d", "td", "/.../a.b/..c/.d");
	/* out may be NULL. */
	CU_ASSERT_EQUAL(agentid_spiffe_id_parse("spiffe://td/a", 13, NULL, NULL), 0);
	/* Only len bytes count: the rest of the buffer is ignored. */
	CU_ASSERT_EQUAL(agentid_spiffe_id_parse("spiffe://td/a?q", 13, NULL, NULL), 0);
}

static void
test_scheme(void)
{
	reject("", "empty");
	reject("SPIFFE://example.org/a", "lower case");
	reject("Spiffe://example.org/a", "lower case");
	reject("https://example.org/a", "spiffe://");
	reject("spiffe:/example.org/a", "spiffe://");
	reject("spiffe:example.org", "spiffe://");
	reject("spiffe", "spiffe://");
	reject("example.org/a", "spiffe://");
	reject(" spiffe://example.org/a", "spiffe://");
}

static void
test_trust_domain(void)
{
	reject("spiffe://", "trust domain is empty");
	reject("spiffe:///a", "trust domain is empty");
	reject("spiffe://Example.org/a", "lower case");
	reject("spiffe://EXAMPLE.ORG", "lower case");
	reject("spiffe://user@example.org/a", "userinfo");
	reject("spiffe://example.org:8443/a", "port");
	reject("spiffe://example.org:/a", "port");
	reject("spiffe://[::1]/a", "invalid character");
	reject("spiffe://exa mple.org/a", "trust domain contains an invalid character");
	reject("spiffe://exa+mple.org", "trust domain contains an invalid character");
	reject("spiffe://ex%41mple.org/a", "percent-encoding");
	reject("spiffe://example.org?x=1", "query");
	reject("spiffe://example.org#frag", "fragment");
	reject("spiffe://ex\xc3\xa4mple.org/a", "trust domain contains an invalid character");
	reject_n("spiffe://ex\0ample.org", 21, "trust domain contains an invalid character");
}

static void
test_trust_domain_length(void)
{
	char buf[300];
	struct agentid_error e = { 0 };

	memcpy(buf, "spiffe://", 9);
	memset(buf + 9, 'a', 255);
	buf[9 + 255] = '\0';
	CU_ASSERT_EQUAL(agentid_spiffe_id_parse(buf, strlen(buf), NULL, &e), 0);
	buf[9 + 255] = 'a';
	buf[9 + 256] = '\0';
	reject(buf, "longer than 255");

	CU_ASSERT_EQUAL(agentid_trust_domain_validate("example.org", 11, &e), 0);
	CU_ASSERT_EQUAL(agentid_trust_domain_validate(buf + 9, 255, &e), 0);
	CU_ASSERT_EQUAL(agentid_trust_domain_validate(buf + 9, 256, &e), AGENTID_EREJECTED);
	CU_ASSERT_EQUAL(agentid_trust_domain_validate("", 0, &e), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(e.detail, "trust domain is empty");
	CU_ASSERT_EQUAL(agentid_trust_domain_validate("Example.org", 11, &e), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "bad_spiffe_id");
	CU_ASSERT_EQUAL(agentid_trust_domain_validate("example.org/a", 13, &e), AGENTID_EREJECTED);
	CU_ASSERT_EQUAL(agentid_trust_domain_validate("spiffe://example.org", 20, &e),
	    AGENTID_EREJECTED);
	CU_ASSERT_EQUAL(agentid_trust_domain_validate(NULL, 0, &e), AGENTID_EINVAL);
}

static void
test_path(void)
{
	reject("spiffe://example.org/", "must not end with '/'");
	reject("spiffe://example.org/a/", "must not end with '/'");
	reject("spiffe://example.org//a", "empty segment");
	reject("spiffe://example.org/a//b", "empty segment");
	reject("spiffe://example.org/.", "dot segment");
	reject("spiffe://example.org/..", "dot segment");
	reject("spiffe://example.org/a/./b", "dot segment");
	reject("spiffe://example.org/a/../b", "dot segment");
	reject("spiffe://example.org/a/..", "dot segment");
	reject("spiffe://example.org/a%20b", "percent-encoding");
	reject("spiffe://example.org/a%2Fb", "percent-encoding");
	reject("spiffe://example.org/a?b=c", "query");
	reject("spiffe://example.org/a#b", "fragment");
	reject("spiffe://example.org/a b", "path contains an invalid character");
	reject("spiffe://example.org/a:b", "path contains an invalid character");
	reject("spiffe://example.org/a@b", "path contains an invalid character");
	reject("spiffe://example.org/a*", "path contains an invalid character");
	reject("spiffe://example.org/\xc3\xa4", "path contains an invalid character");
	reject("spiffe://example.org/a\\b", "path contains an invalid character");
	reject_n("spiffe://example.org/a\0b", 24, "path contains an invalid character");
}

static void
test_length(void)
{
	char *buf = malloc(AGENTID_SPIFFE_ID_MAX + 2);
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	/* "spiffe://td/" followed by segments of 'x' up to exactly 2048 bytes. */
	memcpy(buf, "spiffe://td/", 12);
	for (n = 12; n < AGENTID_SPIFFE_ID_MAX; n++)
		buf[n] = (n % 100 == 0) ? '/' : 'x';
	buf[n] = '\0';
	CU_ASSERT_EQUAL(strlen(buf), 2048);
	CU_ASSERT_EQUAL(agentid_spiffe_id_parse(buf, 2048, NULL, NULL), 0);
	buf[2048] = 'x';
	buf[2049] = '\0';
	reject(buf, "longer than 2048");
	free(buf);
}

static void
test_null(void)
{
	struct agentid_spiffe_id id;

	CU_ASSERT_EQUAL(agentid_spiffe_id_parse(NULL, 0, &id, NULL), AGENTID_EINVAL);
	/* A NULL err is allowed on rejection too. */
	CU_ASSERT_EQUAL(agentid_spiffe_id_parse("x", 1, NULL, NULL), AGENTID_EREJECTED);
}

/* ---- patterns ---- */

static int
pmatch(const char *pat, const char *id)
{
	struct agentid_spiffe_pattern *p = NULL;
	int m;

	if (agentid_spiffe_pattern_parse(pat, strlen(pat), &p, NULL) != 0) {
		CU_FAIL("pattern did not parse");
		return -1;
	}
	m = agentid_spiffe_pattern_match(p, id, strlen(id));
	agentid_spiffe_pattern_free(p);
	return m;
}

static void
test_pattern_exact(void)
{
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/b", "spiffe://td/a/b"), 1);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/b", "spiffe://td/a/b/c"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/b", "spiffe://td/a/bc"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/b", "spiffe://td/a"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/b", "spiffe://td/A/b"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/b", "spiffe://other/a/b"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td", "spiffe://td"), 1);
	CU_ASSERT_EQUAL(pmatch("spiffe://td", "spiffe://td/a"), 0);
}

static void
test_pattern_below(void)
{
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/*", "spiffe://td/a/b"), 1);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/*", "spiffe://td/a/b/c"), 1);
	/* Strictly below: /a itself does not match, nor a sibling that shares the prefix. */
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/*", "spiffe://td/a"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/*", "spiffe://td/ab"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/*", "spiffe://td/ab/c"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/*", "spiffe://td/b/a"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/*", "spiffe://tdx/a/b"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/b/*", "spiffe://td/a/b/c"), 1);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/b/*", "spiffe://td/a/c/d"), 0);
	/* Invalid IDs never match, even with a matching prefix. */
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/*", "spiffe://td/a/"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/*", "spiffe://td/a/b?x"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/a/*", "spiffe://td/a/.."), 0);
}

static void
test_pattern_domain(void)
{
	CU_ASSERT_EQUAL(pmatch("spiffe://td/*", "spiffe://td"), 1);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/*", "spiffe://td/a"), 1);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/*", "spiffe://td/a/b/c"), 1);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/*", "spiffe://tdx"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/*", "spiffe://tdx/a"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/*", "spiffe://t"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/*", "spiffe://other/a"), 0);
	CU_ASSERT_EQUAL(pmatch("spiffe://td/*", "spiffe://td/"), 0);
}

static void
test_pattern_any(void)
{
	CU_ASSERT_EQUAL(pmatch("*", "spiffe://td"), 1);
	CU_ASSERT_EQUAL(pmatch("*", "spiffe://other.org/a/b"), 1);
	CU_ASSERT_EQUAL(pmatch("*", "https://td/a"), 0);
	CU_ASSERT_EQUAL(pmatch("*", "spiffe://TD/a"), 0);
	CU_ASSERT_EQUAL(pmatch("*", ""), 0);
}

static void
pattern_reject(const char *s)
{
	struct agentid_spiffe_pattern *p = (void *)1;
	struct agentid_error e = { 0 };

	CU_ASSERT_EQUAL(agentid_spiffe_pattern_parse(s, strlen(s), &p, &e), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "bad_spiffe_id");
	CU_ASSERT_PTR_NULL(p);
}

static void
test_pattern_invalid(void)
{
	pattern_reject("");
	pattern_reject("**");
	pattern_reject("/*");
	pattern_reject("spiffe://*");
	pattern_reject("spiffe://td*");
	pattern_reject("spiffe://td/a*");
	pattern_reject("spiffe://td/*/b");
	pattern_reject("spiffe://td/a/*/*");
	pattern_reject("spiffe://td//*");
	pattern_reject("spiffe://TD/*");
	pattern_reject("spiffe://td/a/");
	pattern_reject("spiffe://td:80/*");
	pattern_reject("https://td/*");
}

static void
test_patterns_list(void)
{
	const char *pats[] = { "spiffe://a.org/x", "spiffe://b.org/agents/*" };
	const char *bad[] = { "spiffe://a.org/x", "spiffe://b.org/a/" };
	struct agentid_spiffe_patterns *ps = NULL;
	struct agentid_error e = { 0 };

	CU_ASSERT_EQUAL_FATAL(agentid_spiffe_patterns_parse(pats, 2, &ps, &e), 0);
	CU_ASSERT_EQUAL(agentid_spiffe_patterns_match(ps, "spiffe://a.org/x", 16), 1);
	CU_ASSERT_EQUAL(agentid_spiffe_patterns_match(ps, "spiffe://a.org/y", 16), 0);
	CU_ASSERT_EQUAL(agentid_spiffe_patterns_match(ps, "spiffe://b.org/agents/1", 23), 1);
	CU_ASSERT_EQUAL(agentid_spiffe_patterns_match(ps, "spiffe://b.org/agents", 21), 0);
	agentid_spiffe_patterns_free(ps);

	/* An empty list matches nothing. */
	CU_ASSERT_EQUAL_FATAL(agentid_spiffe_patterns_parse(NULL, 0, &ps, &e), 0);
	CU_ASSERT_EQUAL(agentid_spiffe_patterns_match(ps, "spiffe://a.org/x", 16), 0);
	agentid_spiffe_patterns_free(ps);
	CU_ASSERT_EQUAL(agentid_spiffe_patterns_match(NULL, "spiffe://a.org/x", 16), 0);

	/* The failing pattern is named in the detail. */
	ps = (void *)1;
	CU_ASSERT_EQUAL(agentid_spiffe_patterns_parse(bad, 2, &ps, &e), AGENTID_EREJECTED);
	CU_ASSERT_PTR_NULL(ps);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(e.reason), "bad_spiffe_id");
	CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, "pattern 2"));
	CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, "must not end with '/'"));
	agentid_spiffe_patterns_free(NULL);
	agentid_spiffe_pattern_free(NULL);
}

int
main(void)
{
	static const struct tu_test tests[] = {
		{ "valid IDs", test_valid },
		{ "scheme", test_scheme },
		{ "trust domain", test_trust_domain },
		{ "trust domain length", test_trust_domain_length },
		{ "path", test_path },
		{ "2048-byte limit", test_length },
		{ "NULL arguments", test_null },
		{ "pattern: exact", test_pattern_exact },
		{ "pattern: below a path", test_pattern_below },
		{ "pattern: whole trust domain", test_pattern_domain },
		{ "pattern: any", test_pattern_any },
		{ "pattern: invalid", test_pattern_invalid },
		{ "pattern lists", test_patterns_list },
		TU_END
	};

	return tu_run("spiffe_id", tests);
}
