/*
 * Strict JSON parsing into jansson values.
 *
 * Tokens are attacker-controlled, so the parser accepts exactly one JSON
 * value (RFC 8259) and nothing else: duplicate member names (which
 * different parsers resolve differently), NUL bytes and escaped NULs,
 * invalid UTF-8, trailing data and nesting deeper than the caller's limit
 * are all rejected.
 *
 * The parser is our own because jansson's decoder reads its input one
 * character at a time through a callback and copies every token into a
 * growing buffer: it spent about 5 us on the 400-byte payload of a typical
 * access token, most of a verifier's non-cryptographic work.  This one
 * scans the input in place, hands jansson only finished values
 * (json_stringn_nocheck, json_object_setn_new_nocheck) and allocates
 * nothing else unless a string contains escapes.  It accepts exactly the
 * documents json_loadb(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY) accepts,
 * builds the same values in the same member order, and rejects the rest
 * with the same reason code, which the unit tests and the fuzz targets
 * hold it to.
 *
 * The order of the rejections is part of that contract: a raw NUL byte
 * anywhere is reported first, then nesting deeper than the limit anywhere
 * in the text (found by a linear scan that needs no valid JSON), then the
 * first error in reading order.  A document that parses cleanly has
 * neither a NUL byte nor too deep a nesting, so the two scans run only
 * when the parse failed.  The recursive descent never goes deeper than
 * the limit either way.
 */
#include "config.h"

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <agentid/jose.h>

#include "internal.h"

/*
 * jansson refuses more than this many nested values (JSON_PARSER_MAX_DEPTH,
 * counting scalars too), whatever the caller's limit; so do we.
 */
#define JSON_VALUE_DEPTH_MAX 2048

/* A real number's text longer than this is copied to the heap for strtod. */
#define JSON_NUMBER_STACK 64

enum jp_error {
	JP_OK = 0,
	JP_SYNTAX,
	JP_TRAILING,
	JP_DUPLICATE,
	JP_UTF8,
	JP_NUL,
	JP_RANGE,
	JP_DEEP,
	JP_NOMEM,
};

struct jp {
	const unsigned char *start;
	const unsigned char *p; /* the next byte to read */
	const unsigned char *end;
	int max_depth; /* of arrays and objects */
	enum jp_error error;
	size_t error_pos;
	/*
	 * Strings that contain escapes or non-ASCII characters are decoded
	 * here, each after the previous one, so that a decoded member name
	 * stays valid while its value is parsed.  A decoded string is never
	 * longer than its source text, so one buffer as long as the input,
	 * made on first need, holds them all.
	 */
	char *scratch;
	size_t scratch_used;
};

/*
 * String bytes that need no attention: printable ASCII except '"' and
 * '\\'.  Control characters must be escaped, and bytes from 0x80 start
 * UTF-8 sequences that must be checked.
 */
/* clang-format off */
static const unsigned char json_plain[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};
/* clang-format on */

/*
 * Returns the deepest nesting of arrays and objects in s, stopping early
 * once it exceeds limit.  Brackets inside strings do not count; string
 * escapes are skipped so that \" does not end a string.  The scan does
 * not validate anything else: the parser does that.
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
			/* Unbalanced input is the parser's to reject. */
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
	}
	return 0;
}

/* Records the first error (at the current position) and returns NULL for the caller. */
static json_t *
jp_fail(struct jp *j, enum jp_error e)
{
	if (j->error == JP_OK) {
		j->error = e;
		j->error_pos = (size_t)(j->p - j->start);
	}
	return NULL;
}

/* Skips the four whitespace characters of RFC 8259 section 2. */
static inline void
jp_ws(struct jp *j)
{
	const unsigned char *p = j->p;

	while (p < j->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	j->p = p;
}

static int
jp_hex4(const unsigned char *p, unsigned *out)
{
	unsigned v = 0, d;
	int i;

	for (i = 0; i < 4; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			d = (unsigned)(p[i] - '0');
		else if (p[i] >= 'a' && p[i] <= 'f')
			d = (unsigned)(p[i] - 'a' + 10);
		else if (p[i] >= 'A' && p[i] <= 'F')
			d = (unsigned)(p[i] - 'A' + 10);
		else
			return -1;
		v = (v << 4) | d;
	}
	*out = v;
	return 0;
}

/*
 * Length of the well-formed UTF-8 sequence at p (at most n bytes
 * available), or 0: no continuation byte first, no overlong form, no
 * surrogate, nothing above U+10FFFF (RFC 3629 section 4).
 */
static size_t
jp_utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	uint32_t v;
	size_t len, i;

	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) || (len == 3 && v < 0x800)
	    || (len == 4 && v < 0x10000))
		return 0;
	return len;
}

