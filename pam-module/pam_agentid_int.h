/*
 * pam_agentid: private declarations shared by the files of the module.
 *
 * The module is a thin adapter: options.c turns module arguments and the
 * conf= file into struct pa_opts, mapfile.c maps a SPIFFE ID to a local
 * account, glue.c talks to the audit and status-list parts of libagentid,
 * and pam_agentid.c holds the pam_sm_* entry points.  Nothing here is
 * exported from pam_agentid.so (see pam_agentid.sym).
 */
#ifndef PAM_AGENTID_INT_H
#define PAM_AGENTID_INT_H

#include <stdint.h>
#include <time.h>

#include <security/pam_modules.h>

#include <agentid/agentid.h>

/* Upper bound of every list option (bundle=, audience=, scope=, ...). */
#define PA_LIST_MAX 16
/* Longest line accepted in the conf= and map= files. */
#define PA_LINE_MAX 4096

enum pa_source {
	PA_SRC_CONV = 1, /* PAM_AUTHTOK, else a prompt through the conversation */
	PA_SRC_ENV, /* pam_getenv(), then getenv() */
	PA_SRC_FILE /* a file; %u is replaced by PAM_USER */
};

enum pa_map_by {
	PA_MAP_AGENT = 0, /* the acting agent (act.sub, or sub without act) */
	PA_MAP_SUBJECT /* the token's sub */
};

struct pa_list {
	char *v[PA_LIST_MAX];
	size_t n;
};

/* Module options.  Every string is owned by the struct (pa_opts_free). */
struct pa_opts {
	/* verifier */
	struct pa_list bundles;
	struct pa_list issuers;
	struct pa_list audiences;
	struct pa_list scopes;
	struct pa_list allow_agents;
	struct pa_list allow_actors;
	struct pa_list allow_subjects;
	enum agentid_profile profile;
	int scope_any;
	int max_depth; /* -1: library default */
	long leeway; /* -1: library default */
	unsigned algs; /* 0: profile default */
	size_t max_token_len; /* 0: library default */

	/* where the token comes from, in order */
	enum pa_source sources[3];
	size_t n_sources;
	char *prompt;
	char *env_name;
	char *file;
	int use_authtok; /* take PAM_AUTHTOK when an earlier module set it */

	/* account mapping */
	char *map_file;
	char *map_claim;
	enum pa_map_by map_by;

	/* revocation (status lists) */
	char *status; /* file path or http(s) URL */
	long status_timeout_ms; /* hard timeout of a fetch */
	long status_max_age; /* seconds a list may be used past its fetch time */
	int status_fail_open; /* accept when no fresh list can be had */
	int status_required; /* refuse tokens without a status claim */
	struct pa_list status_bundles; /* keys that sign status lists; default: bundles */

	/* audit */
	char *audit_file;
	char *audit_key;
	int audit_fail_open; /* allow a login even when its record cannot be written */

	/* behaviour */
	int debug;
	int show_reason; /* tell the user why a token was refused */
	int no_export; /* do not set AGENTID_* in the PAM environment */
};

/* A verified login, kept with pam_set_data() for account and session. */
struct pa_ident {
	char *user; /* PAM_USER it was verified for */
	struct agentid_token *token; /* the verified token (claims, chain, scopes) */
};

/* PAM-side reasons, beside the library's table (agentid_reason_code). */
#define PA_REASON_NO_TOKEN "no_token"
#define PA_REASON_USER_UNKNOWN "user_unknown"
#define PA_REASON_NOT_MAPPED "not_mapped"
#define PA_REASON_CONFIG "config_error"
#define PA_REASON_USER_CHANGED "user_changed"

/* options.c */
void pa_opts_init(struct pa_opts *o);
/*
 * Defaults, then the conf= file, then the other key=value arguments.
 * for_auth selects the checks of the auth phase (bundle, audience and a
 * mapping are required there).  0, or -1 after a pam_syslog() of the cause.
 */
int pa_opts_parse(pam_handle_t *pamh, int argc, const char **argv, int for_auth, struct pa_opts *o);
void pa_opts_free(struct pa_opts *o);
/* 0 when path is a regular file not writable by group/others and owned by root or us. */
int pa_check_file(pam_handle_t *pamh, const char *what, const char *path);

/* mapfile.c */
/*
 * Looks id up in the map file (first matching pattern wins) and compares
 * the mapped local user with user.  Returns 1 when id maps to user, 0 when
 * it maps to nobody or to another user (*mapped is set to the user it
 * maps to, or NULL), -1 on an unreadable or malformed file (logged).
 * *mapped is to free().
 */
int pa_map_lookup(
    pam_handle_t *pamh, const char *path, const char *id, const char *user, char **mapped);
/* 1 when the claim is a string equal to user or an array holding it. */
int pa_map_claim(const struct agentid_token *t, const char *claim, const char *user);

/* glue.c: the audit log and revocation status lists */
/*
 * Checks the token's status-list entry at time now.  0 when it is valid
 * (or there is nothing to check); AGENTID_EREJECTED with REVOKED,
 * SUSPENDED or STATUS_UNAVAILABLE; other negative codes on failure.
 */
int pa_status_check(pam_handle_t *pamh, const struct pa_opts *o, const char *uri, int64_t idx,
    time_t now, struct agentid_error *err);
/*
 * Appends login.allowed / login.denied to the audit log when audit= is set.
 * 0 when written (or not configured), -1 when the record could not be
 * written (logged).
 */
int pa_audit_login(pam_handle_t *pamh, const struct pa_opts *o, int allowed,
    const struct pa_ident *id, const char *user, const char *reason, const char *detail);

/* pam_agentid.c */
/* Copies s with every byte outside printable ASCII replaced by '?', at most max bytes. */
void pa_sanitize(char *dst, size_t dstsz, const char *s);

#endif
