/*
 * pam_agentid: the audit log and revocation status lists.
 *
 * Both are reached through libagentid (agentid/audit.h, agentid/status.h);
 * this file is the only place in the module that knows their APIs.  A PAM
 * module lives inside someone else's process for a single login, so the
 * audit log is opened, appended to and closed within the call (each login
 * is its own short stream in the shared file), and a status list is read
 * or fetched with a hard timeout when it is needed.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include <security/pam_ext.h>

#include <agentid/audit.h>
#include <agentid/common.h>
#include <agentid/fetch.h>
#include <agentid/status.h>

#include "pam_agentid_int.h"

#define PA_STATUS_MAX_BYTES (4u * 1024 * 1024)

/* The keys that sign status lists: those of status_bundle=, else of bundle=. */
static int
status_keys(pam_handle_t *pamh, const struct pa_opts *o, struct agentid_keyset **out,
    struct agentid_error *err)
{
	const struct pa_list *l = o->status_bundles.n > 0 ? &o->status_bundles : &o->bundles;
	const struct agentid_keyset *bk;
	struct agentid_keyset *ks = NULL;
	struct agentid_bundle *b = NULL;
	char td[AGENTID_TRUST_DOMAIN_MAX + 1];
	const char *path, *colon;
	size_t i, j, tdlen;
	int r;

	*out = NULL;
	if ((r = agentid_keyset_new(&ks)) != 0)
		goto out;
	for (i = 0; i < l->n; i++) {
		path = l->v[i];
		td[0] = '\0';
		if (*path != '/' && (colon = strchr(path, ':')) != NULL) {
			tdlen = (size_t)(colon - path);
			if (tdlen >= sizeof(td)) {
				r = AGENTID_EINVAL;
				goto out;
			}
			memcpy(td, path, tdlen);
			td[tdlen] = '\0';
			path = colon + 1;
		}
		if (pa_check_file(pamh, "status bundle", path) != 0) {
			r = AGENTID_EIO;
			goto out;
		}
		if ((r = agentid_bundle_load_file(td[0] != '\0' ? td : NULL, path, &b, err)) != 0)
			goto out;
		bk = agentid_bundle_jwt_keys(b);
		for (j = 0; bk != NULL && j < agentid_keyset_count(bk); j++)
			if ((r = agentid_keyset_add(
			         ks, (struct agentid_key *)agentid_keyset_get(bk, j)))
			    != 0)
				goto out;
		agentid_bundle_free(b);
		b = NULL;
	}
	*out = ks;
	ks = NULL;
out:
	agentid_bundle_free(b);
	agentid_keyset_free(ks);
	return r;
}

static int
is_url(const char *s)
{
	return strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
}

/* Plain http only to this host itself (a local mirror of the list). */
static int
is_loopback_http(const char *s)
{
	return strncmp(s, "http://127.0.0.1:", 17) == 0 || strncmp(s, "http://127.0.0.1/", 17) == 0
	    || strncmp(s, "http://localhost:", 17) == 0 || strncmp(s, "http://localhost/", 17) == 0;
}

/*
 * Reads the Status List Token from the configured file or URL.  Both ways
 * end in a buffer of libagentid's allocator, so *jwt is released with
 * agentid_free() whichever way it was read.
 */
static int
status_read(
    pam_handle_t *pamh, const struct pa_opts *o, char **jwt, size_t *len, struct agentid_error *err)
{
	struct agentid_fetch_opts fo;
	struct agentid_fetch_result res;
	char *buf = NULL;
	size_t n = 0;
	int r;

	*jwt = NULL;
	*len = 0;
	if (is_url(o->status)) {
		agentid_fetch_opts_init(&fo);
		fo.timeout_ms = o->status_timeout_ms;
		fo.connect_timeout_ms = o->status_timeout_ms;
		fo.max_bytes = PA_STATUS_MAX_BYTES;
		fo.accept = "application/statuslist+jwt";
		fo.allow_http = is_loopback_http(o->status);
		memset(&res, 0, sizeof(res));
		if ((r = agentid_fetch(o->status, &fo, &res, err)) == 0 && res.body == NULL)
			r = AGENTID_EIO;
		if (r == 0) {
			/* The fetched body changes hands instead of being copied. */
			buf = res.body;
			n = res.len;
			res.body = NULL;
		}
		agentid_fetch_result_free(&res);
		if (r != 0)
			return r;
	} else {
		if (pa_check_file(pamh, "status list", o->status) != 0)
			return AGENTID_EIO;
		if ((r = agentid_read_file(o->status, PA_STATUS_MAX_BYTES, &buf, &n)) != 0)
			return r;
		/* Tools and editors end the file with a newline; the token has none. */
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
			n--;
		buf[n] = '\0';
	}
	*jwt = buf;
	*len = n;
	return 0;
}

/*
 * Obtains and verifies the list the token points at.  A login process
 * checks one token once, so the list is read (or fetched, with a hard
 * timeout) and verified right here rather than kept by a refreshing
 * checker: its age is judged by the list's own iat.
 */
static int
status_lookup(pam_handle_t *pamh, const struct pa_opts *o, const char *uri, int64_t idx, time_t now,
    struct agentid_error *err)
{
	struct agentid_status_list_token *st = NULL;
	struct agentid_keyset *ks = NULL;
	struct agentid_error lerr;
	char *jwt = NULL;
	size_t len = 0;
	unsigned value;
	long leeway = o->leeway >= 0 ? o->leeway : AGENTID_DEFAULT_LEEWAY;
	int r;