/* Writes code point v (a valid scalar value) as UTF-8 at o; returns the length. */
static size_t
jp_utf8_put(unsigned v, char *o)
{
	if (v < 0x80) {
		o[0] = (char)v;
		return 1;
	}
	if (v < 0x800) {
		o[0] = (char)(0xc0 | (v >> 6));
		o[1] = (char)(0x80 | (v & 0x3f));
		return 2;
	}
	if (v < 0x10000) {
		o[0] = (char)(0xe0 | (v >> 12));
		o[1] = (char)(0x80 | ((v >> 6) & 0x3f));
		o[2] = (char)(0x80 | (v & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (v >> 18));
	o[1] = (char)(0x80 | ((v >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((v >> 6) & 0x3f));
	o[3] = (char)(0x80 | (v & 0x3f));
	return 4;
}

/*
 * The slow path of jp_string: decodes the string whose text starts at
 * j->p into the scratch buffer.  Returns 1 when the string holds an
 * escaped NUL, which its callers refuse (strings cross into C code that
 * stops at the first NUL) once the whole string has been read.
 */
static int
jp_string_decode(struct jp *j, const char **out, size_t *outlen)
{
	const unsigned char *p = j->p, *end = j->end;
	unsigned v, lo;
	int nul = 0;
	size_t n;
	char *o;

	if (j->scratch == NULL) {
		if ((j->scratch = agentid_malloc((size_t)(end - j->start))) == NULL) {
			jp_fail(j, JP_NOMEM);
			return -1;
		}
	}
	o = j->scratch + j->scratch_used;
	*out = o;
	for (;;) {
		if (p >= end)
			goto syntax;
		if (json_plain[*p]) {
			*o++ = (char)*p++;
			continue;
		}
		if (*p == '"')
			break;
		if (*p < 0x20)
			goto syntax;
		if (*p >= 0x80) {
			if ((n = jp_utf8_len(p, (size_t)(end - p))) == 0) {
				j->p = p;
				jp_fail(j, JP_UTF8);
				return -1;
			}
			memcpy(o, p, n);
			o += n;
			p += n;
			continue;
		}
		/* A backslash. */
		if (end - p < 2)
			goto syntax;
		switch (p[1]) {
		case '"':
		case '\\':
		case '/':
			*o++ = (char)p[1];
			p += 2;
			continue;
		case 'b':
			*o++ = '\b';
			p += 2;
			continue;
		case 'f':
			*o++ = '\f';
			p += 2;
			continue;
		case 'n':
			*o++ = '\n';
			p += 2;
			continue;
		case 'r':
			*o++ = '\r';
			p += 2;
			continue;
		case 't':
			*o++ = '\t';
			p += 2;
			continue;
		case 'u':
			break;
		default:
			goto syntax;
		}
		if (end - p < 6 || jp_hex4(p + 2, &v) != 0)
			goto syntax;
		p += 6;
		if (v >= 0xd800 && v <= 0xdbff) {
			/* A high surrogate must be followed by an escaped low one. */
			if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || jp_hex4(p + 2, &lo) != 0
			    || lo < 0xdc00 || lo > 0xdfff)
				goto syntax;
			p += 6;
			v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
		} else if (v >= 0xdc00 && v <= 0xdfff)
			goto syntax;
		if (v == 0)
			nul = 1;
		o += jp_utf8_put(v, o);
	}
	*outlen = (size_t)(o - *out);
	j->scratch_used += *outlen;
	j->p = p + 1;
	return nul;
syntax:
	j->p = p;
	jp_fail(j, JP_SYNTAX);
	return -1;
}

/*
 * The end of the run of plain string bytes (json_plain) from p.  Eight
 * bytes are tested at a time with the usual bit tricks: (v - 0x01..01) &
 * ~v & 0x80..80 is non-zero exactly when a byte of v is zero, which finds
 * '"' and '\\' after an XOR, and the same with 0x20 finds control
 * characters.  The word test may only say "somewhere here"; the byte loop
 * then finds the exact place.
 */
static inline const unsigned char *
jp_plain_run(const unsigned char *p, const unsigned char *end)
{
	const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
	uint64_t w, q, b;

	while (end - p >= 8) {
		memcpy(&w, p, sizeof(w));
		q = w ^ (ones * '"');
		b = w ^ (ones * '\\');
		if ((((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | w) & high)
			break;
		p += 8;
	}
	while (p < end && json_plain[*p])
		p++;
	return p;
}

/*
 * Reads the string whose text starts at j->p (past the opening quote).
 * *out points into the input when the string needs no decoding, which is
 * the common case, and into the scratch buffer otherwise.  Returns 0, 1
 * for a string with an escaped NUL, or -1 with the error recorded.
 */
static inline int
jp_string(struct jp *j, const char **out, size_t *outlen)
{
	const unsigned char *p = jp_plain_run(j->p, j->end), *end = j->end;

	if (p < end && *p == '"') {
		*out = (const char *)j->p;
		*outlen = (size_t)(p - j->p);
		j->p = p + 1;
		return 0;
	}
	return jp_string_decode(j, out, outlen);
}

/*
 * A real number: jansson converts it with strtod in the current locale,
 * so its decimal point is swapped in first, and overflow is an error.
 */
static json_t *
jp_real(struct jp *j, const unsigned char *s, size_t len)
{
	char stackbuf[JSON_NUMBER_STACK], *buf = stackbuf, *dot;
	const char *point;
	json_t *v;
	double d;

	if (len >= sizeof(stackbuf) && (buf = agentid_malloc(len + 1)) == NULL)
		return jp_fail(j, JP_NOMEM);
	memcpy(buf, s, len);
	buf[len] = '\0';
	point = localeconv()->decimal_point;
	if (point[0] != '.' && (dot = strchr(buf, '.')) != NULL)
		*dot = point[0];
	d = strtod(buf, NULL);
	if (buf != stackbuf)
		agentid_free(buf);
	if (isinf(d))
		return jp_fail(j, JP_RANGE);
	if ((v = json_real(d)) == NULL)
		return jp_fail(j, JP_NOMEM);
	return v;
}

/* A number (RFC 8259 section 6): integers must fit json_int_t. */
static json_t *
jp_number(struct jp *j)
{
	const unsigned char *s = j->p, *p = j->p, *end = j->end, *digits;
	uint64_t acc = 0, limit = (uint64_t)INT64_MAX;
	int neg = 0, is_real = 0;
	json_t *v;

	if (*p == '-') {
		neg = 1;
		limit = (uint64_t)INT64_MAX + 1;
		p++;
	}
	digits = p;
	if (p < end && *p == '0') {
		/* No leading zeros. */
		if (++p < end && *p >= '0' && *p <= '9')
			goto syntax;
	} else if (p < end && *p >= '1' && *p <= '9') {
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	} else
		goto syntax;
	if (p < end && *p == '.') {
		if (++p >= end || *p < '0' || *p > '9')
			goto syntax;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		is_real = 1;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			goto syntax;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		is_real = 1;
	}
	if (is_real) {
		j->p = p;
		return jp_real(j, s, (size_t)(p - s));
	}
	/* Up to 18 digits always fit; only longer integers need the overflow check. */
	if (p - digits <= 18) {
		for (; digits < p; digits++)
			acc = acc * 10 + (unsigned)(*digits - '0');
	} else {
		for (; digits < p; digits++) {
			unsigned d = (unsigned)(*digits - '0');

			if (acc > (limit - d) / 10) {
				j->p = s;
				return jp_fail(j, JP_RANGE);
			}
			acc = acc * 10 + d;
		}
	}
	j->p = p;
	if (!neg)
		v = json_integer((json_int_t)acc);
	else if (acc == (uint64_t)INT64_MAX + 1)
		v = json_integer(INT64_MIN);
	else
		v = json_integer(-(json_int_t)acc);
	if (v == NULL)
		return jp_fail(j, JP_NOMEM);
	return v;
syntax:
	j->p = p;
	return jp_fail(j, JP_SYNTAX);
}

/* true, false or null, spelled exactly. */
static json_t *
jp_literal(struct jp *j)
{
	size_t left = (size_t)(j->end - j->p);

	if (left >= 4 && memcmp(j->p, "true", 4) == 0) {
		j->p += 4;
		return json_true();
	}
	if (left >= 5 && memcmp(j->p, "false", 5) == 0) {
		j->p += 5;
		return json_false();
	}
	if (left >= 4 && memcmp(j->p, "null", 4) == 0) {
		j->p += 4;
		return json_null();
	}
	return jp_fail(j, JP_SYNTAX);
}

static json_t *jp_value(struct jp *j, int depth);

static json_t *
jp_object(struct jp *j, int depth)
{
	json_t *obj, *v;
	const char *key;
	size_t klen;
	int r;

	if ((obj = json_object()) == NULL)
		return jp_fail(j, JP_NOMEM);
	j->p++;
	jp_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return obj;
	}
	for (;;) {
		if (j->p >= j->end || *j->p != '"') {
			jp_fail(j, JP_SYNTAX);
			goto fail;
		}
		j->p++;
		if ((r = jp_string(j, &key, &klen)) != 0) {
			if (r > 0)
				jp_fail(j, JP_NUL);
			goto fail;
		}
		/* Checked as soon as the name is complete, as jansson does. */
		if (json_object_getn(obj, key, klen) != NULL) {
			jp_fail(j, JP_DUPLICATE);
			goto fail;
		}
		jp_ws(j);
		if (j->p >= j->end || *j->p != ':') {
			jp_fail(j, JP_SYNTAX);
			goto fail;
		}
		j->p++;
		if ((v = jp_value(j, depth + 1)) == NULL)
			goto fail;
		/* The call takes the reference to v whether it succeeds or not. */
		if (json_object_setn_new_nocheck(obj, key, klen, v) != 0) {
			jp_fail(j, JP_NOMEM);
			goto fail;
		}
		jp_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			jp_ws(j);
			continue;
		}
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			return obj;
		}
		jp_fail(j, JP_SYNTAX);
		goto fail;
	}
fail:
	json_decref(obj);
	return NULL;
}

static json_t *
jp_array(struct jp *j, int depth)
{
	json_t *arr, *v;

	if ((arr = json_array()) == NULL)
		return jp_fail(j, JP_NOMEM);
	j->p++;
	jp_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return arr;
	}
	for (;;) {
		if ((v = jp_value(j, depth + 1)) == NULL)
			goto fail;
		if (json_array_append_new(arr, v) != 0) {
			jp_fail(j, JP_NOMEM);
			goto fail;
		}
		jp_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return arr;
		}
		jp_fail(j, JP_SYNTAX);
		goto fail;
	}
fail:
	json_decref(arr);
	return NULL;
}

