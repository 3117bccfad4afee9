/*
 * pam_agentid: verifies an agent's token (an RFC 9068 access token from
 * agentid-exchange or a SPIFFE JWT-SVID) for a PAM service and maps the
 * acting agent's SPIFFE ID to the local account being logged in to.
 *
 *   auth      token from the conversation, the environment or a file;
 *             verify offline against the configured bundles; status
 *             list; map file; remember the verified token (pam_set_data)
 *   account   re-check expiry and revocation of that token
 *   session   export AGENTID_SUBJECT, AGENTID_AGENT, AGENTID_CHAIN,
 *             AGENTID_TASK and AGENTID_JTI into the PAM environment
 *
 * A PAM module is loaded into other programs for a single login, so
 * nothing is cached across calls: the verifier is built from the options
 * on every authentication (bundles are small; this costs far less than
 * the signature check).  The token is never logged and is wiped as soon as
 * it has been verified.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "pam_agentid_int.h"

#define PA_DATA_NAME "pam_agentid_ident"

extern char **environ;
#define PA_ENV_VALUE_MAX 4096
#define PA_DETAIL_MAX 256

/* ---- small helpers ---- */

void
pa_sanitize(char *dst, size_t dstsz, const char *s)
{
	size_t i = 0;

	if (dstsz == 0)
		return;
	for (; s != NULL && *s != '\0' && i + 1 < dstsz; s++, i++)
		dst[i] = (*s >= 0x20 && *s <= 0x7e) ? *s : '?';
	dst[i] = '\0';
}

/* The token is a bearer credential: wipe every copy we made. */
static void
token_wipe(char **tok, size_t *len)
{
	if (*tok != NULL) {
		OPENSSL_cleanse(*tok, *len);
		free(*tok);
	}
	*tok = NULL;
	*len = 0;
}

/* Copies at most max + 1 bytes of s, trimmed of surrounding white space. */
static int
token_copy(const char *s, size_t max, char **tok, size_t *len)
{
	size_t n;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	n = strnlen(s, max + 1);
	while (
	    n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		n--;
	if (n == 0)
		return PAM_AUTHINFO_UNAVAIL;
	if ((*tok = malloc(n + 1)) == NULL)
		return PAM_BUF_ERR;
	memcpy(*tok, s, n);
	(*tok)[n] = '\0';
	*len = n;
	return PAM_SUCCESS;
}

static size_t
max_token_len(const struct pa_opts *o)
{
	return o->max_token_len != 0 ? o->max_token_len : AGENTID_DEFAULT_MAX_TOKEN_LEN;
}

static void
log_sink(void *arg, enum agentid_log_level level, const char *msg)
{
	int prio = level == AGENTID_LOG_ERROR ? LOG_ERR
	    : level == AGENTID_LOG_WARN       ? LOG_WARNING
	    : level == AGENTID_LOG_INFO       ? LOG_INFO
	                                      : LOG_DEBUG;

	pam_syslog((pam_handle_t *)arg, prio, "%s", msg);
}

static void
log_begin(pam_handle_t *pamh, const struct pa_opts *o)
{
	agentid_set_log(log_sink, pamh, o->debug ? AGENTID_LOG_DEBUG : AGENTID_LOG_WARN);
}

static void
log_end(void)
{
	agentid_set_log(NULL, NULL, AGENTID_LOG_ERROR);
}

/* ---- token sources ---- */

static int
token_from_conv(pam_handle_t *pamh, const struct pa_opts *o, char **tok, size_t *len)
{
	const void *item = NULL;
	char *resp = NULL;
	size_t rlen;
	int r;

	if (o->use_authtok && pam_get_item(pamh, PAM_AUTHTOK, &item) == PAM_SUCCESS && item != NULL
	    && *(const char *)item != '\0')
		return token_copy(item, max_token_len(o), tok, len);
	r = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &resp, "%s", o->prompt);
	if (r != PAM_SUCCESS)
		return r == PAM_CONV_AGAIN ? PAM_INCOMPLETE : r;
	if (resp == NULL)
		return PAM_AUTHINFO_UNAVAIL;
	r = token_copy(resp, max_token_len(o), tok, len);
	rlen = strlen(resp);
	OPENSSL_cleanse(resp, rlen);
	free(resp);
	return r;
}

