/*
 * Scope sets (RFC 6749 section 3.3): parsing, membership and set
 * operations.
 *
 * A set holds at most SCOPES_MAX distinct tokens whose space-joined form is
 * at most SCOPES_MAX_BYTES long.  Sets are small, so membership is a linear
 * scan; that is faster than hashing for the sizes real tokens carry.
 */
#include "config.h"

#include <string.h>
#include <sys/types.h>

#include <agentid/verify.h>

#include "internal.h"

#define SCOPES_MAX 256
#define SCOPES_MAX_BYTES 4096

struct scope_item {
	char *s;
	size_t len;
};

struct agentid_scopes {
	struct scope_item *items;
	size_t n;
	size_t cap;
	size_t bytes; /* length of the space-joined string */
};

/* scope-token = 1*( %x21 / %x23-5B / %x5D-7E ): printable ASCII without space, '"' and '\'. */
static int
scope_char_ok(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

static int
scope_token_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (!scope_char_ok((unsigned char)s[i]))
			return 0;
	return 1;
}

static ssize_t
scopes_find(const struct agentid_scopes *s, const char *scope, size_t len)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->items[i].len == len && memcmp(s->items[i].s, scope, len) == 0)
			return (ssize_t)i;
	return -1;
}

/* Appends a token known to be well formed; a duplicate is silently dropped. */
static int
scopes_append(struct agentid_scopes *s, const char *scope, size_t len)
{
	struct scope_item *items;
	size_t add, cap;
	char *copy;

	if (scopes_find(s, scope, len) >= 0)
		return 0;
	add = len + (s->n != 0 ? 1 : 0);
	if (s->n >= SCOPES_MAX || s->bytes + add > SCOPES_MAX_BYTES)
		return AGENTID_ERANGE;
	if (s->n == s->cap) {
		cap = s->cap != 0 ? s->cap * 2 : 8;
		if (cap > SCOPES_MAX)
			cap = SCOPES_MAX;
		if ((items = agentid_realloc(s->items, cap * sizeof(*items))) == NULL)
			return AGENTID_ENOMEM;
		s->items = items;
		s->cap = cap;
	}
	if ((copy = agentid_strndup(scope, len)) == NULL)
		return AGENTID_ENOMEM;
	s->items[s->n].s = copy;
	s->items[s->n].len = len;
	s->n++;
	s->bytes += add;
	return 0;
}

AGENTID_EXPORT int
agentid_scopes_new(struct agentid_scopes **out)
{
	if (out == NULL)
		return AGENTID_EINVAL;
	if ((*out = agentid_calloc(1, sizeof(**out))) == NULL)
		return AGENTID_ENOMEM;
	return 0;
}

AGENTID_EXPORT void
agentid_scopes_free(struct agentid_scopes *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++)
		agentid_free(s->items[i].s);
	agentid_free(s->items);
	agentid_free(s);
}

AGENTID_EXPORT int
agentid_scopes_parse(
    const char *str, size_t len, struct agentid_scopes **out, struct agentid_error *err)
{
	struct agentid_scopes *s = NULL;
	size_t start, i;
	int r;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	if (str == NULL && len != 0)
		return AGENTID_EINVAL;
	if (len > SCOPES_MAX_BYTES)
		return agentid_error_set(err, AGENTID_R_TOO_LARGE,
		    "scope string of %zu bytes exceeds %d", len, SCOPES_MAX_BYTES);
	if ((r = agentid_scopes_new(&s)) != 0)
		goto out;
	/*
	 * Splitting on every single space makes leading, trailing and double
	 * spaces show up as empty tokens, which the grammar forbids.
	 */
	for (start = 0, i = 0; len != 0 && i <= len; i++) {
		if (i < len && str[i] != ' ')
			continue;
		if (i == start) {
			r = agentid_error_set(
			    err, AGENTID_R_BAD_CLAIM, "scope has an empty token at offset %zu", i);
			goto out;
		}
		if (!scope_token_ok(str + start, i - start)) {
			r = agentid_error_set(err, AGENTID_R_BAD_CLAIM,
			    "scope token at offset %zu has a forbidden character", start);
			goto out;
		}
		if ((r = scopes_append(s, str + start, i - start)) != 0) {
			if (r == AGENTID_ERANGE)
				r = agentid_error_set(
				    err, AGENTID_R_TOO_LARGE, "more than %d scopes", SCOPES_MAX);
			goto out;
		}
		start = i + 1;
	}
	*out = s;
	s = NULL;
	r = 0;
out:
	agentid_scopes_free(s);
	return r;
}