/* 1 when the byte at p, if any, starts no valid UTF-8 sequence. */
static int
jp_bad_utf8_at(const struct jp *j, const unsigned char *p)
{
	return p < j->end && *p >= 0x80 && jp_utf8_len(p, (size_t)(j->end - p)) == 0;
}

/*
 * A value beyond jansson's own depth limit.  jansson reads the value's
 * first token before it counts the depth, and its first error wins, so a
 * token that fails to read (a bad string, an integer or real out of
 * range, invalid UTF-8 in it or in the one byte read past a number or a
 * word) is reported as bad JSON instead.  Everything else, an escaped
 * NUL included, is too deep.
 */
static json_t *
jp_too_deep(struct jp *j)
{
	const char *s;
	size_t len;
	json_t *v;
	unsigned char c;

	if (j->p >= j->end)
		return jp_fail(j, JP_DEEP);
	c = *j->p;
	if (c == '"') {
		j->p++;
		if (jp_string(j, &s, &len) < 0)
			return NULL;
	} else if (c == '-' || (c >= '0' && c <= '9')) {
		if ((v = jp_number(j)) != NULL)
			json_decref(v);
		else if (j->error == JP_RANGE || j->error == JP_NOMEM)
			return NULL;
		j->error = JP_OK;
	} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
		while (j->p < j->end
		    && ((*j->p >= 'a' && *j->p <= 'z') || (*j->p >= 'A' && *j->p <= 'Z')))
			j->p++;
	}
	if (c != '"' && jp_bad_utf8_at(j, j->p))
		return jp_fail(j, JP_UTF8);
	return jp_fail(j, JP_DEEP);
}