/*
 * The process environment, read from environ itself: sudo's sudoers plugin
 * hooks getenv() so that it answers from the environment prepared for the
 * command (after env_reset), not from the invoking user's environment this
 * source is meant to read.
 */
static const char *
process_env(const char *name)
{
	size_t n = strlen(name);
	char **e;

	for (e = environ; e != NULL && *e != NULL; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static int
token_from_env(pam_handle_t *pamh, const struct pa_opts *o, char **tok, size_t *len)
{
	const char *v;

	if ((v = pam_getenv(pamh, o->env_name)) == NULL || *v == '\0')
		v = process_env(o->env_name);
	if (v == NULL)
		return PAM_AUTHINFO_UNAVAIL;
	return token_copy(v, max_token_len(o), tok, len);
}

/* Expands %u (PAM_USER) and %% in the file= template. */
static int
expand_path(pam_handle_t *pamh, const char *tmpl, const char *user, char *out, size_t outsz)
{
	size_t n = 0, add;
	const char *p, *s;

	for (p = tmpl; *p != '\0'; p++) {
		s = p;
		add = 1;
		if (*p == '%' && p[1] == 'u') {
			/* A user name must not be able to walk out of the directory. */
			if (strchr(user, '/') != NULL || strcmp(user, ".") == 0
			    || strcmp(user, "..") == 0) {
				pam_syslog(pamh, LOG_ERR, "file=: user name unusable in a path");
				return -1;
			}
			s = user;
			add = strlen(user);
			p++;
		} else if (*p == '%' && p[1] == '%') {
			p++;
		} else if (*p == '%') {
			pam_syslog(pamh, LOG_ERR, "file=: unknown escape %%%c", p[1]);
			return -1;
		}
		if (n + add >= outsz) {
			pam_syslog(pamh, LOG_ERR, "file=: path too long");
			return -1;
		}
		memcpy(out + n, s, add);
		n += add;
	}
	out[n] = '\0';
	return 0;
}

static int
token_from_file(
    pam_handle_t *pamh, const struct pa_opts *o, const char *user, char **tok, size_t *len)
{
	char path[PATH_MAX], *buf = NULL;
	size_t cap = max_token_len(o) + 256, n = 0;
	struct stat st;
	ssize_t got;
	int fd = -1, r = PAM_AUTHINFO_UNAVAIL;

	if (expand_path(pamh, o->file, user, path, sizeof(path)) != 0)
		return PAM_SERVICE_ERR;
	/* O_NOFOLLOW and O_NONBLOCK: a user-writable directory must not turn this into a
	 * read of some other file or a hang on a FIFO. */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) == -1) {
		if (errno != ENOENT || o->debug)
			pam_syslog(pamh, errno == ENOENT ? LOG_DEBUG : LOG_WARNING,
			    "token file %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		pam_syslog(pamh, LOG_WARNING, "token file %s: not a regular file", path);
		goto out;
	}
	if ((buf = malloc(cap + 1)) == NULL) {
		r = PAM_BUF_ERR;
		goto out;
	}
	while (n < cap && (got = read(fd, buf + n, cap - n)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			pam_syslog(pamh, LOG_WARNING, "token file %s: %s", path, strerror(errno));
			goto out;
		}
		n += (size_t)got;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', n) != NULL) {
		pam_syslog(pamh, LOG_WARNING, "token file %s: binary content", path);
		goto out;
	}
	r = token_copy(buf, max_token_len(o), tok, len);
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, cap + 1);
		free(buf);
	}
	if (fd != -1)
		close(fd);
	return r;
}

/*
 * Tries the sources in the configured order.  PAM_SUCCESS with a token,
 * PAM_AUTHINFO_UNAVAIL when no source had one, or the error of a source.
 */
