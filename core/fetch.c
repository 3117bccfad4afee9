/*
 * A small HTTPS GET client on libcurl for bundles, JWK Sets and status
 * lists: bounded time, bounded size, TLS always verified, no redirect to a
 * weaker scheme, conditional requests with ETag.
 */
#include "config.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "internal.h"

#include <agentid/fetch.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_failed;

static void
curl_init(void)
{
	/* Once per process; libcurl wants this before any handle exists, from one thread. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		curl_init_failed = 1;
}

AGENTID_EXPORT void
agentid_fetch_opts_init(struct agentid_fetch_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = AGENTID_FETCH_DEFAULT_TIMEOUT_MS;
	o->max_bytes = AGENTID_FETCH_DEFAULT_MAX_BYTES;
	o->max_redirects = 3;
}

AGENTID_EXPORT void
agentid_fetch_result_free(struct agentid_fetch_result *res)
{
	if (res == NULL)
		return;
	agentid_free(res->body);
	agentid_free(res->etag);
	agentid_free(res->content_type);
	memset(res, 0, sizeof(*res));
}

struct fetch_ctx {
	struct agentid_buf body;
	char *etag;
	int too_large;
	int nomem;
};

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct fetch_ctx *ctx = arg;
	size_t n = size * nmemb;
	int r;

	/* Returning less than n aborts the transfer: the limit holds while downloading. */
	if ((r = agentid_buf_append(&ctx->body, p, n)) != 0) {
		if (r == AGENTID_ERANGE)
			ctx->too_large = 1;
		else
			ctx->nomem = 1;
		return 0;
	}
	return n;
}

static size_t
on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct fetch_ctx *ctx = arg;
	size_t n = size * nmemb, i = 5, end = n;

	if (n < 5 || strncasecmp(p, "etag:", 5) != 0)
		return n;
	/* A redirect's ETag must not survive into the final response. */
	agentid_free(ctx->etag);
	ctx->etag = NULL;
	while (i < end && (p[i] == ' ' || p[i] == '\t'))
		i++;
	while (end > i && isspace((unsigned char)p[end - 1]))
		end--;
	/* An ETag is sent back verbatim in a header: refuse anything unprintable. */
	for (size_t k = i; k < end; k++)
		if ((unsigned char)p[k] < 0x20 || (unsigned char)p[k] >= 0x7f)
			return n;
	if (end > i && end - i <= 256)
		ctx->etag = agentid_strndup(p + i, end - i);
	return n;
}

static int
scheme_allowed(const char *url, int allow_http)
{
	if (strncasecmp(url, "https://", 8) == 0)
		return 1;
	return allow_http && strncasecmp(url, "http://", 7) == 0;
}

AGENTID_EXPORT int
agentid_fetch(const char *url, const struct agentid_fetch_opts *opts,
    struct agentid_fetch_result *res, struct agentid_error *err)
{
	struct agentid_fetch_opts defaults;
	struct fetch_ctx ctx;
	struct curl_slist *hdrs = NULL;
	struct agentid_buf hb;
	char errbuf[CURL_ERROR_SIZE];
	const char *ctype = NULL;
	CURL *c = NULL;
	CURLcode cr;
	long status = 0;
	int r = AGENTID_EIO;

	memset(&ctx, 0, sizeof(ctx));
	agentid_buf_init(&hb, 1024);
	if (res != NULL)
		memset(res, 0, sizeof(*res));
	if (url == NULL || res == NULL)
		return AGENTID_EINVAL;
	if (opts == NULL) {
		agentid_fetch_opts_init(&defaults);
		opts = &defaults;
	}
	if (!scheme_allowed(url, opts->allow_http)) {
		agentid_error_set(err, AGENTID_R_MALFORMED, "URL scheme not allowed (https only)");
		return AGENTID_EINVAL;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_failed) {
		agentid_error_set(err, AGENTID_R_INTERNAL, "libcurl initialisation failed");
		return AGENTID_EIO;
	}
	agentid_buf_init(
	    &ctx.body, opts->max_bytes != 0 ? opts->max_bytes : AGENTID_FETCH_DEFAULT_MAX_BYTES);
	if ((c = curl_easy_init()) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	errbuf[0] = '\0';
	if (opts->etag != NULL) {
		if ((r = agentid_buf_printf(&hb, "If-None-Match: %s", opts->etag)) != 0)
			goto out;
		if ((hdrs = curl_slist_append(hdrs, hb.data)) == NULL) {
			r = AGENTID_ENOMEM;
			goto out;
		}
		hb.len = 0;
	}
	if (opts->accept != NULL) {
		if ((r = agentid_buf_printf(&hb, "Accept: %s", opts->accept)) != 0)
			goto out;
		if ((hdrs = curl_slist_append(hdrs, hb.data)) == NULL) {
			r = AGENTID_ENOMEM;
			goto out;
		}
	}
	r = AGENTID_EIO;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, opts->allow_http ? "https,http" : "https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, opts->allow_http ? "https,http" : "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, opts->max_redirects > 0 ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)opts->max_redirects);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
	    opts->timeout_ms > 0 ? opts->timeout_ms : (long)AGENTID_FETCH_DEFAULT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	    opts->connect_timeout_ms > 0
	        ? opts->connect_timeout_ms
	        : (opts->timeout_ms > 0 ? opts->timeout_ms
	                                : (long)AGENTID_FETCH_DEFAULT_TIMEOUT_MS));
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (opts->cafile != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, opts->cafile);
	if (opts->capath != NULL)
		curl_easy_setopt(c, CURLOPT_CAPATH, opts->capath);
	/* Bodies are bounded by the write callback; this is an early refusal. */
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)ctx.body.max);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "agentid/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &ctx);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &ctx);

	cr = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	res->status = status;
	if (ctx.nomem) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	if (ctx.too_large || cr == CURLE_FILESIZE_EXCEEDED) {
		agentid_error_set(
		    err, AGENTID_R_TOO_LARGE, "response larger than %zu bytes", ctx.body.max);
		r = AGENTID_ERANGE;
		goto out;
	}
	if (cr != CURLE_OK) {
		agentid_error_set(err, AGENTID_R_STATUS_UNAVAILABLE, "fetch failed: %s",
		    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cr));
		goto out;
	}
	if (status == 304) {
		res->not_modified = 1;
	} else if (status == 200) {
		if (ctx.body.data == NULL && agentid_buf_append(&ctx.body, "", 0) != 0) {
			r = AGENTID_ENOMEM;
			goto out;
		}
		res->body = agentid_buf_steal(&ctx.body, &res->len);
	} else {
		agentid_error_set(err, AGENTID_R_STATUS_UNAVAILABLE, "HTTP status %ld", status);
		goto out;
	}
	if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK && ctype != NULL)
		res->content_type = agentid_strdup(ctype);
	res->etag = ctx.etag;
	ctx.etag = NULL;
	r = 0;
out:
	if (c != NULL)
		curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	agentid_buf_free(&hb);
	agentid_buf_free(&ctx.body);
	agentid_free(ctx.etag);
	return r;
}
