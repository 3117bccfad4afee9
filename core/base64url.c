/*
 * Strict base64url (RFC 4648 section 5) without padding, as JOSE uses it
 * (RFC 7515 section 2).  Decoding accepts exactly one spelling of each
 * byte string: padding, the standard alphabet's '+' and '/', whitespace,
 * impossible lengths and non-zero trailing bits are all rejected, so that
 * two different strings never decode to the same bytes.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>

#include <agentid/jose.h>

#include "jose_int.h"

static const char b64url_alphabet[]
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/*
 * Decoding table: the sextet value for alphabet characters, 0xff for
 * everything else.  Every invalid entry has the top bit set, so a whole
 * run of characters can be checked with one OR after the loop instead of
 * one branch per character.
 */
/* clang-format off */
static const unsigned char b64url_rev[256] = {
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  62, 255, 255,
	 52,  53,  54,  55,  56,  57,  58,  59,  60,  61, 255, 255, 255, 255, 255, 255,
	255,   0,   1,   2,   3,   4,   5,   6,   7,   8,   9,  10,  11,  12,  13,  14,
	 15,  16,  17,  18,  19,  20,  21,  22,  23,  24,  25, 255, 255, 255, 255,  63,
	255,  26,  27,  28,  29,  30,  31,  32,  33,  34,  35,  36,  37,  38,  39,  40,
	 41,  42,  43,  44,  45,  46,  47,  48,  49,  50,  51, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
};
/* clang-format on */

AGENTID_EXPORT size_t
agentid_b64url_encoded_len(size_t n)
{
	size_t rem = n % 3;

	return (n / 3) * 4 + (rem == 0 ? 0 : rem + 1);
}

AGENTID_EXPORT size_t
agentid_b64url_decoded_max(size_t n)
{
	return (n / 4) * 3 + ((n % 4) * 3) / 4;
}

AGENTID_EXPORT int
agentid_b64url_encode(const unsigned char *in, size_t n, char *out, size_t outsz, size_t *outlen)
{
	size_t need, i, o = 0;
	uint32_t v;

	if (outlen != NULL)
		*outlen = 0;
	if (out == NULL || (in == NULL && n != 0))
		return AGENTID_EINVAL;
	if (n > (SIZE_MAX / 4) * 3 - 3)
		return AGENTID_ERANGE;
	need = agentid_b64url_encoded_len(n);
	if (outsz < need + 1) {
		if (outsz > 0)
			out[0] = '\0';
		return AGENTID_ERANGE;
	}
	for (i = 0; i + 3 <= n; i += 3) {
		v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
		out[o++] = b64url_alphabet[(v >> 18) & 0x3f];
		out[o++] = b64url_alphabet[(v >> 12) & 0x3f];
		out[o++] = b64url_alphabet[(v >> 6) & 0x3f];
		out[o++] = b64url_alphabet[v & 0x3f];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		out[o++] = b64url_alphabet[(v >> 18) & 0x3f];
		out[o++] = b64url_alphabet[(v >> 12) & 0x3f];
	} else if (n - i == 2) {
		v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
		out[o++] = b64url_alphabet[(v >> 18) & 0x3f];
		out[o++] = b64url_alphabet[(v >> 12) & 0x3f];
		out[o++] = b64url_alphabet[(v >> 6) & 0x3f];
	}
	out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return 0;
}

AGENTID_EXPORT int
agentid_b64url_encode_alloc(const unsigned char *in, size_t n, char **out)
{
	size_t need;
	char *p;
	int r;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	if (n > (SIZE_MAX / 4) * 3 - 3)
		return AGENTID_ERANGE;
	need = agentid_b64url_encoded_len(n) + 1;
	if ((p = agentid_malloc(need)) == NULL)
		return AGENTID_ENOMEM;
	if ((r = agentid_b64url_encode(in, n, p, need, NULL)) != 0) {
		agentid_free(p);
		return r;
	}
	*out = p;
	return 0;
}

