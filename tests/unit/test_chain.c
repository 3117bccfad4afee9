/*
 * Unit tests for delegation chains (nested RFC 8693 act claims).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define A "spiffe://example.org/agent/a"
#define B "spiffe://example.org/agent/b"
#define C "spiffe://example.org/agent/c"
#define X "spiffe://other.org/agent/x"

static json_t *
claims(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);

	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	return j;
}

static void
rules_default(struct agentid_chain_rules *r)
{
	memset(r, 0, sizeof(*r));
	r->max_depth = AGENTID_DEFAULT_MAX_CHAIN_DEPTH;
	r->require_spiffe = 1;
}

static struct agentid_chain *
parse_ok(const char *text, const struct agentid_chain_rules *rules)
{
	struct agentid_chain *c = NULL;
	struct agentid_error err;
	json_t *j = claims(text);

	agentid_error_clear(&err);
	CU_ASSERT_EQUAL(agentid_chain_parse(j, rules, &c, &err), 0);
	if (c == NULL)
		fprintf(stderr, "unexpected rejection: %s: %s\n", agentid_reason_code(err.reason),
		    err.detail);
	json_decref(j);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	return c;
}

static void
expect_reject(const char *text, const struct agentid_chain_rules *rules, enum agentid_reason reason)
{
	struct agentid_chain *c = NULL;
	struct agentid_error err;
	json_t *j = claims(text);

	agentid_error_clear(&err);
	CU_ASSERT_EQUAL(agentid_chain_parse(j, rules, &c, &err), AGENTID_EREJECTED);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), agentid_reason_code(reason));
	CU_ASSERT(err.detail[0] != '\0');
	agentid_chain_free(c);
	json_decref(j);
}

static void
test_absent(void)
{
	struct agentid_chain_rules rules;
	struct agentid_chain *c;
	char *s = NULL;

	rules_default(&rules);
	c = parse_ok("{\"sub\": \"" A "\"}", &rules);
	CU_ASSERT_EQUAL(agentid_chain_len(c), 0);
	CU_ASSERT_PTR_NULL(agentid_chain_get(c, 0));
	CU_ASSERT_EQUAL(agentid_chain_to_string(c, NULL, &s), 0);
	CU_ASSERT_STRING_EQUAL(s, "");
	agentid_free(s);
	agentid_chain_free(c);

	/* max_depth 0 forbids act but an absent act is still fine. */
	rules.max_depth = 0;
	c = parse_ok("{}", &rules);
	CU_ASSERT_EQUAL(agentid_chain_len(c), 0);
	agentid_chain_free(c);
}

static void
test_nested_order(void)
{
	struct agentid_chain_rules rules;
	struct agentid_chain *c;
	json_t *j = NULL;
	char *s = NULL;

	rules_default(&rules);
	c = parse_ok("{\"sub\":\"user\",\"act\":{\"sub\":\"" C "\",\"iss\":\"https://x\","
	             "\"client_id\":\"cli\",\"act\":{\"sub\":\"" B "\",\"act\":{\"sub\":\"" A
	             "\"}}}}",
	    &rules);
	CU_ASSERT_EQUAL_FATAL(agentid_chain_len(c), 3);
	CU_ASSERT_STRING_EQUAL(agentid_chain_get(c, 0), C);
	CU_ASSERT_STRING_EQUAL(agentid_chain_get(c, 1), B);
	CU_ASSERT_STRING_EQUAL(agentid_chain_get(c, 2), A);
	CU_ASSERT_EQUAL(agentid_chain_contains(c, B, strlen(B)), 1);
	CU_ASSERT_EQUAL(agentid_chain_contains(c, X, strlen(X)), 0);
	CU_ASSERT_EQUAL(agentid_chain_contains(c, B, strlen(B) - 1), 0);
	CU_ASSERT_EQUAL(agentid_chain_to_string(c, NULL, &s), 0);
	CU_ASSERT_STRING_EQUAL(s, C "," B "," A);
	agentid_free(s);
	CU_ASSERT_EQUAL(agentid_chain_to_string(c, " <- ", &s), 0);
	CU_ASSERT_STRING_EQUAL(s, C " <- " B " <- " A);
	agentid_free(s);
	CU_ASSERT_EQUAL(agentid_chain_to_json(c, &j), 0);
	CU_ASSERT_EQUAL(json_array_size(j), 3);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(j, 0)), C);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(j, 2)), A);
	json_decref(j);
	agentid_chain_free(c);
}

