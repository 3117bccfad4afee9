/*
 * Unit tests: strict JSON parsing (duplicates, depth, trailing data, NUL).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Parses s and returns the reason code string ("ok" on success). */
static const char *
parse_reason(const char *s, size_t len, int depth)
{
	struct agentid_error err;
	json_t *v = NULL;
	int r;

	agentid_error_clear(&err);
	r = agentid_json_parse(s, len, depth, &v, &err);
	json_decref(v);
	if (r == 0)
		return "ok";
	if (r != AGENTID_EREJECTED)
		return "not-rejected";
	return agentid_reason_code(err.reason);
}

#define REASON(s, depth) parse_reason((s), strlen(s), (depth))

static void
test_valid_values(void)
{
	struct agentid_error err;
	json_t *v = NULL;

	CU_ASSERT_STRING_EQUAL(REASON("{\"a\":1,\"b\":[1,2,{\"c\":null}]}", 16), "ok");
	/* Any top-level value is accepted; callers check the type. */
	CU_ASSERT_STRING_EQUAL(REASON("[]", 16), "ok");
	CU_ASSERT_STRING_EQUAL(REASON("\"s\"", 16), "ok");
	CU_ASSERT_STRING_EQUAL(REASON("42", 16), "ok");
	CU_ASSERT_STRING_EQUAL(REASON("  {}  \r\n", 16), "ok");
	CU_ASSERT_FATAL(agentid_json_parse("{\"k\":\"v\"}", 9, 4, &v, &err) == 0);
	CU_ASSERT(json_is_object(v));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "k")), "v");
	json_decref(v);
}

static void
test_duplicate_members(void)
{
	CU_ASSERT_STRING_EQUAL(REASON("{\"a\":1,\"a\":2}", 16), "duplicate_member");
	CU_ASSERT_STRING_EQUAL(REASON("{\"x\":{\"a\":1,\"b\":2,\"a\":1}}", 16),
	    "duplicate_member");
	CU_ASSERT_STRING_EQUAL(REASON("[{\"alg\":\"ES256\",\"alg\":\"none\"}]", 16),
	    "duplicate_member");
	/* The same name spelled with an escape is still the same name. */
	CU_ASSERT_STRING_EQUAL(REASON("{\"alg\":1,\"\\u0061lg\":2}", 16), "duplicate_member");
	/* Same name in different objects is fine. */
	CU_ASSERT_STRING_EQUAL(REASON("{\"a\":{\"a\":1},\"b\":{\"a\":2}}", 16), "ok");
}

static void
test_depth_limit(void)
{
	char deep[20001];
	size_t i;

	CU_ASSERT_STRING_EQUAL(REASON("[[[1]]]", 3), "ok");
	CU_ASSERT_STRING_EQUAL(REASON("[[[1]]]", 2), "too_deep");
	CU_ASSERT_STRING_EQUAL(REASON("{\"a\":{\"b\":{}}}", 3), "ok");
	CU_ASSERT_STRING_EQUAL(REASON("{\"a\":{\"b\":{}}}", 2), "too_deep");
	/* Siblings do not add up: depth is nesting, not count. */
	CU_ASSERT_STRING_EQUAL(REASON("[[1],[2],[3],{\"a\":1}]", 2), "ok");
	/* Brackets in strings, including after an escaped quote, do not count. */
	CU_ASSERT_STRING_EQUAL(REASON("{\"a\":\"[[[[[[\"}", 1), "ok");
	CU_ASSERT_STRING_EQUAL(REASON("{\"a\\\"[[[\":\"\\\\\",\"b\":\"{{{{\"}", 1), "ok");
	CU_ASSERT_STRING_EQUAL(REASON("[\"\\\\\",[[1]]]", 2), "too_deep");
	/* A very deep document is refused by the pre-scan, never recursed into. */
	for (i = 0; i < 10000; i++)
		deep[i] = '[';
	for (; i < 20000; i++)
		deep[i] = ']';
	deep[i] = '\0';
	CU_ASSERT_STRING_EQUAL(parse_reason(deep, 20000, 16), "too_deep");
	/* Unbalanced input stays bad JSON, not a depth error. */
	CU_ASSERT_STRING_EQUAL(parse_reason(deep + 10000 - 100, 100, 200), "bad_json");
	/* max_depth <= 0 means the default of AGENTID_DEFAULT_MAX_JSON_DEPTH. */
	CU_ASSERT_STRING_EQUAL(parse_reason(deep + 10000 - 16, 32, 0), "ok");
	CU_ASSERT_STRING_EQUAL(parse_reason(deep + 10000 - 17, 34, 0), "too_deep");
}

static void
test_trailing_data(void)
{
	CU_ASSERT_STRING_EQUAL(REASON("{}x", 16), "bad_json");
	CU_ASSERT_STRING_EQUAL(REASON("{} {}", 16), "bad_json");
	CU_ASSERT_STRING_EQUAL(REASON("{\"a\":1}}", 16), "bad_json");
	CU_ASSERT_STRING_EQUAL(REASON("1 2", 16), "bad_json");
}

static void
test_nul(void)
{
	/* A raw NUL after the value, and inside a string. */
	CU_ASSERT_STRING_EQUAL(parse_reason("{}\0", 3, 16), "bad_json");
	CU_ASSERT_STRING_EQUAL(parse_reason("{\"a\":\"b\0c\"}", 11, 16), "bad_json");
	/* An escaped NUL in a value or a name. */
	CU_ASSERT_STRING_EQUAL(REASON("{\"a\":\"b\\u0000c\"}", 16), "bad_json");
	CU_ASSERT_STRING_EQUAL(REASON("{\"a\\u0000\":1}", 16), "bad_json");
}

static void
test_invalid(void)
{
	static const char *const bad[] = {
		"", "{", "}", "{\"a\"}", "{\"a\":}", "{'a':1}", "{a:1}", "[1,]", "{\"a\":1,}",
		"tru", "NaN", "01", "\"\\x\"", "\"\xff\"", "\"\xc3\"", "// c\n{}", "{\"a\":1 /**/}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_STRING_EQUAL(REASON(bad[i], 16), "bad_json");
}

static void
test_detail_has_no_input(void)
{
	struct agentid_error err;
	json_t *v = NULL;
	const char *secret = "{\"k\": SECRETVALUE}";

	CU_ASSERT(agentid_json_parse(secret, strlen(secret), 16, &v, &err) == AGENTID_EREJECTED);
	CU_ASSERT(v == NULL);
	CU_ASSERT(strstr(err.detail, "SECRET") == NULL);
	CU_ASSERT(err.detail[0] != '\0');
}

static void
test_args(void)
{
	json_t *v = (json_t *)1;

	CU_ASSERT(agentid_json_parse(NULL, 1, 16, &v, NULL) == AGENTID_EINVAL);
	CU_ASSERT(v == NULL);
	CU_ASSERT(agentid_json_parse("{}", 2, 16, NULL, NULL) == AGENTID_EINVAL);
	/* err may be NULL. */
	CU_ASSERT(agentid_json_parse("{", 1, 16, &v, NULL) == AGENTID_EREJECTED);
}

int
main(void)
{
	static const struct tu_test tests[] = {
		{ "valid_values", test_valid_values },
		{ "duplicate_members", test_duplicate_members },
		{ "depth_limit", test_depth_limit },
		{ "trailing_data", test_trailing_data },
		{ "nul", test_nul },
		{ "invalid", test_invalid },
		{ "detail_has_no_input", test_detail_has_no_input },
		{ "args", test_args },
		TU_END
	};

	return tu_run("json", tests);
}