static int
get_token(pam_handle_t *pamh, const struct pa_opts *o, const char *user, char **tok, size_t *len)
{
	size_t i;
	int r = PAM_AUTHINFO_UNAVAIL;

	for (i = 0; i < o->n_sources; i++) {
		switch (o->sources[i]) {
		case PA_SRC_CONV:
			r = token_from_conv(pamh, o, tok, len);
			break;
		case PA_SRC_ENV:
			r = token_from_env(pamh, o, tok, len);
			break;
		case PA_SRC_FILE:
			r = token_from_file(pamh, o, user, tok, len);
			break;
		}
		if (r != PAM_AUTHINFO_UNAVAIL)
			return r;
	}
	return r;
}

/* ---- verification ---- */

/* "td:/path" names the trust domain of a bundle; "/path" takes it from the file. */
static int
load_bundle(
    pam_handle_t *pamh, struct agentid_trust *trust, const char *spec, struct agentid_error *err)
{
	struct agentid_bundle *b = NULL;
	char td[AGENTID_TRUST_DOMAIN_MAX + 1];
	const char *path = spec, *colon;
	size_t tdlen;
	int r;

	td[0] = '\0';
	if (*spec != '/' && (colon = strchr(spec, ':')) != NULL) {
		tdlen = (size_t)(colon - spec);
		if (tdlen == 0 || tdlen >= sizeof(td)
		    || agentid_trust_domain_validate(spec, tdlen, err) != 0) {
			pam_syslog(pamh, LOG_ERR, "bundle=%s: bad trust domain", spec);
			return AGENTID_EINVAL;
		}
		memcpy(td, spec, tdlen);
		td[tdlen] = '\0';
		path = colon + 1;
	}
	if (pa_check_file(pamh, "bundle", path) != 0)
		return AGENTID_EIO;
	if ((r = agentid_bundle_load_file(td[0] != '\0' ? td : NULL, path, &b, err)) != 0) {
		if (err->reason == AGENTID_R_OK)
			pam_syslog(pamh, LOG_ERR, "bundle %s: %s", path, agentid_strerror(r));
		else
			pam_syslog(pamh, LOG_ERR, "bundle %s: %s: %s %s", path, agentid_strerror(r),
			    agentid_reason_code(err->reason), err->detail);
		return r;
	}
	r = agentid_trust_add_bundle(trust, b);
	agentid_bundle_free(b);
	return r;
}

static int
build_verifier(pam_handle_t *pamh, const struct pa_opts *o, struct agentid_verifier **out)
{
	struct agentid_verifier_config cfg;
	struct agentid_trust *trust = NULL;
	struct agentid_error err;
	size_t i;
	int r;

	*out = NULL;
	agentid_error_clear(&err);
	if ((r = agentid_trust_new(&trust)) != 0)
		goto out;
	for (i = 0; i < o->bundles.n; i++)
		if ((r = load_bundle(pamh, trust, o->bundles.v[i], &err)) != 0)
			goto out;

	agentid_verifier_config_init(&cfg);
	cfg.profile = o->profile;
	cfg.trust = trust;
	cfg.issuers = (const char *const *)o->issuers.v;
	cfg.n_issuers = o->issuers.n;
	cfg.audiences = (const char *const *)o->audiences.v;
	cfg.n_audiences = o->audiences.n;
	cfg.algs = o->algs;
	if (o->leeway >= 0)
		cfg.leeway = o->leeway;
	if (o->max_token_len != 0)
		cfg.limits.max_token_len = o->max_token_len;
	cfg.required_scopes = (const char *const *)o->scopes.v;
	cfg.n_required_scopes = o->scopes.n;
	cfg.scope_any = o->scope_any;
	if (o->max_depth >= 0)
		cfg.max_chain_depth = o->max_depth;
	cfg.allow_actors = (const char *const *)o->allow_actors.v;
	cfg.n_allow_actors = o->allow_actors.n;
	cfg.allow_agents = (const char *const *)o->allow_agents.v;
	cfg.n_allow_agents = o->allow_agents.n;
	cfg.allow_subjects = (const char *const *)o->allow_subjects.v;
	cfg.n_allow_subjects = o->allow_subjects.n;
	if ((r = agentid_verifier_new(&cfg, out, &err)) != 0)
		pam_syslog(pamh, LOG_ERR, "verifier configuration: %s %s", agentid_strerror(r),
		    err.detail);
out:
	agentid_trust_free(trust);
	return r;
}

