/*
 * Canonical bytes of audit records, built directly (no JSON tree): the
 * bytes jansson produces with JSON_COMPACT | JSON_SORT_KEYS, which is what
 * the verifier recomputes.  doc/audit-format.md states the rules;
 * tests/unit/test_audit.c checks the agreement with jansson.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "audit_int.h"

static struct audit_field *
next_field(struct audit_fields *fs, const char *key)
{
	struct audit_field *f;

	if (fs->n >= AUDIT_MAX_FIELDS) {
		fs->overflow = 1;
		return NULL;
	}
	f = &fs->f[fs->n++];
	memset(f, 0, sizeof(*f));
	f->key = key;
	return f;
}

void
audit_fields_str(struct audit_fields *fs, const char *key, const char *s)
{
	struct audit_field *f;

	if (s != NULL && (f = next_field(fs, key)) != NULL) {
		f->kind = AF_STR;
		f->s = s;
	}
}

void
audit_fields_plain(struct audit_fields *fs, const char *key, const char *s)
{
	struct audit_field *f;

	if (s != NULL && (f = next_field(fs, key)) != NULL) {
		f->kind = AF_STR;
		f->s = s;
		f->plain = 1;
	}
}

void
audit_fields_int(struct audit_fields *fs, const char *key, int64_t i)
{
	struct audit_field *f;

	if ((f = next_field(fs, key)) != NULL) {
		f->kind = AF_INT;
		f->i = i;
	}
}

void
audit_fields_seq(struct audit_fields *fs)
{
	struct audit_field *f;

	if ((f = next_field(fs, "seq")) != NULL)
		f->kind = AF_SEQ;
}

void
audit_fields_strs(struct audit_fields *fs, const char *key, const char *const *strs, size_t n)
{
	struct audit_field *f;

	if (strs != NULL && n != 0 && (f = next_field(fs, key)) != NULL) {
		f->kind = AF_STRS;
		f->strs = strs;
		f->n = n;
	}
}

void
audit_fields_chain(struct audit_fields *fs, const char *key, const struct agentid_chain *c)
{
	struct audit_field *f;

	if (c != NULL && agentid_chain_len(c) != 0 && (f = next_field(fs, key)) != NULL) {
		f->kind = AF_CHAIN;
		f->chain = c;
	}
}

void
audit_fields_json(struct audit_fields *fs, const char *key, const json_t *j)
{
	struct audit_field *f;

	if (j != NULL && (f = next_field(fs, key)) != NULL) {
		f->kind = AF_JSON;
		f->json = j;
	}
}

int
audit_fields_sort(struct audit_fields *fs)
{
	struct audit_field tmp;
	size_t i, j;

	/* Insertion sort: a handful of members, often nearly in order already. */
	for (i = 1; i < fs->n; i++) {
		tmp = fs->f[i];
		for (j = i; j > 0 && strcmp(fs->f[j - 1].key, tmp.key) > 0; j--)
			fs->f[j] = fs->f[j - 1];
		fs->f[j] = tmp;
	}
	for (i = 1; i < fs->n; i++)
		if (strcmp(fs->f[i - 1].key, fs->f[i].key) == 0)
			return AGENTID_EINVAL;
	return 0;
}

