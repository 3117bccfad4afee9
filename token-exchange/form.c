/*
 * Strict application/x-www-form-urlencoded parsing (the WHATWG/HTML
 * encoding RFC 6749 appendix B refers to).  Strict means: every pair has a
 * non-empty name and an '='; '%' is followed by exactly two hex digits;
 * decoded values contain no NUL or other control characters; a parameter
 * appears at most once, except audience and resource, which RFC 8693 makes
 * repeatable.  RFC 6749 section 3.2 says parameters sent without a value
 * are treated as omitted; we follow that for empty values.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "exchange.h"

struct xc_param {
	char *name;
	char *value;
};

/*
 * Names and values are decoded into one buffer (buf), each NUL-terminated:
 * a decoded pair is never longer than its encoding with its '=' and '&',
 * so len + 1 bytes hold them all, and one allocation (and one wipe) serves
 * the whole form.
 */
struct xc_form {
	struct xc_param p[XC_FORM_MAX_PARAMS];
	size_t n;
	char *buf;
	size_t buflen;
};

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A byte that decodes to itself: not a control, space, DEL, '%' or '+'. */
#define PLAIN(c) ((c) > 0x20 && (c) != 0x7f && (c) != '%' && (c) != '+')

/* Decodes s[0..len) to out, NUL-terminated; -1 on bad encoding. */
static int
decode(const char *s, size_t len, char *out)
{
	size_t i, k, o = 0;
	int hi, lo;
	unsigned char c;

	for (i = 0; i < len; i++) {
		/* Most bytes stand for themselves: copy each run of them at once. */
		for (k = i; k < len && PLAIN((unsigned char)s[k]); k++)
			;
		memcpy(out + o, s + i, k - i);
		o += k - i;
		if ((i = k) == len)
			break;
		c = (unsigned char)s[i];
		if (c == '+')
			c = ' ';
		else if (c == '%') {
			if (i + 2 >= len)
				return -1;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
			/* No control characters in any parameter. */
			if (c < 0x20 || c == 0x7f)
				return -1;
		} else
			return -1; /* raw spaces and controls must have been encoded */
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

static int
repeatable(const char *name)
{
	return strcmp(name, "audience") == 0 || strcmp(name, "resource") == 0;
}

int
xc_form_parse(const char *body, size_t len, struct xc_form **out, char *errbuf, size_t errlen)
{
	struct xc_form *f;
	const char *p = body, *end = body + len, *amp, *eq;
	char *name, *value, *w;
	size_t i;

	*out = NULL;
	if ((f = malloc(sizeof(*f))) == NULL || (f->buf = malloc(len + 1)) == NULL) {
		free(f);
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	f->n = 0;
	f->buflen = len + 1;
	w = f->buf;
	while (len > 0 && p <= end) {
		if ((amp = memchr(p, '&', (size_t)(end - p))) == NULL)
			amp = end;
		if (amp == p) {
			snprintf(errbuf, errlen, "empty parameter in form body");
			goto fail;
		}
		if ((eq = memchr(p, '=', (size_t)(amp - p))) == NULL || eq == p) {
			snprintf(errbuf, errlen, "form parameter without name or '='");
			goto fail;
		}
		name = w;
		if (decode(p, (size_t)(eq - p), name) != 0 || name[0] == '\0') {
			snprintf(errbuf, errlen, "bad encoding of a parameter name");
			goto fail;
		}
		value = name + strlen(name) + 1;
		if (decode(eq + 1, (size_t)(amp - eq - 1), value) != 0) {
			snprintf(errbuf, errlen, "bad percent-encoding in parameter");
			goto fail;
		}
		for (i = 0; i < f->n; i++) {
			if (strcmp(f->p[i].name, name) == 0 && !repeatable(name)) {
				snprintf(errbuf, errlen, "parameter '%.40s' appears more than once",
				    name);
				goto fail;
			}
		}
		/* RFC 6749 section 3.2: an empty value means the parameter is omitted. */
		if (value[0] != '\0') {
			if (f->n == XC_FORM_MAX_PARAMS) {
				snprintf(errbuf, errlen, "too many form parameters");
				goto fail;
			}
			f->p[f->n].name = name;
			f->p[f->n].value = value;
			f->n++;
			w = value + strlen(value) + 1;
		}
		if (amp == end)
			break;
		p = amp + 1;
		if (p == end) {
			snprintf(errbuf, errlen, "form body ends with '&'");
			goto fail;
		}
	}
	*out = f;
	return 0;
fail:
	xc_form_free(f);
	return -1;
}

const char *
xc_form_get(const struct xc_form *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->p[i].name, name) == 0)
			return f->p[i].value;
	return NULL;
}

size_t
xc_form_count(const struct xc_form *f, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->p[i].name, name) == 0)
			n++;
	return n;
}

const char *
xc_form_get_nth(const struct xc_form *f, const char *name, size_t nth)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->p[i].name, name) == 0 && nth-- == 0)
			return f->p[i].value;
	return NULL;
}

void
xc_form_free(struct xc_form *f)
{
	if (f == NULL)
		return;
	/* Values hold tokens and assertions: wipe them. */
	OPENSSL_cleanse(f->buf, f->buflen);
	free(f->buf);
	free(f);
}
