/*
 * Remote trust sources: SPIFFE bundles from a trust domain's bundle_url
 * (the https_web profile of a bundle endpoint) and JWK Sets from an
 * external issuer's jwks_url.
 *
 * The main thread fetches them when it starts, on SIGHUP and on the refresh
 * timer, and keeps the last good body of each source; runtimes are built
 * from those bodies.  A fetch that fails -- endpoint down, a certificate
 * not signed by bundle_ca / jwks_ca, a body that does not parse -- leaves
 * the last good keys in place: stale keys keep working, and the age of
 * every source is on /metrics so that staleness is visible.  A source that
 * never succeeded has no keys, so tokens that need it are refused.
 *
 * The refresh period follows the bundle's spiffe_refresh_hint, raised to
 * key_refresh.min_interval so that a tiny hint cannot make the server
 * hammer an endpoint; sources without a hint use key_refresh.interval.
 * Only the main thread changes the sources; workers read them under the
 * lock to render /metrics.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "exchange.h"

/* A failing source is retried at least this often (seconds), never below min_interval. */
#define XC_REMOTE_RETRY 30
/* No refresh period longer than a day, whatever a bundle suggests. */
#define XC_REMOTE_MAX_INTERVAL 86400
/* While a source keeps failing the same way, one warning per this many seconds. */
#define XC_REMOTE_WARN_EVERY 300

struct source {
	enum xc_remote_kind kind;
	char *name; /* trust domain or issuer */
	char *url;
	char *ca; /* NULL: the system store */
	char *body; /* last good body, NUL-terminated, or NULL (agentid_free) */
	size_t len;
	char *etag; /* of body (agentid_free) */
	int64_t hint; /* spiffe_refresh_hint of body; -1 when none */
	time_t ok_at; /* last successful fetch; 0 never */
	unsigned long failures;
	unsigned long streak; /* failures since the last success */
	time_t warned_at;
	char error[256]; /* why the last fetch failed */
	int used;
};

static pthread_mutex_t src_lock = PTHREAD_MUTEX_INITIALIZER;
static struct source **srcs;
static size_t n_srcs;

static const char *
kind_name(enum xc_remote_kind k)
{
	return k == XC_REMOTE_BUNDLE ? "bundle" : "jwks";
}

static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static struct source *
find(enum xc_remote_kind kind, const char *name, const char *url, const char *ca)
{
	size_t i;

	for (i = 0; i < n_srcs; i++)
		if (srcs[i]->kind == kind && strcmp(srcs[i]->name, name) == 0
		    && strcmp(srcs[i]->url, url) == 0 && same(srcs[i]->ca, ca))
			return srcs[i];
	return NULL;
}

static void
source_free(struct source *s)
{
	if (s == NULL)
		return;
	free(s->name);
	free(s->url);
	free(s->ca);
	agentid_free(s->body);
	agentid_free(s->etag);
	free(s);
}

static struct source *
add(enum xc_remote_kind kind, const char *name, const char *url, const char *ca)
{
	struct source *s, **n;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->kind = kind;
	s->hint = -1;
	s->name = strdup(name);
	s->url = strdup(url);
	s->ca = ca != NULL ? strdup(ca) : NULL;
	if (s->name == NULL || s->url == NULL || (ca != NULL && s->ca == NULL)) {
		source_free(s);
		return NULL;
	}
	/* realloc may move the array that /metrics walks: under the lock. */
	pthread_mutex_lock(&src_lock);
	if ((n = realloc(srcs, (n_srcs + 1) * sizeof(*srcs))) == NULL) {
		pthread_mutex_unlock(&src_lock);
		source_free(s);
		return NULL;
	}
	srcs = n;
	srcs[n_srcs++] = s;
	pthread_mutex_unlock(&src_lock);
	return s;
}

/* Parses body as the source's kind would be used; 0 and *hint, or -1 with why. */
static int
validate(
    const struct source *s, const char *body, size_t len, int64_t *hint, char *why, size_t whylen)
{
	struct agentid_bundle *b = NULL;
	struct agentid_keyset *ks = NULL;
	struct agentid_error err;
	int r;

	*hint = -1;
	agentid_error_clear(&err);
	if (s->kind == XC_REMOTE_BUNDLE) {
		if ((r = agentid_bundle_parse(s->name, body, len, &b, &err)) == 0)
			*hint = agentid_bundle_refresh_hint(b);
		agentid_bundle_free(b);
	} else {
		r = agentid_keyset_parse(body, len, &ks, &err);
		agentid_keyset_free(ks);
	}
	if (r == 0)
		return 0;
	snprintf(why, whylen, "bad %s: %s%s%s", s->kind == XC_REMOTE_BUNDLE ? "bundle" : "JWKS",
	    r == AGENTID_EREJECTED ? agentid_reason_text(err.reason) : agentid_strerror(r),
	    err.detail[0] ? ": " : "", err.detail);
	return -1;
}

