/*
 * pam_agentid: mapping a verified SPIFFE ID to a local account.
 *
 * The map file has one rule per line, "<spiffe-id-pattern> <local-user>",
 * with '#' comment lines.  Patterns are those of libagentid
 * (spiffe://td/a/b exactly, spiffe://td/a/ followed by '*' for anything
 * below, spiffe://td/ followed by '*' for the whole trust domain, and a
 * lone '*').  The first rule whose pattern matches decides: the ID may log
 * in as that user and no other.  A malformed rule makes the whole file
 * unusable, so a typo can never widen access.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <security/pam_ext.h>

#include "pam_agentid_int.h"

/* POSIX portable user names plus what common distributions accept. */
static int
user_name_ok(const char *u)
{
	const char *p;

	if (*u == '\0' || *u == '-' || strlen(u) > 64)
		return 0;
	for (p = u; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
		        || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'
		        || (*p == '$' && p[1] == '\0')))
			return 0;
	}
	return 1;
}

int
pa_map_lookup(pam_handle_t *pamh, const char *path, const char *id, const char *user, char **mapped)
{
	struct agentid_spiffe_pattern *pat = NULL;
	struct agentid_error err;
	char line[PA_LINE_MAX], *p, *pstr, *ustr, *extra;
	unsigned lineno = 0;
	FILE *f = NULL;
	int r = -1, match;

	*mapped = NULL;
	if (pa_check_file(pamh, "map file", path) != 0)
		goto out;
	if ((f = fopen(path, "re")) == NULL) {
		pam_syslog(pamh, LOG_ERR, "map file %s: %s", path, strerror(errno));
		goto out;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			pam_syslog(pamh, LOG_ERR, "map file %s:%u: line too long", path, lineno);
			goto out;
		}
		p = line + strspn(line, " \t");
		if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
			continue;
		pstr = strtok_r(p, " \t\r\n", &p);
		ustr = strtok_r(NULL, " \t\r\n", &p);
		extra = strtok_r(NULL, " \t\r\n", &p);
		if (pstr == NULL || ustr == NULL || extra != NULL || !user_name_ok(ustr)) {
			pam_syslog(pamh, LOG_ERR,
			    "map file %s:%u: expected \"<spiffe-id-pattern> <local-user>\"", path,
			    lineno);
			goto out;
		}
		agentid_error_clear(&err);
		if (agentid_spiffe_pattern_parse(pstr, strlen(pstr), &pat, &err) != 0) {
			pam_syslog(pamh, LOG_ERR, "map file %s:%u: bad pattern: %s %s", path,
			    lineno, agentid_reason_code(err.reason), err.detail);
			goto out;
		}
		match = agentid_spiffe_pattern_match(pat, id, strlen(id));
		agentid_spiffe_pattern_free(pat);
		pat = NULL;
		if (!match)
			continue;
		if ((*mapped = strdup(ustr)) == NULL)
			goto out;
		r = strcmp(ustr, user) == 0 ? 1 : 0;
		goto out;
	}
	if (ferror(f)) {
		pam_syslog(pamh, LOG_ERR, "map file %s: read error", path);
		goto out;
	}
	r = 0;
out:
	agentid_spiffe_pattern_free(pat);
	if (f != NULL)
		fclose(f);
	return r;
}

/* Exact match; the length check keeps "bob\u0000x" from matching "bob". */
static int
claim_is(const json_t *v, const char *user)
{
	size_t n = strlen(user);

	return json_is_string(v) && json_string_length(v) == n
	    && memcmp(json_string_value(v), user, n) == 0;
}

int
pa_map_claim(const struct agentid_token *t, const char *claim, const char *user)
{
	const json_t *v, *e;
	size_t i;

	v = json_object_get(agentid_token_claims(t), claim);
	if (json_is_string(v))
		return claim_is(v, user);
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			if (claim_is(e, user))
				return 1;
		}
	}
	return 0;
}
