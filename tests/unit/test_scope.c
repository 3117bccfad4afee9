/*
 * Unit tests for scope sets (RFC 6749 section 3.3).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static struct agentid_scopes *
parse_ok(const char *s)
{
	struct agentid_scopes *sc = NULL;
	struct agentid_error err;

	CU_ASSERT_EQUAL_FATAL(agentid_scopes_parse(s, strlen(s), &sc, &err), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
	return sc;
}

static void
expect_reject(const char *s, size_t len, enum agentid_reason reason)
{
	struct agentid_scopes *sc = (struct agentid_scopes *)1;
	struct agentid_error err;

	agentid_error_clear(&err);
	CU_ASSERT_EQUAL(agentid_scopes_parse(s, len, &sc, &err), AGENTID_EREJECTED);
	CU_ASSERT_PTR_NULL(sc);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), agentid_reason_code(reason));
	CU_ASSERT(err.detail[0] != '\0');
}

static void
test_parse_basic(void)
{
	struct agentid_scopes *sc = parse_ok("read write admin:all");

	CU_ASSERT_EQUAL(agentid_scopes_count(sc), 3);
	CU_ASSERT_STRING_EQUAL(agentid_scopes_get(sc, 0), "read");
	CU_ASSERT_STRING_EQUAL(agentid_scopes_get(sc, 1), "write");
	CU_ASSERT_STRING_EQUAL(agentid_scopes_get(sc, 2), "admin:all");
	CU_ASSERT_PTR_NULL(agentid_scopes_get(sc, 3));
	agentid_scopes_free(sc);
}

static void
test_parse_empty(void)
{
	struct agentid_scopes *sc = parse_ok("");
	char *s = NULL;

	CU_ASSERT_EQUAL(agentid_scopes_count(sc), 0);
	CU_ASSERT_EQUAL(agentid_scopes_to_string(sc, &s), 0);
	CU_ASSERT_STRING_EQUAL(s, "");
	agentid_free(s);
	agentid_scopes_free(sc);
}

static void
test_parse_dedupe_order(void)
{
	struct agentid_scopes *sc = parse_ok("b a b c a");
	char *s = NULL;

	CU_ASSERT_EQUAL(agentid_scopes_count(sc), 3);
	CU_ASSERT_EQUAL(agentid_scopes_to_string(sc, &s), 0);
	CU_ASSERT_STRING_EQUAL(s, "b a c");
	agentid_free(s);
	agentid_scopes_free(sc);
}

static void
test_parse_spaces(void)
{
	expect_reject(" a", 2, AGENTID_R_BAD_CLAIM);
	expect_reject("a ", 2, AGENTID_R_BAD_CLAIM);
	expect_reject("a  b", 4, AGENTID_R_BAD_CLAIM);
	expect_reject(" ", 1, AGENTID_R_BAD_CLAIM);
	expect_reject("a\tb", 3, AGENTID_R_BAD_CLAIM);
	expect_reject("a\nb", 3, AGENTID_R_BAD_CLAIM);
}

static void
test_parse_charset(void)
{
	struct agentid_scopes *sc;

	/* The edges of the allowed ranges: 0x21, 0x23, 0x5b, 0x5d, 0x7e. */
	sc = parse_ok("! # [ ] ~ a:b/c.d-e_f+g=h");
	CU_ASSERT_EQUAL(agentid_scopes_count(sc), 6);
	agentid_scopes_free(sc);
	expect_reject("a\"b", 3, AGENTID_R_BAD_CLAIM);
	expect_reject("a\\b", 3, AGENTID_R_BAD_CLAIM);
	expect_reject("a\x7f", 2, AGENTID_R_BAD_CLAIM);
	expect_reject("caf\xc3\xa9", 5, AGENTID_R_BAD_CLAIM);
	expect_reject("a\0b", 3, AGENTID_R_BAD_CLAIM);
	expect_reject("\x1f", 1, AGENTID_R_BAD_CLAIM);
}

static void
test_limits(void)
{
	struct agentid_scopes *sc;
	char *buf = malloc(8192);
	size_t len = 0;
	int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	for (i = 0; i < 256; i++)
		len += (size_t)snprintf(buf + len, 8192 - len, "%ss%d", i ? " " : "", i);
	sc = parse_ok(buf);
	CU_ASSERT_EQUAL(agentid_scopes_count(sc), 256);
	CU_ASSERT_EQUAL(agentid_scopes_add(sc, "extra", 5), AGENTID_ERANGE);
	/* A duplicate of a present scope is still fine at the limit. */
	CU_ASSERT_EQUAL(agentid_scopes_add(sc, "s7", 2), 0);
	agentid_scopes_free(sc);
	len += (size_t)snprintf(buf + len, 8192 - len, " s256");
	expect_reject(buf, len, AGENTID_R_TOO_LARGE);

	/* 4096 bytes in one token is fine; 4097 is too large. */
	memset(buf, 'x', 4097);
	buf[4096] = '\0';
	sc = parse_ok(buf);
	CU_ASSERT_EQUAL(agentid_scopes_count(sc), 1);
	CU_ASSERT_EQUAL(agentid_scopes_add(sc, "y", 1), AGENTID_ERANGE);
	agentid_scopes_free(sc);
	expect_reject(buf, 4097, AGENTID_R_TOO_LARGE);
	free(buf);
}