static void
failed(struct source *s, const char *why)
{
	time_t now = time(NULL);
	int changed;

	pthread_mutex_lock(&src_lock);
	changed = strcmp(s->error, why) != 0;
	snprintf(s->error, sizeof(s->error), "%s", why);
	s->failures++;
	s->streak++;
	pthread_mutex_unlock(&src_lock);
	if (s->streak == 1 || changed || now - s->warned_at >= XC_REMOTE_WARN_EVERY) {
		s->warned_at = now;
		if (s->body != NULL)
			xc_log(AGENTID_LOG_WARN,
			    "%s %s: %s; keeping the keys fetched %ld s ago (%lu failure(s) in a "
			    "row)",
			    kind_name(s->kind), s->name, why, (long)(now - s->ok_at), s->streak);
		else
			xc_log(AGENTID_LOG_ERROR,
			    "%s %s: %s; no keys: its tokens are refused (%lu failure(s) in a row)",
			    kind_name(s->kind), s->name, why, s->streak);
	} else
		xc_log(AGENTID_LOG_DEBUG, "%s %s: %s", kind_name(s->kind), s->name, why);
}

/* One fetch; 1 when the keys changed, 0 when not (or when the fetch failed). */
static int
fetch(struct source *s)
{
	struct agentid_fetch_opts o;
	struct agentid_fetch_result res;
	struct agentid_error err;
	char why[256];
	int64_t hint;
	int r, changed = 0;

	agentid_fetch_opts_init(&o);
	o.cafile = s->ca;
	o.etag = s->body != NULL ? s->etag : NULL;
	o.accept = "application/json";
	memset(&res, 0, sizeof(res));
	agentid_error_clear(&err);
	r = agentid_fetch(s->url, &o, &res, &err);
	if (r != 0 || (res.status != 200 && !res.not_modified)) {
		/* The library's detail: "fetch failed: <curl's reason>" or "HTTP status N". */
		if (strncmp(err.detail, "fetch failed: ", 14) == 0)
			snprintf(why, sizeof(why), "%s: %s", s->url, err.detail);
		else if (err.detail[0] != '\0')
			snprintf(why, sizeof(why), "%s: fetch failed: %s", s->url, err.detail);
		else if (res.status != 0)
			snprintf(why, sizeof(why), "%s: fetch failed: HTTP status %ld", s->url,
			    res.status);
		else
			snprintf(
			    why, sizeof(why), "%s: fetch failed: %s", s->url, agentid_strerror(r));
		failed(s, why);
		goto out;
	}
	if (!res.not_modified) {
		if (validate(s, res.body, res.len, &hint, why, sizeof(why)) != 0) {
			failed(s, why);
			goto out;
		}
		if (s->body == NULL || s->len != res.len || memcmp(s->body, res.body, res.len) != 0)
			changed = 1;
	}
	if (s->streak > 0)
		xc_log(AGENTID_LOG_INFO, "%s %s: fetched again after %lu failure(s)",
		    kind_name(s->kind), s->name, s->streak);
	pthread_mutex_lock(&src_lock);
	s->ok_at = time(NULL);
	s->streak = 0;
	s->error[0] = '\0';
	if (changed) {
		/* The fetched body and ETag change hands (library allocations). */
		agentid_free(s->body);
		s->body = res.body;
		s->len = res.len;
		res.body = NULL;
		s->hint = hint;
		agentid_free(s->etag);
		s->etag = res.etag;
		res.etag = NULL;
	}
	pthread_mutex_unlock(&src_lock);
out:
	agentid_fetch_result_free(&res);
	return changed;
}

static int
source_of(const struct xc_config *c, size_t i, enum xc_remote_kind *kind, const char **name,
    const char **url, const char **ca)
{
	if (i < c->n_tds) {
		*kind = XC_REMOTE_BUNDLE;
		*name = c->tds[i].name;
		*url = c->tds[i].bundle_url;
		*ca = c->tds[i].bundle_ca;
	} else {
		*kind = XC_REMOTE_JWKS;
		*name = c->ext[i - c->n_tds].issuer;
		*url = c->ext[i - c->n_tds].jwks_url;
		*ca = c->ext[i - c->n_tds].jwks_ca;
	}
	return *url != NULL;
}

int
xc_remote_refresh(const struct xc_config *c)
{
	enum xc_remote_kind kind;
	const char *name, *url, *ca;
	struct source *s;
	size_t i;
	int changed = 0;

	for (i = 0; i < c->n_tds + c->n_ext; i++) {
		if (!source_of(c, i, &kind, &name, &url, &ca))
			continue;
		if ((s = find(kind, name, url, ca)) == NULL
		    && (s = add(kind, name, url, ca)) == NULL)
			return changed;
		changed |= fetch(s);
	}
	return changed;
}