/*
 * One value, depth counted as jansson counts it: the top-level value is 1
 * and every value inside an array or object one more than its container.
 * For an array or object that is also its nesting of arrays and objects.
 */
static json_t *
jp_value(struct jp *j, int depth)
{
	const char *s;
	size_t len;
	json_t *v;
	unsigned char c;
	int r;

	jp_ws(j);
	if (depth > JSON_VALUE_DEPTH_MAX)
		return jp_too_deep(j);
	if (j->p >= j->end)
		return jp_fail(j, JP_SYNTAX);
	c = *j->p;
	if (c == '{' || c == '[') {
		if (depth > j->max_depth)
			return jp_fail(j, JP_DEEP);
		return c == '{' ? jp_object(j, depth) : jp_array(j, depth);
	}
	if (c == '"') {
		j->p++;
		if ((r = jp_string(j, &s, &len)) != 0)
			return r > 0 ? jp_fail(j, JP_NUL) : NULL;
		if ((v = json_stringn_nocheck(s, len)) == NULL)
			return jp_fail(j, JP_NOMEM);
		return v;
	}
	if (c == '-' || (c >= '0' && c <= '9'))
		return jp_number(j);
	if (c == 't' || c == 'f' || c == 'n')
		return jp_literal(j);
	if (jp_bad_utf8_at(j, j->p))
		return jp_fail(j, JP_UTF8);
	return jp_fail(j, JP_SYNTAX);
}

