/*
 * SPIFFE ID patterns for policy: an exact ID, every ID strictly below a
 * path, every ID of a trust domain, or any ID ("*"); see spiffe.h for the
 * syntax.
 *
 * Matching is byte for byte.  A prefix pattern keeps its prefix without the
 * '*' but with the '/', so the pattern for everything below
 * "spiffe://td/a" matches "spiffe://td/a/b" and never "spiffe://td/ab".
 */
#include "config.h"

#include <string.h>

#include <agentid/spiffe.h>

#include "internal.h"

enum pattern_kind {
	PATTERN_EXACT, /* s is the whole ID */
	PATTERN_BELOW, /* s is "spiffe://td/a/": one or more segments must follow */
	PATTERN_DOMAIN, /* s is "spiffe://td/": also matches "spiffe://td" itself */
	PATTERN_ANY
};

struct agentid_spiffe_pattern {
	enum pattern_kind kind;
	char *s;
	size_t len;
};

struct agentid_spiffe_patterns {
	struct agentid_spiffe_pattern **v;
	size_t n;
};

AGENTID_EXPORT int
agentid_spiffe_pattern_parse(
    const char *s, size_t len, struct agentid_spiffe_pattern **out, struct agentid_error *err)
{
	struct agentid_spiffe_pattern *p = NULL;
	struct agentid_spiffe_id id;
	enum pattern_kind kind;
	size_t id_len;
	int r;

	if (out != NULL)
		*out = NULL;
	if (s == NULL || out == NULL)
		return AGENTID_EINVAL;
	if (len == 1 && s[0] == '*') {
		kind = PATTERN_ANY;
		id_len = 0;
	} else if (len >= 2 && s[len - 2] == '/' && s[len - 1] == '*') {
		/* The part before the final slash and star must itself be a valid ID. */
		id_len = len - 2;
		if ((r = agentid_spiffe_id_parse(s, id_len, &id, err)) != 0)
			return r;
		kind = id.path_len == 0 ? PATTERN_DOMAIN : PATTERN_BELOW;
	} else {
		if (memchr(s, '*', len) != NULL)
			return agentid_error_set(err, AGENTID_R_BAD_SPIFFE_ID,
			    "'*' is only allowed as the whole pattern or as the last segment");
		if ((r = agentid_spiffe_id_parse(s, len, NULL, err)) != 0)
			return r;
		kind = PATTERN_EXACT;
		id_len = len;
	}
	if ((p = agentid_calloc(1, sizeof(*p))) == NULL)
		return AGENTID_ENOMEM;
	p->kind = kind;
	/* Prefix patterns keep the '/' so that a match must start a new segment. */
	p->len = kind == PATTERN_BELOW || kind == PATTERN_DOMAIN ? id_len + 1 : id_len;
	if ((p->s = agentid_strndup(s, p->len)) == NULL) {
		agentid_free(p);
		return AGENTID_ENOMEM;
	}
	*out = p;
	return 0;
}

AGENTID_EXPORT int
agentid_spiffe_pattern_match(const struct agentid_spiffe_pattern *p, const char *id, size_t len)
{
	if (p == NULL || id == NULL)
		return 0;
	/* Fail closed: the caller should have validated, but a pattern never matches junk. */
	if (agentid_spiffe_id_parse(id, len, NULL, NULL) != 0)
		return 0;
	switch (p->kind) {
	case PATTERN_ANY:
		return 1;
	case PATTERN_EXACT:
		return len == p->len && memcmp(id, p->s, len) == 0;
	case PATTERN_DOMAIN:
		if (len == p->len - 1 && memcmp(id, p->s, len) == 0)
			return 1;
		return len > p->len && memcmp(id, p->s, p->len) == 0;
	case PATTERN_BELOW:
		return len > p->len && memcmp(id, p->s, p->len) == 0;
	}
	return 0;
}

AGENTID_EXPORT void
agentid_spiffe_pattern_free(struct agentid_spiffe_pattern *p)
{
	if (p == NULL)
		return;
	agentid_free(p->s);
	agentid_free(p);
}

AGENTID_EXPORT int
agentid_spiffe_patterns_parse(const char *const *pats, size_t n,
    struct agentid_spiffe_patterns **out, struct agentid_error *err)
{
	struct agentid_spiffe_patterns *ps = NULL;
	struct agentid_error perr;
	size_t i;
	int r;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || (pats == NULL && n != 0))
		return AGENTID_EINVAL;
	if ((ps = agentid_calloc(1, sizeof(*ps))) == NULL)
		return AGENTID_ENOMEM;
	if (n != 0 && (ps->v = agentid_calloc(n, sizeof(*ps->v))) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (pats[i] == NULL) {
			r = AGENTID_EINVAL;
			goto out;
		}
		agentid_error_clear(&perr);
		r = agentid_spiffe_pattern_parse(pats[i], strlen(pats[i]), &ps->v[i], &perr);
		if (r == AGENTID_EREJECTED) {
			agentid_error_set(err, perr.reason, "pattern %zu: %s", i + 1, perr.detail);
			goto out;
		}
		if (r != 0)
			goto out;
		ps->n++;
	}
	*out = ps;
	ps = NULL;
	r = 0;
out:
	agentid_spiffe_patterns_free(ps);
	return r;
}

AGENTID_EXPORT int
agentid_spiffe_patterns_match(const struct agentid_spiffe_patterns *ps, const char *id, size_t len)
{
	size_t i;

	if (ps == NULL)
		return 0;
	for (i = 0; i < ps->n; i++)
		if (agentid_spiffe_pattern_match(ps->v[i], id, len))
			return 1;
	return 0;
}

AGENTID_EXPORT void
agentid_spiffe_patterns_free(struct agentid_spiffe_patterns *ps)
{
	size_t i;

	if (ps == NULL)
		return;
	for (i = 0; i < ps->n; i++)
		agentid_spiffe_pattern_free(ps->v[i]);
	agentid_free(ps->v);
	agentid_free(ps);
}