/*
 * The token's status-list entry: claims.status.status_list {idx, uri}.
 * 0 with *uri NULL when there is none, -1 when the claim is malformed.
 */
static int
token_status(const struct agentid_token *t, const char **uri, int64_t *idx)
{
	const json_t *st, *sl, *ji, *ju;

	*uri = NULL;
	*idx = -1;
	if ((st = json_object_get(agentid_token_claims(t), "status")) == NULL)
		return 0;
	sl = json_object_get(st, "status_list");
	ji = json_object_get(sl, "idx");
	ju = json_object_get(sl, "uri");
	if (!json_is_object(st) || !json_is_object(sl) || !json_is_integer(ji)
	    || json_integer_value(ji) < 0 || !json_is_string(ju))
		return -1;
	*uri = json_string_value(ju);
	*idx = json_integer_value(ji);
	return 0;
}

static int
check_status(pam_handle_t *pamh, const struct pa_opts *o, const struct agentid_token *t, time_t now,
    struct agentid_error *err)
{
	const char *uri;
	int64_t idx;

	if (o->status == NULL)
		return 0;
	if (token_status(t, &uri, &idx) != 0)
		return agentid_error_set(err, AGENTID_R_BAD_CLAIM, "status claim is malformed");
	return pa_status_check(pamh, o, uri, idx, now, err);
}

/* What an unverified token claims to be, for the log line of a refusal only. */
static void
describe_unverified(const char *tok, size_t len, char *out, size_t outsz)
{
	struct agentid_jws *jws = NULL;
	struct agentid_error err;
	char kid[80], iss[160], sub[160], jti[80];
	const char *s;

	out[0] = '\0';
	if (agentid_jws_parse(tok, len, NULL, &jws, &err) != 0)
		return;
	pa_sanitize(kid, sizeof(kid), jws->kid);
	s = json_string_value(json_object_get(jws->payload, "iss"));
	pa_sanitize(iss, sizeof(iss), s);
	s = json_string_value(json_object_get(jws->payload, "sub"));
	pa_sanitize(sub, sizeof(sub), s);
	s = json_string_value(json_object_get(jws->payload, "jti"));
	pa_sanitize(jti, sizeof(jti), s);
	snprintf(out, outsz, " (unverified: kid=%s iss=%s sub=%s jti=%s)", kid, iss, sub, jti);
	agentid_jws_free(jws);
}

/* ---- account mapping ---- */

/*
 * 1 when the token may log in as user, 0 when not (detail says why), -1 on
 * a configuration error.
 */
static int
check_mapping(pam_handle_t *pamh, const struct pa_opts *o, const struct agentid_token *t,
    const char *user, char *detail, size_t dsz)
{
	const char *id
	    = o->map_by == PA_MAP_SUBJECT ? agentid_token_sub(t) : agentid_token_agent(t);
	char *mapped = NULL, safe[160];
	int r;

	if (id == NULL) {
		snprintf(detail, dsz, "token names no %s",
		    o->map_by == PA_MAP_SUBJECT ? "subject" : "agent");
		return 0;
	}
	pa_sanitize(safe, sizeof(safe), id);
	if (o->map_file != NULL) {
		r = pa_map_lookup(pamh, o->map_file, id, user, &mapped);
		if (r != 0 || mapped != NULL) {
			if (r == 0)
				snprintf(detail, dsz, "%s maps to another user", safe);
			free(mapped);
			return r;
		}
	}
	if (o->map_claim != NULL && pa_map_claim(t, o->map_claim, user))
		return 1;
	snprintf(detail, dsz, "no mapping of %s to this user", safe);
	return 0;
}

/* ---- environment ---- */