static void
test_has(void)
{
	struct agentid_scopes *sc = parse_ok("read write:all");
	const char *all[] = { "read", "write:all" };
	const char *partial[] = { "read", "admin" };
	const char *none[] = { "admin", "write" };

	CU_ASSERT_EQUAL(agentid_scopes_has(sc, "read", 4), 1);
	/* Membership is exact: no prefix or substring matches. */
	CU_ASSERT_EQUAL(agentid_scopes_has(sc, "write", 5), 0);
	CU_ASSERT_EQUAL(agentid_scopes_has(sc, "rea", 3), 0);
	CU_ASSERT_EQUAL(agentid_scopes_has(sc, "READ", 4), 0);
	CU_ASSERT_EQUAL(agentid_scopes_has_all(sc, all, 2), 1);
	CU_ASSERT_EQUAL(agentid_scopes_has_all(sc, partial, 2), 0);
	CU_ASSERT_EQUAL(agentid_scopes_has_all(sc, NULL, 0), 1);
	CU_ASSERT_EQUAL(agentid_scopes_has_any(sc, partial, 2), 1);
	CU_ASSERT_EQUAL(agentid_scopes_has_any(sc, none, 2), 0);
	CU_ASSERT_EQUAL(agentid_scopes_has_any(sc, NULL, 0), 1);
	agentid_scopes_free(sc);
}

static void
test_subset_intersect(void)
{
	struct agentid_scopes *a = parse_ok("c a"), *b = parse_ok("a b c"), *e = parse_ok("");
	struct agentid_scopes *x = NULL;
	char *s = NULL;

	CU_ASSERT_EQUAL(agentid_scopes_subset(a, b), 1);
	CU_ASSERT_EQUAL(agentid_scopes_subset(b, a), 0);
	CU_ASSERT_EQUAL(agentid_scopes_subset(e, a), 1);
	CU_ASSERT_EQUAL(agentid_scopes_subset(a, e), 0);
	CU_ASSERT_EQUAL(agentid_scopes_intersect(b, a, &x), 0);
	CU_ASSERT_EQUAL(agentid_scopes_to_string(x, &s), 0);
	CU_ASSERT_STRING_EQUAL(s, "a c");
	agentid_free(s);
	agentid_scopes_free(x);
	CU_ASSERT_EQUAL(agentid_scopes_intersect(a, e, &x), 0);
	CU_ASSERT_EQUAL(agentid_scopes_count(x), 0);
	agentid_scopes_free(x);
	agentid_scopes_free(a);
	agentid_scopes_free(b);
	agentid_scopes_free(e);
}

static void
test_add(void)
{
	struct agentid_scopes *sc = NULL;
	char *s = NULL;

	CU_ASSERT_EQUAL_FATAL(agentid_scopes_new(&sc), 0);
	CU_ASSERT_EQUAL(agentid_scopes_add(sc, "x", 1), 0);
	CU_ASSERT_EQUAL(agentid_scopes_add(sc, "x", 1), 0);
	CU_ASSERT_EQUAL(agentid_scopes_add(sc, "y z", 3), AGENTID_EINVAL);
	CU_ASSERT_EQUAL(agentid_scopes_add(sc, "", 0), AGENTID_EINVAL);
	CU_ASSERT_EQUAL(agentid_scopes_add(sc, "q\"", 2), AGENTID_EINVAL);
	/* len bounds the token: "yz" with len 1 adds "y". */
	CU_ASSERT_EQUAL(agentid_scopes_add(sc, "yz", 1), 0);
	CU_ASSERT_EQUAL(agentid_scopes_to_string(sc, &s), 0);
	CU_ASSERT_STRING_EQUAL(s, "x y");
	agentid_free(s);
	agentid_scopes_free(sc);
	agentid_scopes_free(NULL);
	CU_ASSERT_EQUAL(agentid_scopes_count(NULL), 0);
}

int
main(void)
{
	static const struct tu_test tests[] = {
		{ "parse_basic", test_parse_basic },
		{ "parse_empty", test_parse_empty },
		{ "parse_dedupe_order", test_parse_dedupe_order },
		{ "parse_spaces", test_parse_spaces },
		{ "parse_charset", test_parse_charset },
		{ "limits", test_limits },
		{ "has", test_has },
		{ "subset_intersect", test_subset_intersect },
		{ "add", test_add },
		TU_END,
	};

	return tu_run("scope", tests);
}