static void
test_invalid(void)
{
	struct agentid_chain_rules rules;

	rules_default(&rules);
	expect_reject("{\"act\":\"" A "\"}", &rules, AGENTID_R_CHAIN_INVALID);
	expect_reject("{\"act\":[{\"sub\":\"" A "\"}]}", &rules, AGENTID_R_CHAIN_INVALID);
	expect_reject("{\"act\":null}", &rules, AGENTID_R_CHAIN_INVALID);
	expect_reject("{\"act\":{}}", &rules, AGENTID_R_CHAIN_INVALID);
	expect_reject("{\"act\":{\"sub\":42}}", &rules, AGENTID_R_CHAIN_INVALID);
	expect_reject("{\"act\":{\"sub\":\"\"}}", &rules, AGENTID_R_CHAIN_INVALID);
	expect_reject("{\"act\":{\"iss\":\"" A "\"}}", &rules, AGENTID_R_CHAIN_INVALID);
	expect_reject("{\"act\":{\"sub\":\"" A "\",\"act\":5}}", &rules, AGENTID_R_CHAIN_INVALID);
	expect_reject("{\"act\":{\"sub\":\"" A "\",\"act\":{\"sub\":null}}}", &rules,
	    AGENTID_R_CHAIN_INVALID);
}

static void
test_depth(void)
{
	static const char three[] = "{\"act\":{\"sub\":\"" C "\",\"act\":{\"sub\":\"" B
	                            "\",\"act\":{\"sub\":\"" A "\"}}}}";
	struct agentid_chain_rules rules;
	struct agentid_chain *c;

	rules_default(&rules);
	rules.max_depth = 3;
	c = parse_ok(three, &rules);
	CU_ASSERT_EQUAL(agentid_chain_len(c), 3);
	agentid_chain_free(c);
	rules.max_depth = 2;
	expect_reject(three, &rules, AGENTID_R_CHAIN_TOO_DEEP);
	rules.max_depth = 0;
	expect_reject("{\"act\":{\"sub\":\"" A "\"}}", &rules, AGENTID_R_CHAIN_TOO_DEEP);
}

static void
test_cycle(void)
{
	struct agentid_chain_rules rules;

	rules_default(&rules);
	expect_reject("{\"act\":{\"sub\":\"" A "\",\"act\":{\"sub\":\"" B "\",\"act\":{\"sub\":\"" A
	              "\"}}}}",
	    &rules, AGENTID_R_CHAIN_CYCLE);
	expect_reject("{\"act\":{\"sub\":\"" A "\",\"act\":{\"sub\":\"" A "\"}}}", &rules,
	    AGENTID_R_CHAIN_CYCLE);
	/* Cycles are found without SPIFFE validation too. */
	rules.require_spiffe = 0;
	expect_reject(
	    "{\"act\":{\"sub\":\"bob\",\"act\":{\"sub\":\"bob\"}}}", &rules, AGENTID_R_CHAIN_CYCLE);
}

static void
test_spiffe(void)
{
	struct agentid_chain_rules rules;
	struct agentid_chain *c;

	rules_default(&rules);
	expect_reject("{\"act\":{\"sub\":\"" A "\",\"act\":{\"sub\":\"bob\"}}}", &rules,
	    AGENTID_R_BAD_SPIFFE_ID);
	expect_reject(
	    "{\"act\":{\"sub\":\"spiffe://example.org/a/\"}}", &rules, AGENTID_R_BAD_SPIFFE_ID);
	expect_reject(
	    "{\"act\":{\"sub\":\"SPIFFE://example.org/a\"}}", &rules, AGENTID_R_BAD_SPIFFE_ID);
	rules.require_spiffe = 0;
	c = parse_ok("{\"act\":{\"sub\":\"" A "\",\"act\":{\"sub\":\"bob\"}}}", &rules);
	CU_ASSERT_EQUAL(agentid_chain_len(c), 2);
	CU_ASSERT_STRING_EQUAL(agentid_chain_get(c, 1), "bob");
	agentid_chain_free(c);
}