int
xc_remote_body(enum xc_remote_kind kind, const char *name, const char *url, const char *ca,
    char **body, size_t *len, char *errbuf, size_t errlen)
{
	struct source *s;

	*body = NULL;
	*len = 0;
	if ((s = find(kind, name, url, ca)) == NULL) {
		if ((s = add(kind, name, url, ca)) == NULL) {
			snprintf(errbuf, errlen, "out of memory");
			return -1;
		}
		(void)fetch(s);
	}
	if (s->body == NULL) {
		snprintf(errbuf, errlen, "%s", s->error[0] ? s->error : "no keys fetched yet");
		return -1;
	}
	if ((*body = malloc(s->len + 1)) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	memcpy(*body, s->body, s->len + 1);
	*len = s->len;
	return 0;
}

void
xc_remote_retain(const struct xc_config *c)
{
	enum xc_remote_kind kind;
	const char *name, *url, *ca;
	struct source *s;
	size_t i, j;

	for (i = 0; i < n_srcs; i++)
		srcs[i]->used = 0;
	for (i = 0; i < c->n_tds + c->n_ext; i++)
		if (source_of(c, i, &kind, &name, &url, &ca)
		    && (s = find(kind, name, url, ca)) != NULL)
			s->used = 1;
	pthread_mutex_lock(&src_lock);
	for (i = j = 0; i < n_srcs; i++) {
		if (srcs[i]->used)
			srcs[j++] = srcs[i];
		else
			source_free(srcs[i]);
	}
	n_srcs = j;
	pthread_mutex_unlock(&src_lock);
}

long
xc_remote_interval(const struct xc_config *c, int *raised)
{
	enum xc_remote_kind kind;
	const char *name, *url, *ca;
	struct source *s;
	long best = 0, own;
	size_t i;

	*raised = 0;
	for (i = 0; i < c->n_tds + c->n_ext; i++) {
		if (!source_of(c, i, &kind, &name, &url, &ca))
			continue;
		s = find(kind, name, url, ca);
		own = c->refresh_interval;
		/* A hint of 0 suggests nothing; it does not mean "refresh constantly". */
		if (s != NULL && s->hint > 0)
			own = s->hint < XC_REMOTE_MAX_INTERVAL ? (long)s->hint
			                                       : XC_REMOTE_MAX_INTERVAL;
		if ((s == NULL || s->streak > 0) && own > XC_REMOTE_RETRY)
			own = XC_REMOTE_RETRY;
		if (own < c->refresh_min) {
			if (s != NULL && s->hint > 0)
				*raised = 1;
			own = c->refresh_min;
		}
		if (best == 0 || own < best)
			best = own;
	}
	return best;
}

time_t
xc_remote_oldest(const struct xc_config *c, time_t dflt)
{
	enum xc_remote_kind kind;
	const char *name, *url, *ca;
	struct source *s;
	time_t oldest = dflt;
	size_t i;

	for (i = 0; i < c->n_tds + c->n_ext; i++) {
		if (!source_of(c, i, &kind, &name, &url, &ca))
			continue;
		if ((s = find(kind, name, url, ca)) == NULL || s->body == NULL)
			return 0;
		if (s->ok_at < oldest)
			oldest = s->ok_at;
	}
	return oldest;
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void
label(struct evbuffer *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
}

void
xc_remote_metrics(struct evbuffer *b)
{
	time_t now = time(NULL);
	size_t i;
	int pass;

	pthread_mutex_lock(&src_lock);
	if (n_srcs == 0) {
		pthread_mutex_unlock(&src_lock);
		return;
	}
	for (pass = 0; pass < 2; pass++) {
		if (pass == 0)
			evbuffer_add_printf(b,
			    "# HELP agentid_exchange_remote_keys_age_seconds Seconds since the "
			    "keys "
			    "of a bundle_url or jwks_url were last fetched; -1: never (no keys).\n"
			    "# TYPE agentid_exchange_remote_keys_age_seconds gauge\n");
		else
			evbuffer_add_printf(b,
			    "# HELP agentid_exchange_remote_keys_failures_total Failed fetches of "
			    "a bundle_url or jwks_url.\n"
			    "# TYPE agentid_exchange_remote_keys_failures_total counter\n");
		for (i = 0; i < n_srcs; i++) {
			const struct source *s = srcs[i];

			evbuffer_add_printf(b,
			    "agentid_exchange_remote_keys_%s{kind=\"%s\",name=\"",
			    pass == 0 ? "age_seconds" : "failures_total", kind_name(s->kind));
			label(b, s->name);
			if (pass == 0)
				evbuffer_add_printf(
				    b, "\"} %ld\n", s->body != NULL ? (long)(now - s->ok_at) : -1L);
			else
				evbuffer_add_printf(b, "\"} %lu\n", s->failures);
		}
	}
	pthread_mutex_unlock(&src_lock);
}

void
xc_remote_free(void)
{
	size_t i;

	pthread_mutex_lock(&src_lock);
	for (i = 0; i < n_srcs; i++)
		source_free(srcs[i]);
	free(srcs);
	srcs = NULL;
	n_srcs = 0;
	pthread_mutex_unlock(&src_lock);
}
