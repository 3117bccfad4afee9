/*
 * pam_agentid: module options.
 *
 * As in Linux-PAM's pam_faillock, options are filled in three steps:
 * built-in defaults, then the conf= file (if any), then the key=value
 * module arguments.  Scalar options given later override earlier ones;
 * list options (bundle=, audience=, scope=, ...) accumulate.  Anything
 * unknown or malformed is an error: the module then fails closed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <security/pam_ext.h>

#include "pam_agentid_int.h"

#define PA_DEFAULT_PROMPT "Agent token: "
#define PA_DEFAULT_ENV "AGENTID_TOKEN"
#define PA_DEFAULT_STATUS_TIMEOUT_MS 2000
#define PA_DEFAULT_STATUS_MAX_AGE 3600

void
pa_opts_init(struct pa_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->profile = AGENTID_PROFILE_ANY;
	o->max_depth = -1;
	o->leeway = -1;
	o->sources[0] = PA_SRC_CONV;
	o->n_sources = 1;
	o->use_authtok = 1;
	o->map_by = PA_MAP_AGENT;
	o->status_timeout_ms = PA_DEFAULT_STATUS_TIMEOUT_MS;
	o->status_max_age = PA_DEFAULT_STATUS_MAX_AGE;
}

static void
list_free(struct pa_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

void
pa_opts_free(struct pa_opts *o)
{
	if (o == NULL)
		return;
	list_free(&o->bundles);
	list_free(&o->issuers);
	list_free(&o->audiences);
	list_free(&o->scopes);
	list_free(&o->allow_agents);
	list_free(&o->allow_actors);
	list_free(&o->allow_subjects);
	list_free(&o->status_bundles);
	free(o->prompt);
	free(o->env_name);
	free(o->file);
	free(o->map_file);
	free(o->map_claim);
	free(o->status);
	free(o->audit_file);
	free(o->audit_key);
	memset(o, 0, sizeof(*o));
}

int
pa_check_file(pam_handle_t *pamh, const char *what, const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		pam_syslog(pamh, LOG_ERR, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		pam_syslog(pamh, LOG_ERR, "%s %s: not a regular file", what, path);
		return -1;
	}
	/* Trust anchors and policy must not be editable by the users they govern. */
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		pam_syslog(pamh, LOG_ERR, "%s %s: owned by uid %u, not root", what, path,
		    (unsigned)st.st_uid);
		return -1;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		pam_syslog(pamh, LOG_ERR, "%s %s: writable by group or others", what, path);
		return -1;
	}
	return 0;
}