void
audit_lbuf_free(struct audit_lbuf *b)
{
	agentid_free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int
audit_lbuf_grow(struct audit_lbuf *b, size_t n)
{
	size_t cap;
	char *p;

	if (n > AUDIT_MAX_LINE || b->len > AUDIT_MAX_LINE - n)
		return AGENTID_ERANGE;
	cap = b->cap != 0 ? b->cap : 1024;
	while (cap < b->len + n)
		cap *= 2;
	if ((p = agentid_realloc(b->p, cap)) == NULL)
		return AGENTID_ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, surrogates or > U+10FFFF),
 * or 0 when the bytes there are not one. */
static size_t
utf8_seq_len(const unsigned char *p, size_t avail)
{
	unsigned c = p[0], cp;
	size_t n, i;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (avail < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff
	    || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* 1 for the bytes a JSON string cannot hold as they are, or that need UTF-8 checking. */
static inline int
special(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/*
 * 1 when one of the 8 bytes at p is special (word at a time: a byte below
 * 0x20, equal to '"' or '\\', or with its high bit set).
 */
static inline int
special8(const unsigned char *p)
{
	uint64_t x, q, b;

	memcpy(&x, p, 8);
	q = x ^ (ONES * '"');
	b = x ^ (ONES * '\\');
	/* (v - 0x01..) & ~v & 0x80.. is non-zero iff some byte of v is zero (or, for 0x20, below).
	 */
	return ((((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | x) & HIGHS)
	    != 0;
}

/*
 * s as a JSON string exactly as jansson dumps it without JSON_ENSURE_ASCII:
 * '"' and '\\' escaped, \b \f \n \r \t, other controls as \u00XX (upper
 * case hex), everything else raw.  Invalid UTF-8 bytes become U+FFFD so
 * that the record stays valid JSON.
 */
static int
emit_string(struct audit_lbuf *b, const char *str)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)str, *run;
	size_t n, len = strlen(str);
	char esc[6];
	int r;

	if ((r = audit_put(b, "\"", 1)) != 0)
		return r;
	while (len > 0) {
		/* Copy the longest run that needs no attention in one go. */
		run = p;
		while (len >= 8 && !special8(p)) {
			p += 8;
			len -= 8;
		}
		for (; len > 0 && !special(*p); p++, len--)
			;
		if (p > run && (r = audit_put(b, run, (size_t)(p - run))) != 0)
			return r;
		if (len == 0)
			break;
		n = 1;
		if (*p >= 0x80) {
			if ((n = utf8_seq_len(p, len)) == 0) {
				r = audit_put(b, "\xef\xbf\xbd", 3);
				n = 1;
			} else {
				r = audit_put(b, p, n);
			}
		} else {
			esc[0] = '\\';
			switch (*p) {
			case '"':
				esc[1] = '"';
				break;
			case '\\':
				esc[1] = '\\';
				break;
			case '\b':
				esc[1] = 'b';
				break;
			case '\f':
				esc[1] = 'f';
				break;
			case '\n':
				esc[1] = 'n';
				break;
			case '\r':
				esc[1] = 'r';
				break;
			case '\t':
				esc[1] = 't';
				break;
			default:
				esc[1] = 'u';
				break;
			}
			if (esc[1] != 'u') {
				r = audit_put(b, esc, 2);
			} else {
				esc[2] = '0';
				esc[3] = '0';
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 0x0f];
				r = audit_put(b, esc, 6);
			}
		}
		if (r != 0)
			return r;
		p += n;
		len -= n;
	}
	return audit_put(b, "\"", 1);
}

static int
emit_int(struct audit_lbuf *b, int64_t v)
{
	char tmp[24], *e = tmp + sizeof(tmp), *p = e;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	return audit_put(b, p, (size_t)(e - p));
}

static int
emit_value(struct audit_lbuf *b, const struct audit_field *f, uint64_t seq)
{
	size_t i, n;
	char *s;
	int r = 0;

	switch (f->kind) {
	case AF_STR:
		return emit_string(b, f->s);
	case AF_INT:
		return emit_int(b, f->i);
	case AF_SEQ:
		return emit_int(b, (int64_t)seq);
	case AF_STRS:
	case AF_CHAIN:
		n = f->kind == AF_STRS ? f->n : agentid_chain_len(f->chain);
		if ((r = audit_put(b, "[", 1)) != 0)
			return r;
		for (i = 0; i < n && r == 0; i++) {
			const char *v
			    = f->kind == AF_STRS ? f->strs[i] : agentid_chain_get(f->chain, i);
			if (i > 0 && (r = audit_put(b, ",", 1)) != 0)
				break;
			r = emit_string(b, v != NULL ? v : "");
		}
		return r != 0 ? r : audit_put(b, "]", 1);
	case AF_JSON:
		if ((s = json_dumps(f->json, AUDIT_CANON_FLAGS)) == NULL)
			return AGENTID_EINVAL;
		r = audit_put(b, s, strlen(s));
		free(s);
		return r;
	}
	return AGENTID_EINVAL;
}

int
audit_emit_canonical(struct audit_lbuf *b, const struct audit_fields *fs, uint64_t seq)
{
	size_t i;
	int r;

	if ((r = audit_put(b, "{", 1)) != 0)
		return r;
	for (i = 0; i < fs->n; i++) {
		if (i > 0 && (r = audit_put(b, ",", 1)) != 0)
			return r;
		if (fs->f[i].plain) {
			/* The writer's own members: nothing to escape, nothing to check. */
			if ((r = audit_put(b, "\"", 1)) != 0
			    || (r = audit_put(b, fs->f[i].key, strlen(fs->f[i].key))) != 0
			    || (r = audit_put(b, "\":\"", 3)) != 0
			    || (r = audit_put(b, fs->f[i].s, strlen(fs->f[i].s))) != 0
			    || (r = audit_put(b, "\"", 1)) != 0)
				return r;
			continue;
		}
		if ((r = emit_string(b, fs->f[i].key)) != 0 || (r = audit_put(b, ":", 1)) != 0
		    || (r = emit_value(b, &fs->f[i], seq)) != 0)
			return r;
	}
	return audit_put(b, "}", 1);
}
