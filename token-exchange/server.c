/*
 * The HTTP(S) server: one event loop per worker thread, each with its own
 * evhttp instances bound to SO_REUSEPORT listeners, so the kernel spreads
 * connections over the workers and no request ever crosses threads.
 *
 * TLS is bufferevent_openssl with one SSL_CTX per runtime.  Client
 * certificates are requested (or required) in the handshake but the verify
 * callback accepts any chain: whether a certificate is a valid X.509-SVID
 * of a trusted trust domain is decided by agentid_x509svid_verify against
 * the current trust bundles, which OpenSSL's own store could not express
 * (per-trust-domain authorities, SPIFFE leaf rules).  The result is cached
 * on the connection, keyed by the runtime generation, so keep-alive clients
 * pay for it once.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/err.h>

#include "exchange.h"

#define MAX_WORKERS 256
#define MAX_LISTENS 16

struct worker;

/* One worker's share of a unix-domain listener (see bind_unix). */
struct unix_slot {
	struct worker *w;
	size_t i; /* the listener's index in the configuration */
	int tls;
	struct evhttp *http; /* this worker's evhttp for this socket alone */
	struct evconnlistener *lev; /* NULL once stopped; under unix_lock */
};

struct worker {
	int id;
	pthread_t th;
	struct event_base *base;
	struct evhttp *http_tls;
	struct evhttp *http_plain;
	struct event *stop_ev;
	struct xc_runtime *rt;
	struct xc_store *store;
	struct xc_batch *batch;
	struct unix_slot unix_slots[MAX_LISTENS];
};

struct peer_cache {
	unsigned generation;
	char *id;
	int bad;
	struct agentid_error err;
};

static struct worker *workers;
static int n_workers;
static int peer_idx = -1;

static pthread_mutex_t rt_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t unix_lock = PTHREAD_MUTEX_INITIALIZER;
static struct xc_runtime *rt_latest;
static atomic_uint rt_generation;

/* ---------------------------------------------------------------- runtime publication */

struct xc_runtime *
xc_runtime_ref(struct xc_runtime *rt)
{
	if (rt != NULL)
		atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
	return rt;
}

void
xc_runtime_publish(struct xc_runtime *rt)
{
	struct xc_runtime *old;

	pthread_mutex_lock(&rt_lock);
	old = rt_latest;
	rt_latest = xc_runtime_ref(rt);
	atomic_store(&rt_generation, rt->generation);
	pthread_mutex_unlock(&rt_lock);
	xc_runtime_unref(old);
}

struct xc_runtime *
xc_runtime_current(void)
{
	struct xc_runtime *rt;

	pthread_mutex_lock(&rt_lock);
	rt = xc_runtime_ref(rt_latest);
	pthread_mutex_unlock(&rt_lock);
	return rt;
}

static void
worker_refresh(struct worker *w)
{
	if (w->rt != NULL && w->rt->generation == atomic_load(&rt_generation))
		return;
	xc_runtime_unref(w->rt);
	w->rt = xc_runtime_current();
}

/* ---------------------------------------------------------------- TLS */

static void
peer_cache_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct peer_cache *pc = ptr;

	if (pc != NULL) {
		free(pc->id);
		free(pc);
	}
}

static int
accept_any_cert(int preverify_ok, X509_STORE_CTX *ctx)
{
	/* The application validates the chain as an X.509-SVID; see the file comment. */
	return 1;
}

int
xc_tls_ctx_new(const struct xc_config *c, SSL_CTX **out, char *errbuf, size_t errlen)
{
	SSL_CTX *ctx;
	int mode = SSL_VERIFY_NONE;
	unsigned long e;

	*out = NULL;
	if (peer_idx < 0)
		peer_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, peer_cache_free);
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1) {
		e = ERR_get_error();
		snprintf(errbuf, errlen, "%s: cannot load TLS certificate chain: %s", c->tls_cert,
		    ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "error");
		SSL_CTX_free(ctx);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1
	    || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(errbuf, errlen, "%s: cannot load the TLS key, or it does not match",
		    c->tls_key);
		SSL_CTX_free(ctx);
		return -1;
	}
	if (c->client_cert == XC_CLIENT_CERT_OPTIONAL)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
	else if (c->client_cert == XC_CLIENT_CERT_REQUIRED)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(ctx, mode, mode != SSL_VERIFY_NONE ? accept_any_cert : NULL);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"agentid-exchange", 16);
	*out = ctx;
	return 0;