AGENTID_EXPORT int
agentid_b64url_decode(const char *in, size_t n, unsigned char *out, size_t outsz, size_t *outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	unsigned c0, c1, c2, c3, bad = 0;
	size_t i, o = 0, rem;

	if (outlen != NULL)
		*outlen = 0;
	if (in == NULL && n != 0)
		return AGENTID_EINVAL;
	rem = n % 4;
	if (rem == 1)
		return AGENTID_EINVAL;
	if (outsz < agentid_b64url_decoded_max(n) || (out == NULL && n != 0))
		return AGENTID_ERANGE;
	/*
	 * Invalid characters are collected in bad and judged once at the
	 * end; the bytes decoded from them meanwhile are wiped below.
	 */
	for (i = 0; i + 4 <= n; i += 4) {
		c0 = b64url_rev[s[i]];
		c1 = b64url_rev[s[i + 1]];
		c2 = b64url_rev[s[i + 2]];
		c3 = b64url_rev[s[i + 3]];
		bad |= c0 | c1 | c2 | c3;
		out[o] = (unsigned char)((c0 << 2) | (c1 >> 4));
		out[o + 1] = (unsigned char)((c1 << 4) | (c2 >> 2));
		out[o + 2] = (unsigned char)((c2 << 6) | c3);
		o += 3;
	}
	if (rem == 2) {
		/* The last character carries 4 unused bits that must be zero. */
		c0 = b64url_rev[s[i]];
		c1 = b64url_rev[s[i + 1]];
		bad |= c0 | c1 | ((c1 & 0x0f) != 0 ? 0x80 : 0);
		out[o++] = (unsigned char)((c0 << 2) | (c1 >> 4));
	} else if (rem == 3) {
		/* The last character carries 2 unused bits that must be zero. */
		c0 = b64url_rev[s[i]];
		c1 = b64url_rev[s[i + 1]];
		c2 = b64url_rev[s[i + 2]];
		bad |= c0 | c1 | c2 | ((c2 & 0x03) != 0 ? 0x80 : 0);
		out[o++] = (unsigned char)((c0 << 2) | (c1 >> 4));
		out[o++] = (unsigned char)((c1 << 4) | (c2 >> 2));
	}
	if ((bad & 0x80) != 0) {
		/* Leave no partial plaintext (it may be key material) behind. */
		if (o != 0)
			OPENSSL_cleanse(out, o);
		return AGENTID_EINVAL;
	}
	if (outlen != NULL)
		*outlen = o;
	return 0;
}

/*
 * Standard base64 with padding (RFC 4648 section 4), as "x5c" uses it
 * (RFC 7517 section 4.7).  Decoding is as strict as for base64url: the
 * padding must be exactly right, no whitespace, and no non-zero trailing
 * bits.  It is implemented by translating to base64url and reusing the
 * strict decoder above.
 */
int
agentid_b64std_decode_alloc(const char *in, size_t n, unsigned char **out, size_t *outlen)
{
	unsigned char *res = NULL;
	char *tmp = NULL;
	size_t i, data_len, pad = 0, rlen = 0;
	int r;

	*out = NULL;
	*outlen = 0;
	if (in == NULL || n % 4 != 0)
		return AGENTID_EINVAL;
	while (pad < 2 && pad < n && in[n - 1 - pad] == '=')
		pad++;
	data_len = n - pad;
	if ((tmp = agentid_malloc(data_len + 1)) == NULL)
		return AGENTID_ENOMEM;
	for (i = 0; i < data_len; i++) {
		switch (in[i]) {
		case '+':
			tmp[i] = '-';
			break;
		case '/':
			tmp[i] = '_';
			break;
		case '-':
		case '_':
		case '=':
			r = AGENTID_EINVAL;
			goto out;
		default:
			tmp[i] = in[i];
			break;
		}
	}
	/* The amount of padding must match the length of the data exactly. */
	if ((4 - data_len % 4) % 4 != pad) {
		r = AGENTID_EINVAL;
		goto out;
	}
	if ((res = agentid_malloc(agentid_b64url_decoded_max(data_len) + 1)) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	if ((r = agentid_b64url_decode(
	         tmp, data_len, res, agentid_b64url_decoded_max(data_len) + 1, &rlen))
	    != 0)
		goto out;
	*out = res;
	*outlen = rlen;
	res = NULL;
	r = 0;
out:
	agentid_free(res);
	agentid_free(tmp);
	return r;
}

int
agentid_b64std_encode_alloc(const unsigned char *in, size_t n, char **out)
{
	size_t i, len, pad;
	char *p = NULL;
	int r;

	*out = NULL;
	if ((r = agentid_b64url_encode_alloc(in, n, &p)) != 0)
		return r;
	len = strlen(p);
	pad = (4 - len % 4) % 4;
	if (pad != 0) {
		char *q;

		if ((q = agentid_realloc(p, len + pad + 1)) == NULL) {
			agentid_free(p);
			return AGENTID_ENOMEM;
		}
		p = q;
		memset(p + len, '=', pad);
		p[len + pad] = '\0';
	}
	for (i = 0; i < len; i++) {
		if (p[i] == '-')
			p[i] = '+';
		else if (p[i] == '_')
			p[i] = '/';
	}
	*out = p;
	return 0;
}