AGENTID_EXPORT int
agentid_scopes_add(struct agentid_scopes *s, const char *scope, size_t len)
{
	if (s == NULL || scope == NULL || !scope_token_ok(scope, len))
		return AGENTID_EINVAL;
	return scopes_append(s, scope, len);
}

AGENTID_EXPORT size_t
agentid_scopes_count(const struct agentid_scopes *s)
{
	return s != NULL ? s->n : 0;
}

AGENTID_EXPORT const char *
agentid_scopes_get(const struct agentid_scopes *s, size_t i)
{
	if (s == NULL || i >= s->n)
		return NULL;
	return s->items[i].s;
}

AGENTID_EXPORT int
agentid_scopes_has(const struct agentid_scopes *s, const char *scope, size_t len)
{
	if (s == NULL || scope == NULL)
		return 0;
	return scopes_find(s, scope, len) >= 0;
}

AGENTID_EXPORT int
agentid_scopes_has_all(const struct agentid_scopes *s, const char *const *req, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (req[i] == NULL || !agentid_scopes_has(s, req[i], strlen(req[i])))
			return 0;
	return 1;
}

AGENTID_EXPORT int
agentid_scopes_has_any(const struct agentid_scopes *s, const char *const *req, size_t n)
{
	size_t i;

	if (n == 0)
		return 1;
	for (i = 0; i < n; i++)
		if (req[i] != NULL && agentid_scopes_has(s, req[i], strlen(req[i])))
			return 1;
	return 0;
}

AGENTID_EXPORT int
agentid_scopes_subset(const struct agentid_scopes *a, const struct agentid_scopes *b)
{
	size_t i;

	if (a == NULL)
		return 1;
	for (i = 0; i < a->n; i++)
		if (!agentid_scopes_has(b, a->items[i].s, a->items[i].len))
			return 0;
	return 1;
}

AGENTID_EXPORT int
agentid_scopes_intersect(
    const struct agentid_scopes *a, const struct agentid_scopes *b, struct agentid_scopes **out)
{
	struct agentid_scopes *s = NULL;
	size_t i;
	int r;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	if ((r = agentid_scopes_new(&s)) != 0)
		return r;
	for (i = 0; a != NULL && i < a->n; i++) {
		if (!agentid_scopes_has(b, a->items[i].s, a->items[i].len))
			continue;
		if ((r = scopes_append(s, a->items[i].s, a->items[i].len)) != 0) {
			agentid_scopes_free(s);
			return r;
		}
	}
	*out = s;
	return 0;
}

AGENTID_EXPORT int
agentid_scopes_to_string(const struct agentid_scopes *s, char **out)
{
	struct agentid_buf b;
	size_t i;
	int r;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	agentid_buf_init(&b, 0);
	for (i = 0; s != NULL && i < s->n; i++) {
		if ((i != 0 && (r = agentid_buf_append(&b, " ", 1)) != 0)
		    || (r = agentid_buf_append(&b, s->items[i].s, s->items[i].len)) != 0) {
			agentid_buf_free(&b);
			return r;
		}
	}
	/* An empty append leaves a terminated buffer even when nothing was added. */
	if ((r = agentid_buf_append(&b, "", 0)) != 0) {
		agentid_buf_free(&b);
		return r;
	}
	if ((*out = agentid_buf_steal(&b, NULL)) == NULL)
		return AGENTID_ENOMEM;
	return 0;
}
