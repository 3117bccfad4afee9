/*
 * Fuzz target: agentid_json_parse (core/json.c, our own strict parser that
 * builds jansson values directly) against a reference -- the previous
 * implementation, a linear nesting pre-scan followed by jansson's
 * json_loadb with JSON_REJECT_DUPLICATES.  For every input and nesting
 * limit both must agree on success, on the reason code of a rejection, and
 * on the value (member order included).  Any difference aborts.
 *
 * The first input byte picks the nesting limit: small limits, the default,
 * and values around jansson's own limit of 2048.
 */
#include "fuzz_util.h"

#include <jansson.h>

#include "internal.h"

/*
 * Returns the deepest nesting of arrays and objects in s, stopping early
 * once it exceeds limit.  Brackets inside strings do not count; string
 * escapes are skipped so that \" does not end a string.  The scan does
 * not validate anything else: jansson does that afterwards.
 */
static int
json_depth_exceeds(const char *s, size_t len, int limit)
{
	int depth = 0, in_string = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
			continue;
		}
		switch (c) {
		case '"':
			in_string = 1;
			break;
		case '[':
		case '{':
			if (++depth > limit)
				return 1;
			break;
		case ']':
		case '}':
			/* Unbalanced input is jansson's to reject. */
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
	}
	return 0;
}

static int
ref_json_parse(const char *s, size_t len, int max_depth, json_t **out, struct agentid_error *err)
{
	json_error_t jerr;
	json_t *v;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || (s == NULL && len != 0))
		return AGENTID_EINVAL;
	if (max_depth <= 0)
		max_depth = AGENTID_DEFAULT_MAX_JSON_DEPTH;
	/*
	 * jansson would reject a raw NUL as well, but saying so explicitly
	 * keeps the behaviour independent of its version.
	 */
	if (len != 0 && memchr(s, '\0', len) != NULL)
		return agentid_error_set(err, AGENTID_R_BAD_JSON, "NUL byte in JSON text");
	if (json_depth_exceeds(s, len, max_depth))
		return agentid_error_set(
		    err, AGENTID_R_TOO_DEEP, "JSON nesting deeper than %d", max_depth);
	v = json_loadb(s, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (v == NULL) {
		/*
		 * jansson's message quotes the input near the error, which may
		 * be token material: report only the position.
		 */
		switch (json_error_code(&jerr)) {
		case json_error_out_of_memory:
			return AGENTID_ENOMEM;
		case json_error_duplicate_key:
			return agentid_error_set(err, AGENTID_R_DUPLICATE_MEMBER,
			    "duplicate member name at offset %d", jerr.position);
		case json_error_end_of_input_expected:
			return agentid_error_set(
			    err, AGENTID_R_BAD_JSON, "trailing data at offset %d", jerr.position);
		case json_error_null_character:
		case json_error_null_byte_in_key:
			return agentid_error_set(
			    err, AGENTID_R_BAD_JSON, "NUL character in string");
		case json_error_invalid_utf8:
			return agentid_error_set(
			    err, AGENTID_R_BAD_JSON, "invalid UTF-8 at offset %d", jerr.position);
		case json_error_stack_overflow:
			return agentid_error_set(err, AGENTID_R_TOO_DEEP, "JSON nesting too deep");
		default:
			return agentid_error_set(err, AGENTID_R_BAD_JSON,
			    "invalid JSON at line %d column %d", jerr.line, jerr.column);
		}
	}
	*out = v;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int depths[8] = { 0, 1, 2, 3, 16, 2047, 2048, 100000 };
	struct agentid_error e1, e2;
	json_t *v1 = NULL, *v2 = NULL;
	char *a, *b;
	int depth, r1, r2;

	if (size < 1)
		return 0;
	depth = depths[data[0] % 8];
	data++;
	size--;
	memset(&e1, 0, sizeof(e1));
	memset(&e2, 0, sizeof(e2));
	r1 = ref_json_parse((const char *)data, size, depth, &v1, &e1);
	r2 = agentid_json_parse((const char *)data, size, depth, &v2, &e2);
	if (r1 != r2 || e1.reason != e2.reason) {
		fprintf(stderr, "MISMATCH at depth %d: reference r=%d %s (%s), ours r=%d %s (%s)\n",
		    depth, r1, agentid_reason_code(e1.reason), e1.detail, r2,
		    agentid_reason_code(e2.reason), e2.detail);
		abort();
	}
	if (r1 == 0) {
		a = json_dumps(v1, JSON_ENCODE_ANY | JSON_COMPACT);
		b = json_dumps(v2, JSON_ENCODE_ANY | JSON_COMPACT);
		if (a == NULL || b == NULL || strcmp(a, b) != 0 || !json_equal(v1, v2)) {
			fprintf(
			    stderr, "VALUE MISMATCH\n%s\n%s\n", a ? a : "(null)", b ? b : "(null)");
			abort();
		}
		free(a);
		free(b);
	}
	json_decref(v1);
	json_decref(v2);
	return 0;
}