static int
set_str(char **dst, const char *v)
{
	char *s;

	if ((s = strdup(v)) == NULL)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

static int
list_add(pam_handle_t *pamh, const char *key, struct pa_list *l, const char *v)
{
	if (*v == '\0') {
		pam_syslog(pamh, LOG_ERR, "option %s: empty value", key);
		return -1;
	}
	if (l->n >= PA_LIST_MAX) {
		pam_syslog(pamh, LOG_ERR, "option %s: more than %d values", key, PA_LIST_MAX);
		return -1;
	}
	if ((l->v[l->n] = strdup(v)) == NULL)
		return -1;
	l->n++;
	return 0;
}

static int
parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (*s == '\0' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* A flag is set by its bare name or by name=yes|no|true|false|1|0. */
static int
parse_flag(const char *v, int *out)
{
	if (v == NULL || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
		*out = 1;
		return 0;
	}
	if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
		*out = 0;
		return 0;
	}
	return -1;
}

static int
parse_sources(pam_handle_t *pamh, const char *v, struct pa_opts *o)
{
	enum pa_source src;
	const char *p, *e;
	size_t len, i;

	o->n_sources = 0;
	/* Every comma-separated entry must name a source: "env," is as wrong as ",env". */
	for (p = v; *v != '\0'; p = e + 1) {
		e = p + strcspn(p, ",");
		len = (size_t)(e - p);
		if (len == 4 && strncmp(p, "conv", 4) == 0)
			src = PA_SRC_CONV;
		else if (len == 3 && strncmp(p, "env", 3) == 0)
			src = PA_SRC_ENV;
		else if (len == 4 && strncmp(p, "file", 4) == 0)
			src = PA_SRC_FILE;
		else {
			pam_syslog(pamh, LOG_ERR, "option source: unknown source \"%.*s\"",
			    (int)(len > 32 ? 32 : len), p);
			return -1;
		}
		for (i = 0; i < o->n_sources; i++) {
			if (o->sources[i] == src) {
				pam_syslog(pamh, LOG_ERR, "option source: \"%.*s\" given twice",
				    (int)len, p);
				return -1;
			}
		}
		o->sources[o->n_sources++] = src;
		if (*e == '\0')
			break;
	}
	if (o->n_sources == 0) {
		pam_syslog(pamh, LOG_ERR, "option source: empty");
		return -1;
	}
	return 0;
}

/*
 * Applies one option.  v is NULL for a bare word.  Returns 0, or -1 after
 * logging what is wrong.
 */
static int
apply(pam_handle_t *pamh, struct pa_opts *o, const char *k, const char *v)
{
	long n;
	int r;

	/* Bare flags. */
	if (strcmp(k, "debug") == 0)
		r = parse_flag(v, &o->debug);
	else if (strcmp(k, "show_reason") == 0)
		r = parse_flag(v, &o->show_reason);
	else if (strcmp(k, "no_export") == 0)
		r = parse_flag(v, &o->no_export);
	else if (strcmp(k, "status_fail_open") == 0)
		r = parse_flag(v, &o->status_fail_open);
	else if (strcmp(k, "status_required") == 0)
		r = parse_flag(v, &o->status_required);
	else if (strcmp(k, "scope_any") == 0)
		r = parse_flag(v, &o->scope_any);
	else if (strcmp(k, "audit_fail_open") == 0)
		r = parse_flag(v, &o->audit_fail_open);
	else if (strcmp(k, "use_authtok") == 0)
		r = parse_flag(v, &o->use_authtok);
	else if (strcmp(k, "no_authtok") == 0) {
		r = parse_flag(v, &o->use_authtok);
		o->use_authtok = !o->use_authtok;
	} else if (v == NULL) {
		pam_syslog(pamh, LOG_ERR, "unknown option \"%.64s\"", k);
		return -1;
	} else if (strcmp(k, "bundle") == 0)
		r = list_add(pamh, k, &o->bundles, v);
	else if (strcmp(k, "issuer") == 0)
		r = list_add(pamh, k, &o->issuers, v);
	else if (strcmp(k, "audience") == 0)
		r = list_add(pamh, k, &o->audiences, v);
	else if (strcmp(k, "scope") == 0)
		r = list_add(pamh, k, &o->scopes, v);
	else if (strcmp(k, "allow_agent") == 0)
		r = list_add(pamh, k, &o->allow_agents, v);
	else if (strcmp(k, "allow_actor") == 0)
		r = list_add(pamh, k, &o->allow_actors, v);
	else if (strcmp(k, "allow_subject") == 0)
		r = list_add(pamh, k, &o->allow_subjects, v);
	else if (strcmp(k, "status_bundle") == 0)
		r = list_add(pamh, k, &o->status_bundles, v);
	else if (strcmp(k, "profile") == 0)
		r = agentid_profile_from_name(v, &o->profile) == 0 ? 0 : -1;
	else if (strcmp(k, "scope_mode") == 0) {
		r = 0;
		if (strcmp(v, "all") == 0)
			o->scope_any = 0;
		else if (strcmp(v, "any") == 0)
			o->scope_any = 1;
		else
			r = -1;
	} else if (strcmp(k, "max_depth") == 0) {
		if ((r = parse_long(v, 0, 64, &n)) == 0)
			o->max_depth = (int)n;
	} else if (strcmp(k, "leeway") == 0) {
		if ((r = parse_long(v, 0, 3600, &n)) == 0)
			o->leeway = n;
	} else if (strcmp(k, "max_token_len") == 0) {
		if ((r = parse_long(v, 64, 1L << 20, &n)) == 0)
			o->max_token_len = (size_t)n;
	} else if (strcmp(k, "algs") == 0)
		r = agentid_algs_parse(v, &o->algs) == 0 && o->algs != 0 ? 0 : -1;
	else if (strcmp(k, "source") == 0)
		return parse_sources(pamh, v, o);
	else if (strcmp(k, "prompt") == 0)
		r = set_str(&o->prompt, v);
	else if (strcmp(k, "env") == 0)
		r = *v != '\0' && strchr(v, '=') == NULL ? set_str(&o->env_name, v) : -1;
	else if (strcmp(k, "file") == 0)
		r = *v == '/' ? set_str(&o->file, v) : -1;
	else if (strcmp(k, "map") == 0)
		r = set_str(&o->map_file, v);
	else if (strcmp(k, "map_claim") == 0)
		r = *v != '\0' ? set_str(&o->map_claim, v) : -1;
	else if (strcmp(k, "map_by") == 0) {
		r = 0;
		if (strcmp(v, "agent") == 0)
			o->map_by = PA_MAP_AGENT;
		else if (strcmp(v, "subject") == 0)
			o->map_by = PA_MAP_SUBJECT;
		else
			r = -1;
	} else if (strcmp(k, "status") == 0)
		r = set_str(&o->status, v);
	else if (strcmp(k, "status_timeout") == 0)
		r = parse_long(v, 1, 60000, &o->status_timeout_ms);
	else if (strcmp(k, "status_max_age") == 0)
		r = parse_long(v, 1, 86400 * 30, &o->status_max_age);
	else if (strcmp(k, "audit") == 0)
		r = set_str(&o->audit_file, v);
	else if (strcmp(k, "audit_key") == 0)
		r = set_str(&o->audit_key, v);
	else {
		pam_syslog(pamh, LOG_ERR, "unknown option \"%.64s\"", k);
		return -1;
	}
	if (r != 0)
		pam_syslog(
		    pamh, LOG_ERR, "option %.64s: bad value \"%.128s\"", k, v != NULL ? v : "");
	return r;
}

/* Splits "key=value" (or a bare "key") in place and applies it. */
static int
apply_arg(pam_handle_t *pamh, struct pa_opts *o, const char *arg)
{
	char key[64];
	const char *eq;
	size_t klen;

	eq = strchr(arg, '=');
	klen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	if (klen == 0 || klen >= sizeof(key)) {
		pam_syslog(pamh, LOG_ERR, "malformed option \"%.64s\"", arg);
		return -1;
	}
	memcpy(key, arg, klen);
	key[klen] = '\0';
	return apply(pamh, o, key, eq != NULL ? eq + 1 : NULL);
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		e--;
	*e = '\0';
	return s;
}

/*
 * The conf file holds one option per line: "key = value", "key=value" or
 * a bare flag; '#' starts a comment line.  A value in double quotes keeps
 * its surrounding spaces (prompt = "Agent token: ").
 */
static int
read_conf(pam_handle_t *pamh, struct pa_opts *o, const char *path)
{
	char line[PA_LINE_MAX], *k, *v, *eq;
	unsigned lineno = 0;
	size_t vlen;
	FILE *f = NULL;
	int r = -1;

	if (pa_check_file(pamh, "conf file", path) != 0)
		goto out;
	if ((f = fopen(path, "re")) == NULL) {
		pam_syslog(pamh, LOG_ERR, "conf file %s: %s", path, strerror(errno));
		goto out;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			pam_syslog(pamh, LOG_ERR, "conf file %s:%u: line too long", path, lineno);
			goto out;
		}
		k = trim(line);
		if (*k == '\0' || *k == '#')
			continue;
		v = NULL;
		if ((eq = strchr(k, '=')) != NULL) {
			*eq = '\0';
			v = trim(eq + 1);
			k = trim(k);
			vlen = strlen(v);
			if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
				v[vlen - 1] = '\0';
				v++;
			}
		}
		if (strcmp(k, "conf") == 0) {
			pam_syslog(
			    pamh, LOG_ERR, "conf file %s:%u: conf= may not nest", path, lineno);
			goto out;
		}
		if (apply(pamh, o, k, v) != 0) {
			pam_syslog(pamh, LOG_ERR, "conf file %s:%u: rejected", path, lineno);
			goto out;
		}
	}
	if (ferror(f)) {
		pam_syslog(pamh, LOG_ERR, "conf file %s: read error", path);
		goto out;
	}
	r = 0;
