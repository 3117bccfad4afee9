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

struct xc_form {
	struct xc_param p[XC_FORM_MAX_PARAMS];
	size_t n;
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

/* Decodes s[0..len) into a new NUL-terminated string; NULL on bad encoding. */
static char *
decode(const char *s, size_t len, int *bad)
{
	char *out;
	size_t i, o = 0;
	int hi, lo;
	unsigned char c;

	*bad = 0;
	if ((out = malloc(len + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '+')
			c = ' ';
		else if (c == '%') {
			if (i + 2 >= len)
				goto bad;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				goto bad;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (c < 0x21 || c == 0x7f)
			goto bad; /* raw spaces and controls must have been encoded */
		if (c < 0x20 || c == 0x7f)
			goto bad; /* no control characters in any parameter */
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
bad:
	*bad = 1;
	free(out);
	return NULL;
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
	char *name = NULL, *value = NULL;
	size_t i;
	int bad;

	*out = NULL;
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
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
		name = decode(p, (size_t)(eq - p), &bad);
		if (name == NULL || name[0] == '\0') {
			snprintf(errbuf, errlen, "%s", bad || name ? "bad encoding of a parameter name"
								   : "out of memory");
			goto fail;
		}
		value = decode(eq + 1, (size_t)(amp - eq - 1), &bad);
		if (value == NULL) {
			snprintf(errbuf, errlen, "%s",
			    bad ? "bad percent-encoding in parameter" : "out of memory");
			goto fail;
		}
		for (i = 0; i < f->n; i++) {
			if (strcmp(f->p[i].name, name) == 0 && !repeatable(name)) {
				snprintf(errbuf, errlen, "parameter '%.40s' appears more than once",
				    name);
				goto fail;
			}
		}
		if (value[0] == '\0') {
			/* RFC 6749 section 3.2: an empty value means the parameter is omitted. */
			free(name);
			free(value);
		} else {
			if (f->n == XC_FORM_MAX_PARAMS) {
				snprintf(errbuf, errlen, "too many form parameters");
				goto fail;
			}
			f->p[f->n].name = name;
			f->p[f->n].value = value;
			f->n++;
		}
		name = value = NULL;
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
	free(name);
	free(value);
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
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->n; i++) {
		free(f->p[i].name);
		if (f->p[i].value != NULL) {
			/* Values hold tokens and assertions: wipe them. */
			OPENSSL_cleanse(f->p[i].value, strlen(f->p[i].value));
			free(f->p[i].value);
		}
	}
	free(f);
}
