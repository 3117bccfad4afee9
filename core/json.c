/*
 * Strict JSON parsing on top of jansson.
 *
 * Tokens are attacker-controlled, so the parser accepts exactly one JSON
 * value and nothing else: duplicate member names (which different parsers
 * resolve differently), NUL bytes, trailing data and nesting deeper than
 * the caller's limit are all rejected.  The nesting limit is enforced by a
 * linear pre-scan before jansson sees the input, so a deeply nested
 * document never drives jansson's recursive descent.
 */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include <agentid/jose.h>

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

AGENTID_EXPORT int
agentid_json_parse(
    const char *s, size_t len, int max_depth, json_t **out, struct agentid_error *err)
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