out:
	if (f != NULL)
		fclose(f);
	return r;
}

static int
validate(pam_handle_t *pamh, struct pa_opts *o, int for_auth)
{
	size_t i;

	if (o->prompt == NULL && set_str(&o->prompt, PA_DEFAULT_PROMPT) != 0)
		return -1;
	if (o->env_name == NULL && set_str(&o->env_name, PA_DEFAULT_ENV) != 0)
		return -1;
	if (o->status != NULL && o->status_bundles.n == 0 && o->bundles.n == 0) {
		pam_syslog(pamh, LOG_ERR, "status= needs bundle= or status_bundle=");
		return -1;
	}
	if (!for_auth)
		return 0;
	if (o->bundles.n == 0) {
		pam_syslog(pamh, LOG_ERR, "no bundle= configured");
		return -1;
	}
	if (o->audiences.n == 0) {
		pam_syslog(pamh, LOG_ERR, "no audience= configured");
		return -1;
	}
	if (o->map_file == NULL && o->map_claim == NULL) {
		pam_syslog(pamh, LOG_ERR, "no map= or map_claim= configured");
		return -1;
	}
	for (i = 0; i < o->n_sources; i++) {
		if (o->sources[i] == PA_SRC_FILE && o->file == NULL) {
			pam_syslog(pamh, LOG_ERR, "source file needs file=");
			return -1;
		}
	}
	return 0;
}

int
pa_opts_parse(pam_handle_t *pamh, int argc, const char **argv, int for_auth, struct pa_opts *o)
{
	int i, have_conf = 0;

	pa_opts_init(o);
	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "conf=", 5) != 0)
			continue;
		if (have_conf++) {
			pam_syslog(pamh, LOG_ERR, "conf= given more than once");
			return -1;
		}
		if (read_conf(pamh, o, argv[i] + 5) != 0)
			return -1;
	}
	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "conf=", 5) == 0)
			continue;
		if (apply_arg(pamh, o, argv[i]) != 0)
			return -1;
	}
	return validate(pamh, o, for_auth);
}