	agentid_error_clear(&lerr);
	if (is_url(o->status) && strcmp(o->status, uri) != 0) {
		r = agentid_error_set(err, AGENTID_R_STATUS_UNAVAILABLE,
		    "the token's status list is not the configured one");
		goto out;
	}
	if ((r = status_keys(pamh, o, &ks, &lerr)) != 0) {
		r = agentid_error_set(err, AGENTID_R_STATUS_UNAVAILABLE, "status list keys: %s %s",
		    agentid_strerror(r), lerr.detail);
		goto out;
	}
	if ((r = status_read(pamh, o, &jwt, &len, &lerr)) != 0) {
		r = agentid_error_set(err, AGENTID_R_STATUS_UNAVAILABLE, "status list %s: %s %s",
		    o->status, agentid_strerror(r), lerr.detail);
		goto out;
	}
	if ((r = agentid_status_list_verify_jwt(
	         jwt, len, ks, 0, uri, NULL, now, leeway, 0, &st, &lerr))
	    != 0) {
		r = agentid_error_set(err, AGENTID_R_STATUS_UNAVAILABLE, "status list: %s: %s",
		    agentid_reason_code(lerr.reason), lerr.detail);
		goto out;
	}
	if ((int64_t)now - st->iat > o->status_max_age) {
		r = agentid_error_set(err, AGENTID_R_STATUS_UNAVAILABLE,
		    "status list is stale (%lld s old)", (long long)((int64_t)now - st->iat));
		goto out;
	}
	if (idx < 0 || (uint64_t)idx >= agentid_status_list_size(st->list)
	    || agentid_status_list_get(st->list, (size_t)idx, &value) != 0) {
		r = agentid_error_set(
		    err, AGENTID_R_BAD_CLAIM, "status index %lld beyond the list", (long long)idx);
		goto out;
	}
	if (value == AGENTID_STATUS_VALID)
		r = 0;
	else if (value == AGENTID_STATUS_SUSPENDED)
		r = agentid_error_set(err, AGENTID_R_SUSPENDED, "token is suspended");
	else
		r = agentid_error_set(err, AGENTID_R_REVOKED, "token is revoked");
out:
	/* A status list is public: nothing to wipe. */
	agentid_free(jwt);
	agentid_status_list_token_free(st);
	agentid_keyset_free(ks);
	return r;
}

int
pa_status_check(pam_handle_t *pamh, const struct pa_opts *o, const char *uri, int64_t idx,
    time_t now, struct agentid_error *err)
{
	int r;

	if (o->status == NULL)
		return 0;
	if (uri == NULL) {
		if (o->status_required)
			return agentid_error_set(
			    err, AGENTID_R_MISSING_CLAIM, "token has no status claim");
		return 0;
	}
	r = status_lookup(pamh, o, uri, idx, now, err);
	if (r == AGENTID_EREJECTED && err->reason == AGENTID_R_STATUS_UNAVAILABLE
	    && o->status_fail_open) {
		pam_syslog(pamh, LOG_WARNING, "revocation not checked (status_fail_open): %s",
		    err->detail);
		agentid_error_clear(err);
		return 0;
	}
	return r;
}

int
pa_audit_login(pam_handle_t *pamh, const struct pa_opts *o, int allowed, const struct pa_ident *id,
    const char *user, const char *reason, const char *detail)
{
	struct agentid_audit_config cfg;
	struct agentid_audit_event ev;
	struct agentid_audit *a = NULL;
	struct agentid_error err;
	const void *item;
	const char *service = "?", *rhost = NULL;
	char resource[256];
	json_t *extra = NULL;
	int r, ret = -1;

	if (o->audit_file == NULL)
		return 0;
	if (pam_get_item(pamh, PAM_SERVICE, &item) == PAM_SUCCESS && item != NULL)
		service = item;
	if (pam_get_item(pamh, PAM_RHOST, &item) == PAM_SUCCESS && item != NULL)
		rhost = item;
	snprintf(resource, sizeof(resource), "%s %s", service, user != NULL ? user : "?");

	memset(&ev, 0, sizeof(ev));
	if (id != NULL && id->token != NULL)
		agentid_audit_event_set_token(&ev, id->token);
	ev.event = allowed ? "login.allowed" : "login.denied";
	ev.resource = resource;
	ev.decision = allowed ? "allow" : "deny";
	ev.reason = reason;
	ev.client = rhost;
	if (detail != NULL && *detail != '\0') {
		if ((extra = json_pack("{s:s}", "detail", detail)) == NULL)
			goto out;
		ev.extra = extra;
	}

	agentid_audit_config_init(&cfg);
	cfg.path = o->audit_file;
	cfg.component = "pam";
	cfg.signing_key_path = o->audit_key;
	agentid_error_clear(&err);
	if ((r = agentid_audit_open(&cfg, &a, &err)) != 0) {
		pam_syslog(pamh, LOG_ERR, "audit log %s: %s %s", o->audit_file, agentid_strerror(r),
		    err.detail);
		goto out;
	}
	if ((r = agentid_audit_append(a, &ev)) != 0) {
		pam_syslog(
		    pamh, LOG_ERR, "audit log %s: append: %s", o->audit_file, agentid_strerror(r));
		goto out;
	}
	ret = 0;
out:
	if (a != NULL && (r = agentid_audit_close(a)) != 0) {
		pam_syslog(
		    pamh, LOG_ERR, "audit log %s: close: %s", o->audit_file, agentid_strerror(r));
		ret = -1;
	}
	json_decref(extra);
	return ret;
}