/* The line and column (both from 1) of byte offset pos, for error details. */
static void
json_line_col(const char *s, size_t pos, int *line, int *col)
{
	size_t i, bol = 0;

	*line = 1;
	for (i = 0; i < pos; i++) {
		if (s[i] == '\n') {
			(*line)++;
			bol = i + 1;
		}
	}
	*col = (int)(pos - bol) + 1;
}

AGENTID_EXPORT int
agentid_json_parse(
    const char *s, size_t len, int max_depth, json_t **out, struct agentid_error *err)
{
	struct jp j;
	json_t *v;
	int line, col;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || (s == NULL && len != 0))
		return AGENTID_EINVAL;
	if (max_depth <= 0)
		max_depth = AGENTID_DEFAULT_MAX_JSON_DEPTH;
	memset(&j, 0, sizeof(j));
	j.start = j.p = (const unsigned char *)s;
	j.end = j.start + len;
	j.max_depth = max_depth;
	if ((v = jp_value(&j, 1)) != NULL) {
		jp_ws(&j);
		if (j.p != j.end) {
			jp_fail(&j, JP_TRAILING);
			json_decref(v);
			v = NULL;
		}
	}
	agentid_free(j.scratch);
	if (v != NULL) {
		*out = v;
		return 0;
	}
	/* The rejections that take precedence over the first error in reading order. */
	if (len != 0 && memchr(s, '\0', len) != NULL)
		return agentid_error_set(err, AGENTID_R_BAD_JSON, "NUL byte in JSON text");
	if (json_depth_exceeds(s, len, max_depth))
		return agentid_error_set(
		    err, AGENTID_R_TOO_DEEP, "JSON nesting deeper than %d", max_depth);
	/* Report only the position: the text near the error may be token material. */
	switch (j.error) {
	case JP_NOMEM:
		return AGENTID_ENOMEM;
	case JP_DUPLICATE:
		return agentid_error_set(err, AGENTID_R_DUPLICATE_MEMBER,
		    "duplicate member name at offset %zu", j.error_pos);
	case JP_TRAILING:
		return agentid_error_set(
		    err, AGENTID_R_BAD_JSON, "trailing data at offset %zu", j.error_pos);
	case JP_NUL:
		return agentid_error_set(err, AGENTID_R_BAD_JSON, "NUL character in string");
	case JP_UTF8:
		return agentid_error_set(
		    err, AGENTID_R_BAD_JSON, "invalid UTF-8 at offset %zu", j.error_pos);
	case JP_DEEP:
		return agentid_error_set(err, AGENTID_R_TOO_DEEP, "JSON nesting too deep");
	case JP_RANGE:
		return agentid_error_set(
		    err, AGENTID_R_BAD_JSON, "number out of range at offset %zu", j.error_pos);
	default:
		json_line_col(s, j.error_pos, &line, &col);
		return agentid_error_set(
		    err, AGENTID_R_BAD_JSON, "invalid JSON at line %d column %d", line, col);
	}
}