fail:
	snprintf(errbuf, errlen, "cannot create TLS context");
	return -1;
}

static struct bufferevent *
bev_tls(struct event_base *base, void *arg)
{
	struct worker *w = arg;
	SSL *ssl;

	worker_refresh(w);
	if (w->rt->ssl_ctx == NULL || (ssl = SSL_new(w->rt->ssl_ctx)) == NULL)
		return NULL;
	return xc_conn_bev_new(base, ssl, w->rt->cfg->request_timeout, w->rt->cfg->max_connections);
}

static struct bufferevent *
bev_plain(struct event_base *base, void *arg)
{
	struct worker *w = arg;

	worker_refresh(w);
	return xc_conn_bev_new(
	    base, NULL, w->rt->cfg->request_timeout, w->rt->cfg->max_connections);
}

/* Fills r->peer_* from the connection's client certificate, verifying it once per runtime. */
static void
peer_identify(struct xc_req *r)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(r->req);
	struct bufferevent *bev;
	struct peer_cache *pc;
	X509 *cert;
	SSL *ssl;

	if (!r->tls || conn == NULL || (bev = evhttp_connection_get_bufferevent(conn)) == NULL
	    || (ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return;
	if ((cert = SSL_get0_peer_certificate(ssl)) == NULL)
		return;
	r->peer_cert = cert;
	pc = SSL_get_ex_data(ssl, peer_idx);
	if (pc == NULL) {
		if ((pc = calloc(1, sizeof(*pc))) == NULL) {
			r->peer_cert_bad = 1;
			agentid_error_set(&r->peer_err, AGENTID_R_INTERNAL, "out of memory");
			return;
		}
		SSL_set_ex_data(ssl, peer_idx, pc);
	} else if (pc->generation == r->rt->generation) {
		/* Cached, but the certificate may have expired since. */
		if (!pc->bad && X509_cmp_time(X509_get0_notAfter(cert), NULL) > 0) {
			r->peer_id = pc->id;
			return;
		}
		if (pc->bad) {
			r->peer_cert_bad = 1;
			r->peer_err = pc->err;
			return;
		}
	}
	free(pc->id);
	pc->id = NULL;
	pc->bad = 0;
	agentid_error_clear(&pc->err);
	pc->generation = r->rt->generation;
	/* The server side of SSL_get_peer_cert_chain excludes the leaf: it is the intermediates. */
	if (agentid_x509svid_verify(
	        cert, SSL_get_peer_cert_chain(ssl), r->rt->trust, time(NULL), &pc->id, &pc->err)
	    != 0) {
		pc->bad = 1;
		r->peer_cert_bad = 1;
		r->peer_err = pc->err;
		return;
	}
	/* agentid_x509svid_verify hands out agentid_free() memory: keep a libc copy. */
	{
		char *copy = strdup(pc->id);

		agentid_free(pc->id);
		pc->id = copy;
		if (copy == NULL) {
			pc->bad = 1;
			r->peer_cert_bad = 1;
			agentid_error_set(&r->peer_err, AGENTID_R_INTERNAL, "out of memory");
			return;
		}
	}
	r->peer_id = pc->id;
}

/* ---------------------------------------------------------------- dispatch */

static void
send_static(struct xc_req *r, const char *body, const char *ctype)
{
	if (evhttp_request_get_command(r->req) != EVHTTP_REQ_GET
	    && evhttp_request_get_command(r->req) != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", "GET, HEAD");
		xc_send_plain_error(r, 405, "method_not_allowed");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Cache-Control", "max-age=60");
	xc_send_json_text(r, 200, body, ctype, 1);
}

/*
 * 200 while the node can serve; 503 naming the store while the database is
 * known to be unreachable, so a load balancer takes the node out of service
 * (the main thread keeps reconnecting; see store_pg.c).
 */
static void
send_health(struct xc_req *r)
{
	if (xc_store_available(r->store)) {
		send_static(r, "{\"status\":\"ok\"}", "application/json");
		return;
	}
	if (evhttp_request_get_command(r->req) != EVHTTP_REQ_GET
	    && evhttp_request_get_command(r->req) != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", "GET, HEAD");
		xc_send_plain_error(r, 405, "method_not_allowed");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Cache-Control", "no-store");
	xc_send_json_text(r, 503, "{\"status\":\"unavailable\",\"store\":\"unavailable\"}",
	    "application/json", 0);
}

static void
send_metrics(struct xc_req *r)
{
	struct evbuffer *b = evhttp_request_get_output_buffer(r->req);

	if (evhttp_request_get_command(r->req) != EVHTTP_REQ_GET) {
		xc_send_plain_error(r, 405, "method_not_allowed");
		return;
	}
	xc_metrics_render(b);
	evhttp_add_header(
	    evhttp_request_get_output_headers(r->req), "Content-Type", "text/plain; version=0.0.4");
	r->status = 200;
	evhttp_send_reply(r->req, 200, "OK", NULL);
}

static void
dispatch(struct evhttp_request *req, struct worker *w, int tls)
{
	struct xc_req r;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum xc_endpoint ep = XC_EP_OTHER;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	xc_conn_request(req);
	worker_refresh(w);
	memset(&r, 0, sizeof(r));
	r.req = req;
	r.rt = w->rt;
	r.store = w->store;
	r.batch = w->batch;
	r.t0 = t0;
	r.tls = tls;
	agentid_error_clear(&r.peer_err);
	if (path == NULL || path[0] == '\0')
		path = "/";
	if (strcmp(path, "/token") == 0) {
		ep = XC_EP_TOKEN;
		peer_identify(&r);
		xc_handle_token(&r);
	} else if (strcmp(path, "/revoke") == 0) {
		ep = XC_EP_REVOKE;
		peer_identify(&r);
		xc_handle_revoke(&r);
	} else if (strcmp(path, "/introspect") == 0) {
		ep = XC_EP_INTROSPECT;
		peer_identify(&r);
		xc_handle_introspect(&r);
	} else if (strcmp(path, "/admin/revoke") == 0) {
		ep = XC_EP_ADMIN;
		peer_identify(&r);
		xc_handle_admin_revoke(&r);
	} else if (strncmp(path, "/statuslists/", 13) == 0) {
		ep = XC_EP_STATUSLIST;
		xc_handle_statuslist(&r, path + 13);
	} else if (strcmp(path, "/jwks") == 0) {
		ep = XC_EP_JWKS;
		send_static(&r, r.rt->issuer->jwks_json, "application/jwk-set+json");
	} else if (strcmp(path, "/.well-known/oauth-authorization-server") == 0) {
		ep = XC_EP_METADATA;
		send_static(&r, r.rt->metadata_json, "application/json");
	} else if (strcmp(path, "/healthz") == 0) {
		ep = XC_EP_HEALTH;
		send_health(&r);
	} else if (strcmp(path, "/metrics") == 0) {
		ep = XC_EP_METRICS;
		send_metrics(&r);
	} else
		xc_send_plain_error(&r, 404, "not_found");
	/* A deferred response is counted when the ledger batch sends it. */
	if (r.deferred)
		return;
	xc_metrics_request(ep, r.status);
	if (ep == XC_EP_TOKEN) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		xc_metrics_exchange_latency(
		    (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
}

static void
gencb_tls(struct evhttp_request *req, void *arg)
{
	dispatch(req, arg, 1);
}

static void
gencb_plain(struct evhttp_request *req, void *arg)
{
	dispatch(req, arg, 0);
}

/* ---------------------------------------------------------------- workers */

static void
drained(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	event_base_loopexit(w->base, NULL);
}

static void
del_sock(struct evhttp_bound_socket *bs, void *arg)
{
	struct evhttp_bound_socket **list = arg;
	size_t i;

	for (i = 0; i < 32; i++)
		if (list[i] == NULL) {
			list[i] = bs;
			return;
		}
}

static void
stop_accepting(struct evhttp *http)
{
	struct evhttp_bound_socket *list[33];
	size_t i;

	if (http == NULL)
		return;
	memset(list, 0, sizeof(list));
	evhttp_foreach_bound_socket(http, del_sock, list);
	for (i = 0; list[i] != NULL; i++)
		evhttp_del_accept_socket(http, list[i]);
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv = { 1, 0 };

	size_t i;

	stop_accepting(w->http_tls);
	stop_accepting(w->http_plain);
	pthread_mutex_lock(&unix_lock);
	for (i = 0; i < MAX_LISTENS; i++) {
		stop_accepting(w->unix_slots[i].http);
		w->unix_slots[i].lev = NULL;
	}
	pthread_mutex_unlock(&unix_lock);
	/* Responses already queued get a second to reach their clients. */
	event_base_once(w->base, -1, EV_TIMEOUT, drained, w, &tv);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	/*
	 * A worker waiting for its turn on a unix socket may have nothing to
	 * watch (no TCP listener, no connection): it keeps running until
	 * drained() ends the loop.
	 */
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/*
 * Each request turns reading off and writing on and back again; with the
 * epoll change list those changes are merged into one epoll_ctl per file
 * descriptor and loop pass instead of up to four.  The flag's caveat
 * (descriptors cloned with dup) does not apply: sockets are never dup'ed.
 */
static struct event_base *
worker_base_new(void)
{
	struct event_config *cfg;
	struct event_base *base;

	if ((cfg = event_config_new()) == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

/*
 * Unix-domain listeners: one socket, made by the first worker, closed and
 * removed by the process after the workers stop.  SO_REUSEPORT does not
 * apply to unix sockets, and a listener per worker on the one socket would
 * wake every worker for each connection, all but one to find nothing to
 * accept.  Instead the workers take turns: each has its own listener on
 * the socket, but only one of them is enabled at a time.  The worker whose
 * listener accepts a connection disables its own and enables the next
 * worker's (bev_unix), so a connection wakes one thread and consecutive
 * connections go to consecutive workers.  Each worker gets an evhttp per
 * unix socket, because evhttp does not tell the bufferevent callback which
 * listener accepted.
 */
static int unix_fds[MAX_LISTENS]
    = { -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1 };
static char *unix_paths[MAX_LISTENS];

/* Hands the turn to accept on u's socket to the next worker. */
static void
unix_pass_on(struct unix_slot *u)
{
	struct unix_slot *next;

	if (n_workers < 2)
		return;
	/*
	 * Lock order: unix_lock, then a listener's lock, then its base's.  A
	 * stopping worker frees its listener under unix_lock, so next->lev is
	 * either live or NULL here; with no next listener this one keeps
	 * accepting.
	 */
	pthread_mutex_lock(&unix_lock);
	next = &workers[(u->w->id + 1) % n_workers].unix_slots[u->i];
	if (u->lev != NULL && next->lev != NULL && next != u) {
		evconnlistener_disable(u->lev);
		evconnlistener_enable(next->lev);
	}
	pthread_mutex_unlock(&unix_lock);
}

static struct bufferevent *
bev_unix(struct event_base *base, void *arg)
{
	struct unix_slot *u = arg;

	unix_pass_on(u);
	return u->tls ? bev_tls(base, u->w) : bev_plain(base, u->w);
}

static int
unix_socket(const struct xc_listen *l, char *errbuf, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(l->unix_path) >= sizeof(sun.sun_path)) {
		snprintf(errbuf, errlen, "unix socket path '%s' is too long", l->unix_path);
		return -1;
	}
	memcpy(sun.sun_path, l->unix_path, strlen(l->unix_path) + 1);
	/* A socket left by a previous run is replaced; anything else is an error. */
	if (lstat(l->unix_path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(l->unix_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0
	    || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0
	    || (l->unix_mode >= 0 && chmod(l->unix_path, (mode_t)l->unix_mode) != 0)
	    || listen(fd, 1024) != 0) {
		snprintf(errbuf, errlen, "cannot listen on unix socket %s: %s", l->unix_path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static struct evhttp *http_new(struct worker *w, const struct xc_config *c, int tls);

static int
bind_unix(struct worker *w, const struct xc_config *c, const struct xc_listen *l, size_t i,
    char *errbuf, size_t errlen)
{
	struct unix_slot *u = &w->unix_slots[i];
	struct evconnlistener *lev;

	if (unix_fds[i] < 0) {
		if ((unix_fds[i] = unix_socket(l, errbuf, errlen)) < 0)
			return -1;
		if ((unix_paths[i] = strdup(l->unix_path)) == NULL)
			return -1;
	}
	u->w = w;
	u->i = i;
	u->tls = l->tls;
	if ((u->http = http_new(w, c, l->tls)) == NULL) {
		snprintf(errbuf, errlen, "cannot set up worker %d", w->id);
		return -1;
	}
	evhttp_set_bevcb(u->http, bev_unix, u);
	/*
	 * Backlog 0: the socket is listening already; the process closes it.
	 * The first worker starts with the turn; the listeners are enabled and
	 * disabled from other workers' threads, hence THREADSAFE.
	 */
	lev = evconnlistener_new(w->base, NULL, NULL,
	    LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_THREADSAFE | (w->id > 0 ? LEV_OPT_DISABLED : 0), 0,
	    unix_fds[i]);
	if (lev == NULL) {
		snprintf(errbuf, errlen, "cannot watch unix socket %s", l->unix_path);
		return -1;
	}
	if (evhttp_bind_listener(u->http, lev) == NULL) {
		evconnlistener_free(lev);
		snprintf(errbuf, errlen, "cannot attach listener");
		return -1;
	}
	u->lev = lev;
	return 0;
}

static void
unix_close_all(void)
{
	size_t i;

	for (i = 0; i < MAX_LISTENS; i++) {
		if (unix_fds[i] >= 0)
			close(unix_fds[i]);
		unix_fds[i] = -1;
		if (unix_paths[i] != NULL)
			unlink(unix_paths[i]);
		free(unix_paths[i]);
		unix_paths[i] = NULL;
	}
}

static int
bind_one(struct worker *w, struct evhttp *http, const struct xc_listen *l, int *port, char *errbuf,
    size_t errlen)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct evconnlistener *lev;
	socklen_t slen;
	int one;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, l->addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)*port);
		slen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, l->addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)*port);
		slen = sizeof(*sin6);
	} else {
		snprintf(
		    errbuf, errlen, "listen address '%s' is not a numeric IP address", l->addr);
		return -1;
	}
	lev = evconnlistener_new_bind(w->base, NULL, NULL,
	    LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_FREE
	        | LEV_OPT_CLOSE_ON_EXEC,
	    1024, (struct sockaddr *)&ss, (int)slen);
	if (lev == NULL) {
		snprintf(errbuf, errlen, "cannot listen on %s port %d: %s", l->addr, *port,
		    strerror(errno));
		return -1;
	}
	/*
	 * Accepted sockets inherit TCP_NODELAY from the listener on Linux.
	 * Without it, a response written as TLS records in two segments waits
	 * for the client's delayed ACK (40 ms) on every keep-alive request.
	 */
	one = 1;
	setsockopt(evconnlistener_get_fd(lev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (*port == 0) {
		/* Port 0: the first worker learns the port, the others share it. */
		slen = sizeof(ss);
		if (getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&ss, &slen) == 0)
			*port = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
	}
	if (evhttp_bind_listener(http, lev) == NULL) {
		evconnlistener_free(lev);
		snprintf(errbuf, errlen, "cannot attach listener");
		return -1;
	}
	return 0;
}

static struct evhttp *
http_new(struct worker *w, const struct xc_config *c, int tls)
{
	struct evhttp *h = evhttp_new(w->base);

	if (h == NULL)
		return NULL;
	evhttp_set_max_body_size(h, (ev_ssize_t)c->max_body);
	evhttp_set_max_headers_size(h, (ev_ssize_t)c->max_headers);
	evhttp_set_timeout(h, c->timeout);
	/* Oversized bodies get a 413 (and the rest is drained) instead of a reset. */
	evhttp_set_flags(h, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_allowed_methods(h,
	    EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE
	        | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(h, "application/json");
	evhttp_set_gencb(h, tls ? gencb_tls : gencb_plain, w);
	evhttp_set_bevcb(h, tls ? bev_tls : bev_plain, w);
	return h;
}

int
xc_server_start(
    struct xc_runtime *rt, struct xc_store *store, int threads, char *errbuf, size_t errlen)
{
	const struct xc_config *c = rt->cfg;
	int ports[MAX_LISTENS];
	size_t i;
	int t;

	if (threads < 1)
		threads = 1;
	if (threads > MAX_WORKERS)
		threads = MAX_WORKERS;
	if (evthread_use_pthreads() != 0) {
		snprintf(errbuf, errlen, "libevent has no pthreads support");
		return -1;
	}
	xc_runtime_publish(rt);
	if ((workers = calloc((size_t)threads, sizeof(*workers))) == NULL)
		return -1;
	if (xc_conn_init() != 0) {
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < c->n_listens && i < MAX_LISTENS; i++)
		ports[i] = c->listens[i].port;
	for (t = 0; t < threads; t++) {
		struct worker *w = &workers[t];

		w->id = t;
		w->store = store;
		w->rt = xc_runtime_ref(rt);
		if ((w->base = worker_base_new()) == NULL)
			goto fail;
		if ((w->stop_ev = event_new(w->base, -1, 0, stop_cb, w)) == NULL)
			goto fail;
		if ((w->batch = xc_batch_new(w->base, store)) == NULL)
			goto fail;
		for (i = 0; i < c->n_listens && i < MAX_LISTENS; i++) {
			const struct xc_listen *l = &c->listens[i];
			struct evhttp **hp = l->tls ? &w->http_tls : &w->http_plain;

			if (l->unix_path != NULL) {
				if (bind_unix(w, c, l, i, errbuf, errlen) != 0)
					goto fail_msg;
				if (t == 0)
					xc_log(AGENTID_LOG_INFO, "listening on unix socket %s (%s)",
					    l->unix_path, l->tls ? "TLS" : "plain HTTP");
				continue;
			}
			if (*hp == NULL && (*hp = http_new(w, c, l->tls)) == NULL)
				goto fail;
			if (bind_one(w, *hp, l, &ports[i], errbuf, errlen) != 0)
				goto fail_msg;
			if (t == 0)
				xc_log(AGENTID_LOG_INFO, "listening on %s port %d (%s)", l->addr,
				    ports[i], l->tls ? "TLS" : "plain HTTP");
		}
		n_workers++;
	}
	for (t = 0; t < n_workers; t++)
		if (pthread_create(&workers[t].th, NULL, worker_main, &workers[t]) != 0) {
			snprintf(errbuf, errlen, "cannot start worker thread");
			return -1;
		}
	return 0;
fail:
	snprintf(errbuf, errlen, "cannot set up worker %d", t);
fail_msg:
	return -1;
}

void
xc_server_stop(void)
{
	int t;

	for (t = 0; t < n_workers; t++)
		event_active(workers[t].stop_ev, 0, 0);
	for (t = 0; t < n_workers; t++)
		pthread_join(workers[t].th, NULL);
	for (t = 0; t < n_workers; t++) {
		struct worker *w = &workers[t];
		size_t i;

		/* Before the evhttp instances: queued rows still answer their requests. */
		xc_batch_free(w->batch);
		if (w->http_tls != NULL)
			evhttp_free(w->http_tls);
		if (w->http_plain != NULL)
			evhttp_free(w->http_plain);
		for (i = 0; i < MAX_LISTENS; i++)
			if (w->unix_slots[i].http != NULL)
				evhttp_free(w->unix_slots[i].http);
		event_free(w->stop_ev);
		event_base_free(w->base);
		xc_runtime_unref(w->rt);
	}
	free(workers);
	workers = NULL;
	n_workers = 0;
	unix_close_all();
	xc_conn_fini();
	pthread_mutex_lock(&rt_lock);
	xc_runtime_unref(rt_latest);
	rt_latest = NULL;
	pthread_mutex_unlock(&rt_lock);
}
