/*
 * SPIFFE IDs and trust domain names, validated exactly as SPIFFE-ID.md
 * section 2 prescribes.
 *
 * The checks are strict on purpose: the scheme and the trust domain must
 * already be in lower case (we never normalise), because IDs are compared
 * byte for byte everywhere else (patterns, policy, audit records).  Every
 * rejection names the rule that failed so that an operator can fix the ID.
 */
#include "config.h"

#include <string.h>

#include <agentid/spiffe.h>

#include "internal.h"

#define SPIFFE_PREFIX "spiffe://"
#define SPIFFE_PREFIX_LEN (sizeof(SPIFFE_PREFIX) - 1)

static int
is_td_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int
is_path_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
	    || c == '.' || c == '-' || c == '_';
}

/*
 * Explains why c is not allowed.  The URI delimiters get their own message
 * because they mean a whole forbidden URI component is present.
 */
static int
reject_char(struct agentid_error *err, unsigned char c, const char *where)
{
	switch (c) {
	case '%':
		return agentid_error_set(
		    err, AGENTID_R_BAD_SPIFFE_ID, "percent-encoding is not allowed in a SPIFFE ID");
	case '?':
		return agentid_error_set(
		    err, AGENTID_R_BAD_SPIFFE_ID, "a SPIFFE ID must not have a query ('?')");
	case '#':
		return agentid_error_set(
		    err, AGENTID_R_BAD_SPIFFE_ID, "a SPIFFE ID must not have a fragment ('#')");
	default:
		break;
	}
	return agentid_error_set(
	    err, AGENTID_R_BAD_SPIFFE_ID, "%s contains an invalid character", where);
}

/* Checks the trust domain name td[0..len). */
static int
check_td(const char *td, size_t len, struct agentid_error *err)
{
	size_t i;
	unsigned char c;

	if (len == 0)
		return agentid_error_set(err, AGENTID_R_BAD_SPIFFE_ID, "trust domain is empty");
	for (i = 0; i < len; i++) {
		c = (unsigned char)td[i];
		if (is_td_char(c))
			continue;
		if (c == '@')
			return agentid_error_set(err, AGENTID_R_BAD_SPIFFE_ID,
			    "trust domain must not contain userinfo ('@')");
		if (c == ':')
			return agentid_error_set(err, AGENTID_R_BAD_SPIFFE_ID,
			    "trust domain must not contain a port (':')");
		if (c >= 'A' && c <= 'Z')
			return agentid_error_set(
			    err, AGENTID_R_BAD_SPIFFE_ID, "trust domain must be lower case");
		return reject_char(err, c, "trust domain");
	}
	if (len > AGENTID_TRUST_DOMAIN_MAX)
		return agentid_error_set(err, AGENTID_R_BAD_SPIFFE_ID,
		    "trust domain is longer than %d bytes", AGENTID_TRUST_DOMAIN_MAX);
	return 0;
}

/* Checks a non-empty path p[0..len) that starts with '/'. */
static int
check_path(const char *p, size_t len, struct agentid_error *err)
{
	size_t i, seg_start, seg_len;
	unsigned char c;

	/* p[0] is '/'; each iteration consumes one segment and the '/' before it. */
	i = 0;
	while (i < len) {
		seg_start = ++i;
		while (i < len && p[i] != '/') {
			c = (unsigned char)p[i];
			if (!is_path_char(c))
				return reject_char(err, c, "path");
			i++;
		}
		seg_len = i - seg_start;
		if (seg_len == 0) {
			if (i == len)
				return agentid_error_set(
				    err, AGENTID_R_BAD_SPIFFE_ID, "path must not end with '/'");
			return agentid_error_set(
			    err, AGENTID_R_BAD_SPIFFE_ID, "path contains an empty segment");
		}
		if ((seg_len == 1 && p[seg_start] == '.')
		    || (seg_len == 2 && p[seg_start] == '.' && p[seg_start + 1] == '.'))
			return agentid_error_set(err, AGENTID_R_BAD_SPIFFE_ID,
			    "path contains a dot segment ('.' or '..')");
	}
	return 0;
}

static int
has_prefix_nocase(const char *s, size_t len, const char *prefix, size_t plen)
{
	size_t i;
	unsigned char a, b;

	if (len < plen)
		return 0;
	for (i = 0; i < plen; i++) {
		a = (unsigned char)s[i];
		b = (unsigned char)prefix[i];
		if (a >= 'A' && a <= 'Z')
			a = (unsigned char)(a - 'A' + 'a');
		if (a != b)
			return 0;
	}
	return 1;
}

AGENTID_EXPORT int
agentid_spiffe_id_parse(
    const char *s, size_t len, struct agentid_spiffe_id *out, struct agentid_error *err)
{
	const char *td, *slash;
	size_t td_len;
	int r;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (s == NULL)
		return AGENTID_EINVAL;
	if (len == 0)
		return agentid_error_set(err, AGENTID_R_BAD_SPIFFE_ID, "SPIFFE ID is empty");
	if (len > AGENTID_SPIFFE_ID_MAX)
		return agentid_error_set(err, AGENTID_R_BAD_SPIFFE_ID,
		    "SPIFFE ID is longer than %d bytes", AGENTID_SPIFFE_ID_MAX);
	if (len < SPIFFE_PREFIX_LEN || memcmp(s, SPIFFE_PREFIX, SPIFFE_PREFIX_LEN) != 0) {
		if (has_prefix_nocase(s, len, SPIFFE_PREFIX, SPIFFE_PREFIX_LEN))
			return agentid_error_set(err, AGENTID_R_BAD_SPIFFE_ID,
			    "scheme must be \"spiffe\" in lower case");
		return agentid_error_set(
		    err, AGENTID_R_BAD_SPIFFE_ID, "SPIFFE ID must start with \"spiffe://\"");
	}
	td = s + SPIFFE_PREFIX_LEN;
	slash = memchr(td, '/', len - SPIFFE_PREFIX_LEN);
	td_len = slash != NULL ? (size_t)(slash - td) : len - SPIFFE_PREFIX_LEN;
	if ((r = check_td(td, td_len, err)) != 0)
		return r;
	if (slash != NULL && (r = check_path(slash, (size_t)(s + len - slash), err)) != 0)
		return r;
	if (out != NULL) {
		out->td = td;
		out->td_len = td_len;
		out->path = slash != NULL ? slash : s + len;
		out->path_len = slash != NULL ? (size_t)(s + len - slash) : 0;
	}
	return 0;
}

AGENTID_EXPORT int
agentid_trust_domain_validate(const char *td, size_t len, struct agentid_error *err)
{
	if (td == NULL)
		return AGENTID_EINVAL;
	return check_td(td, len, err);
}
