/*
 * agentid: a small HTTPS GET client (libcurl) for bundles, JWK Sets and
 * status lists.  Blocking: call it off any event loop (a refresh thread).
 */
#ifndef AGENTID_FETCH_H
#define AGENTID_FETCH_H

#include <agentid/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AGENTID_FETCH_DEFAULT_TIMEOUT_MS 5000
#define AGENTID_FETCH_DEFAULT_MAX_BYTES (4u * 1024 * 1024)

struct agentid_fetch_opts {
	long timeout_ms; /* whole transfer; default 5000 */
	long connect_timeout_ms; /* default: timeout_ms */
	size_t max_bytes; /* larger bodies fail with AGENTID_ERANGE; default 4 MiB */
	const char *cafile; /* CA bundle for the server certificate; NULL: system store */
	const char *capath;
	const char *etag; /* sent as If-None-Match */
	const char *accept; /* Accept header, e.g. "application/statuslist+jwt" */
	int allow_http; /* permit http:// (loopback tests only) */
	int max_redirects; /* default 3; redirects never leave https (or http when allowed) */
};

void agentid_fetch_opts_init(struct agentid_fetch_opts *o);

struct agentid_fetch_result {
	long status; /* HTTP status */
	char *body; /* NUL-terminated; NULL on 304 */
	size_t len;
	char *etag; /* ETag of the response, or NULL */
	char *content_type;
	int not_modified; /* 1 on 304 */
};

/*
 * GET url.  0 on 200 (body set) and on 304 (not_modified set); AGENTID_EIO
 * on a network or TLS failure or any other HTTP status (res->status says
 * which, err->detail says why); AGENTID_ERANGE when the body exceeds
 * max_bytes (the transfer is aborted as soon as it does); AGENTID_EINVAL
 * for a URL that is not https (or http with allow_http).  Release res with
 * agentid_fetch_result_free() in every case.
 */
int agentid_fetch(const char *url, const struct agentid_fetch_opts *opts,
    struct agentid_fetch_result *res, struct agentid_error *err);
void agentid_fetch_result_free(struct agentid_fetch_result *res);

#ifdef __cplusplus
}
#endif
#endif