static int
put_env(pam_handle_t *pamh, const char *name, const char *value)
{
	char buf[PA_ENV_VALUE_MAX + 64];
	size_t n;

	if (value == NULL || *value == '\0') {
		/* Remove a stale value from an earlier attempt. */
		if (pam_getenv(pamh, name) != NULL)
			(void)pam_putenv(pamh, name);
		return PAM_SUCCESS;
	}
	n = (size_t)snprintf(buf, sizeof(buf), "%s=", name);
	pa_sanitize(buf + n, sizeof(buf) - n, value);
	return pam_putenv(pamh, buf);
}

static int
export_env(pam_handle_t *pamh, const struct agentid_token *t)
{
	const struct agentid_chain *c = agentid_token_chain(t);
	char *chain = NULL;
	int r;

	if (c != NULL && agentid_chain_len(c) > 0 && agentid_chain_to_string(c, ",", &chain) != 0)
		return PAM_BUF_ERR;
	if ((r = put_env(pamh, "AGENTID_SUBJECT", agentid_token_sub(t))) != PAM_SUCCESS
	    || (r = put_env(pamh, "AGENTID_AGENT", agentid_token_agent(t))) != PAM_SUCCESS
	    || (r = put_env(pamh, "AGENTID_CHAIN", chain != NULL ? chain : agentid_token_agent(t)))
	        != PAM_SUCCESS
	    || (r = put_env(pamh, "AGENTID_TASK", agentid_token_task(t))) != PAM_SUCCESS
	    || (r = put_env(pamh, "AGENTID_JTI", agentid_token_jti(t))) != PAM_SUCCESS)
		goto out;
out:
	agentid_free(chain);
	return r;
}

/* ---- PAM data ---- */

static void
ident_cleanup(pam_handle_t *pamh, void *data, int error_status)
{
	struct pa_ident *id = data;

	(void)pamh;
	(void)error_status;
	if (id == NULL)
		return;
	free(id->user);
	agentid_token_free(id->token);
	free(id);
}

static const struct pa_ident *
ident_get(pam_handle_t *pamh)
{
	const void *data = NULL;

	if (pam_get_data(pamh, PA_DATA_NAME, &data) != PAM_SUCCESS)
		return NULL;
	return data;
}

/* One syslog line per allowed login: who, as whom, under which token and task. */
static void
log_allowed(pam_handle_t *pamh, const char *user, const struct agentid_token *t)
{
	char u[80], agent[160], sub[160], jti[80], task[80];

	pa_sanitize(u, sizeof(u), user);
	pa_sanitize(agent, sizeof(agent), agentid_token_agent(t));
	pa_sanitize(sub, sizeof(sub), agentid_token_sub(t));
	pa_sanitize(jti, sizeof(jti), agentid_token_jti(t));
	pa_sanitize(task, sizeof(task), agentid_token_task(t));
	pam_syslog(pamh, LOG_INFO, "login allowed: user=%s agent=%s subject=%s jti=%s task=%s", u,
	    agent, sub, jti, task);
}

/* ---- entry points ---- */