static void
test_trusted(void)
{
	struct agentid_chain_rules rules;
	struct agentid_trust *trust = NULL;
	struct agentid_bundle *b = NULL;
	struct agentid_chain *c;

	CU_ASSERT_EQUAL_FATAL(agentid_trust_new(&trust), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_new("example.org", &b), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_trust_add_bundle(trust, b), 0);
	agentid_bundle_free(b);
	rules_default(&rules);
	rules.trust = trust;
	c = parse_ok("{\"act\":{\"sub\":\"" A "\",\"act\":{\"sub\":\"" B "\"}}}", &rules);
	CU_ASSERT_EQUAL(agentid_chain_len(c), 2);
	agentid_chain_free(c);
	expect_reject("{\"act\":{\"sub\":\"" A "\",\"act\":{\"sub\":\"" X "\"}}}", &rules,
	    AGENTID_R_UNTRUSTED_DOMAIN);
	/* A trust check needs a trust domain, so it implies SPIFFE IDs. */
	rules.require_spiffe = 0;
	expect_reject("{\"act\":{\"sub\":\"bob\"}}", &rules, AGENTID_R_BAD_SPIFFE_ID);
	agentid_trust_free(trust);
}

static void
test_allow_actors(void)
{
	static const char *const pats[] = { "spiffe://example.org/agent/*" };
	struct agentid_spiffe_patterns *ps = NULL;
	struct agentid_chain_rules rules;
	struct agentid_error err;
	struct agentid_chain *c;

	CU_ASSERT_EQUAL_FATAL(agentid_spiffe_patterns_parse(pats, 1, &ps, &err), 0);
	rules_default(&rules);
	rules.allow_actors = ps;
	c = parse_ok("{\"act\":{\"sub\":\"" A "\",\"act\":{\"sub\":\"" B "\"}}}", &rules);
	CU_ASSERT_EQUAL(agentid_chain_len(c), 2);
	agentid_chain_free(c);
	/* Every hop must match, not just the current actor. */
	expect_reject("{\"act\":{\"sub\":\"" A "\",\"act\":{\"sub\":\"" X "\"}}}", &rules,
	    AGENTID_R_AGENT_NOT_ALLOWED);
	expect_reject("{\"act\":{\"sub\":\"spiffe://example.org/agent\"}}", &rules,
	    AGENTID_R_AGENT_NOT_ALLOWED);
	/* A non-SPIFFE actor never matches a pattern. */
	rules.require_spiffe = 0;
	expect_reject("{\"act\":{\"sub\":\"bob\"}}", &rules, AGENTID_R_AGENT_NOT_ALLOWED);
	agentid_spiffe_patterns_free(ps);
}

static void
test_args(void)
{
	struct agentid_chain_rules rules;
	struct agentid_chain *c = NULL;
	struct agentid_error err;
	json_t *j = json_string("x");

	rules_default(&rules);
	CU_ASSERT_EQUAL(agentid_chain_parse(j, &rules, &c, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "malformed");
	CU_ASSERT_EQUAL(agentid_chain_parse(NULL, &rules, &c, &err), 0);
	CU_ASSERT_EQUAL(agentid_chain_len(c), 0);
	agentid_chain_free(c);
	CU_ASSERT_EQUAL(agentid_chain_parse(NULL, NULL, &c, &err), AGENTID_EINVAL);
	json_decref(j);
	agentid_chain_free(NULL);
	CU_ASSERT_EQUAL(agentid_chain_len(NULL), 0);
}

int
main(void)
{
	static const struct tu_test tests[] = {
		{ "absent", test_absent },
		{ "nested_order", test_nested_order },
		{ "invalid", test_invalid },
		{ "depth", test_depth },
		{ "cycle", test_cycle },
		{ "spiffe", test_spiffe },
		{ "trusted", test_trusted },
		{ "allow_actors", test_allow_actors },
		{ "args", test_args },
		TU_END,
	};

	return tu_run("chain", tests);
}