PAM_EXTERN int
pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct pa_opts o;
	struct agentid_error err;
	struct agentid_verifier *v = NULL;
	struct agentid_token *t = NULL, *refused = NULL;
	struct pa_ident *id = NULL, refused_id;
	const char *user = NULL, *reason = NULL;
	char *tok = NULL, detail[PA_DETAIL_MAX], unverified[512], safe_user[80];
	size_t toklen = 0;
	time_t now;
	int r, m, ret = PAM_AUTH_ERR;

	detail[0] = unverified[0] = '\0';
	agentid_error_clear(&err);
	/* A failed attempt must not leave an earlier identity for account and session. */
	(void)pam_set_data(pamh, PA_DATA_NAME, NULL, NULL);

	if (pa_opts_parse(pamh, argc, argv, 1, &o) != 0) {
		ret = PAM_SERVICE_ERR;
		reason = PA_REASON_CONFIG;
		goto out;
	}
	log_begin(pamh, &o);
	if ((r = pam_get_user(pamh, &user, NULL)) != PAM_SUCCESS || user == NULL || *user == '\0') {
		ret = r == PAM_CONV_AGAIN ? PAM_INCOMPLETE : PAM_USER_UNKNOWN;
		reason = PA_REASON_USER_UNKNOWN;
		user = NULL;
		goto out;
	}
	if (getpwnam(user) == NULL) {
		ret = PAM_USER_UNKNOWN;
		reason = PA_REASON_USER_UNKNOWN;
		goto out;
	}
	if ((r = get_token(pamh, &o, user, &tok, &toklen)) != PAM_SUCCESS) {
		ret = r;
		reason = PA_REASON_NO_TOKEN;
		goto out;
	}
	if (build_verifier(pamh, &o, &v) != 0) {
		ret = PAM_SERVICE_ERR;
		reason = PA_REASON_CONFIG;
		goto out;
	}
	now = time(NULL);
	if ((r = agentid_verify_ex(v, NULL, tok, toklen, now, &t, &refused, &err)) != 0) {
		/* A token a rule refused (scope, agent, subject) names who in the audit record. */
		t = refused;
		ret = r == AGENTID_EREJECTED ? PAM_AUTH_ERR
		    : r == AGENTID_ENOMEM    ? PAM_BUF_ERR
		                             : PAM_SYSTEM_ERR;
		reason = agentid_reason_code(err.reason);
		snprintf(detail, sizeof(detail), "%s", err.detail);
		describe_unverified(tok, toklen, unverified, sizeof(unverified));
		goto out;
	}
	token_wipe(&tok, &toklen);
	if ((r = check_status(pamh, &o, t, now, &err)) != 0) {
		ret = r == AGENTID_EREJECTED ? PAM_AUTH_ERR : PAM_SYSTEM_ERR;
		reason = agentid_reason_code(err.reason);
		snprintf(detail, sizeof(detail), "%s", err.detail);
		goto out;
	}
	if ((m = check_mapping(pamh, &o, t, user, detail, sizeof(detail))) != 1) {
		ret = m < 0 ? PAM_SERVICE_ERR : PAM_AUTH_ERR;
		reason = m < 0 ? PA_REASON_CONFIG : PA_REASON_NOT_MAPPED;
		goto out;
	}

	if ((id = calloc(1, sizeof(*id))) == NULL || (id->user = strdup(user)) == NULL) {
		ret = PAM_BUF_ERR;
		reason = agentid_reason_code(AGENTID_R_INTERNAL);
		goto out;
	}
	id->token = t;
	t = NULL;
	if (pa_audit_login(pamh, &o, 1, id, user, NULL, NULL) != 0 && !o.audit_fail_open) {
		ret = PAM_SYSTEM_ERR;
		reason = "audit_failed";
		goto out;
	}
	/* Set in auth as well as in session: OpenSSH authenticates in a child process and
	 * hands only the PAM environment, not module data, back to the session. */
	if (!o.no_export && (r = export_env(pamh, id->token)) != PAM_SUCCESS) {
		ret = r;
		reason = agentid_reason_code(AGENTID_R_INTERNAL);
		goto out;
	}
	log_allowed(pamh, user, id->token);
	if ((r = pam_set_data(pamh, PA_DATA_NAME, id, ident_cleanup)) != PAM_SUCCESS) {
		ret = r;
		reason = agentid_reason_code(AGENTID_R_INTERNAL);
		goto out;
	}
	id = NULL;
	ret = PAM_SUCCESS;
out:
	if (ret != PAM_SUCCESS) {
		pa_sanitize(safe_user, sizeof(safe_user), user != NULL ? user : "?");
		pam_syslog(pamh, LOG_NOTICE, "login denied: user=%s reason=%s%s%s%s", safe_user,
		    reason != NULL ? reason : "?", detail[0] != '\0' ? ": " : "", detail,
		    unverified);
		/* Who was refused, when the token was authentic: verified, or refused by a rule. */
		refused_id.user = (char *)user;
		refused_id.token = t;
		if (ret != PAM_INCOMPLETE)
			(void)pa_audit_login(pamh, &o, 0,
			    id != NULL ? id : (t != NULL ? &refused_id : NULL), user, reason,
			    detail);
		if (o.show_reason && reason != NULL && (flags & PAM_SILENT) == 0)
			(void)pam_error(pamh, "agent token refused: %s", reason);
		if (id != NULL && !o.no_export) {
			(void)put_env(pamh, "AGENTID_SUBJECT", NULL);
			(void)put_env(pamh, "AGENTID_AGENT", NULL);
			(void)put_env(pamh, "AGENTID_CHAIN", NULL);
			(void)put_env(pamh, "AGENTID_TASK", NULL);
			(void)put_env(pamh, "AGENTID_JTI", NULL);
		}
	}
	ident_cleanup(pamh, id, 0);
	token_wipe(&tok, &toklen);
	agentid_token_free(t);
	agentid_verifier_free(v);
	pa_opts_free(&o);
	log_end();
	return ret;
}

PAM_EXTERN int
pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	return PAM_SUCCESS;
}

PAM_EXTERN int
pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct pa_opts o;
	struct agentid_error err;
	const struct pa_ident *id;
	const void *item = NULL;
	const char *reason = NULL;
	char detail[PA_DETAIL_MAX];
	time_t now;
	long leeway;
	int ret = PAM_PERM_DENIED;

	(void)flags;
	detail[0] = '\0';
	agentid_error_clear(&err);
	if (pa_opts_parse(pamh, argc, argv, 0, &o) != 0) {
		ret = PAM_SERVICE_ERR;
		reason = PA_REASON_CONFIG;
		goto out;
	}
	log_begin(pamh, &o);
	/* Not our login (another auth module succeeded): nothing to re-check. */
	if ((id = ident_get(pamh)) == NULL) {
		ret = PAM_IGNORE;
		goto out;
	}
	if (pam_get_item(pamh, PAM_USER, &item) != PAM_SUCCESS || item == NULL
	    || strcmp(item, id->user) != 0) {
		reason = PA_REASON_USER_CHANGED;
		goto out;
	}
	now = time(NULL);
	leeway = o.leeway >= 0 ? o.leeway : AGENTID_DEFAULT_LEEWAY;
	if ((int64_t)now >= agentid_token_exp(id->token) + leeway) {
		ret = PAM_ACCT_EXPIRED;
		reason = agentid_reason_code(AGENTID_R_EXPIRED);
		goto out;
	}
	if (check_status(pamh, &o, id->token, now, &err) != 0) {
		reason = agentid_reason_code(err.reason);
		snprintf(detail, sizeof(detail), "%s", err.detail);
		goto out;
	}
	ret = PAM_SUCCESS;
out:
	if (ret != PAM_SUCCESS && ret != PAM_IGNORE) {
		const char *user = NULL;
		char safe_user[80];

		if (pam_get_item(pamh, PAM_USER, &item) == PAM_SUCCESS)
			user = item;
		pa_sanitize(safe_user, sizeof(safe_user), user != NULL ? user : "?");
		pam_syslog(pamh, LOG_NOTICE, "account denied: user=%s reason=%s%s%s", safe_user,
		    reason != NULL ? reason : "?", detail[0] != '\0' ? ": " : "", detail);
		(void)pa_audit_login(pamh, &o, 0, ident_get(pamh), user, reason, detail);
	}
	pa_opts_free(&o);
	log_end();
	return ret;
}

PAM_EXTERN int
pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct pa_opts o;
	const struct pa_ident *id;
	int ret;

	(void)flags;
	if (pa_opts_parse(pamh, argc, argv, 0, &o) != 0) {
		ret = PAM_SESSION_ERR;
		goto out;
	}
	if (o.no_export) {
		ret = PAM_IGNORE;
		goto out;
	}
	if ((id = ident_get(pamh)) != NULL)
		ret = export_env(pamh, id->token);
	else if (pam_getenv(pamh, "AGENTID_AGENT") != NULL)
		ret = PAM_SUCCESS; /* exported by auth in another process (OpenSSH) */
	else
		ret = PAM_IGNORE;
out:
	pa_opts_free(&o);
	return ret;
}

PAM_EXTERN int
pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	return PAM_SUCCESS;
}
