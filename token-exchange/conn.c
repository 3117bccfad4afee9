/*
 * Per-connection limits that libevent 2.1's evhttp does not have: a
 * deadline for receiving a whole request, and a cap on the number of open
 * connections.
 *
 * evhttp's own timeout is a read timeout on the bufferevent, re-armed by
 * every byte, so a client that sends its headers or body one byte per
 * second holds a connection (and its buffers) forever.  Here each request
 * gets a deadline instead: it starts with the first byte of the request
 * (seen through a callback on the connection's input buffer) and stops when
 * evhttp hands the complete request to the server (xc_conn_request).  When
 * it fires first, the connection is closed.  An idle keep-alive connection
 * has no deadline running; evhttp's idle timeout still closes it.
 *
 * evhttp 2.1 gives no hook when it creates or frees a connection, but it
 * lets the server make each connection's bufferevent (evhttp_set_bevcb).
 * The bufferevent is made here; one loop pass later, when evhttp has
 * attached its connection to it, the connection is looked up through the
 * bufferevent's callback argument (evhttp passes its evhttp_connection
 * there; the result is checked against evhttp_connection_get_bufferevent)
 * and a close callback is registered that frees the state and counts the
 * connection out.  Connections above max_connections are closed right then,
 * before a byte of them is read.
 *
 * Request handlers find the state of their connection through a table
 * indexed by socket descriptor: descriptors are unique in the process while
 * open, and a connection's entry is cleared in its close callback, before
 * the descriptor is closed and can be reused by another worker.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>

#include "exchange.h"

#define FD_TABLE_MAX (1 << 20)

enum conn_state {
	CONN_ATTACHING, /* evhttp has not attached its connection yet */
	CONN_IDLE, /* no byte of a next request received */
	CONN_READING, /* a request is arriving: the deadline runs */
};

struct xc_conn {
	struct bufferevent *bev;
	struct evhttp_connection *evcon;
	struct event *timer; /* attach step, then the request deadline */
	struct evbuffer_cb_entry *input_cb;
	struct timeval deadline;
	int fd;
	enum conn_state state;
	int busy; /* responses handed to evhttp and not yet sent */
	int over_limit;
};

static _Atomic(struct xc_conn *) *by_fd;
static size_t n_by_fd;
static atomic_int live;
static atomic_long limit_logged;
static atomic_long deadline_closed;

int
xc_conn_init(void)
{
	struct rlimit rl;
	size_t n = 65536;

	if (by_fd != NULL)
		return 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		n = rl.rlim_cur < 1024 ? 1024 : (size_t)rl.rlim_cur;
	else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		n = FD_TABLE_MAX;
	if (n > FD_TABLE_MAX)
		n = FD_TABLE_MAX;
	if ((by_fd = calloc(n, sizeof(*by_fd))) == NULL)
		return -1;
	n_by_fd = n;
	return 0;
}

void
xc_conn_fini(void)
{
	free(by_fd);
	by_fd = NULL;
	n_by_fd = 0;
}

int
xc_conn_live(void)
{
	return atomic_load(&live);
}

long
xc_conn_deadline_closed(void)
{
	return atomic_load(&deadline_closed);
}

static void
conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct xc_conn *c = arg;

	if (c->fd >= 0 && (size_t)c->fd < n_by_fd && atomic_load(&by_fd[c->fd]) == c)
		atomic_store(&by_fd[c->fd], NULL);
	if (c->input_cb != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->input_cb);
	event_free(c->timer);
	atomic_fetch_sub(&live, 1);
	free(c);
}

/* The first byte of a request starts its deadline. */
static void
conn_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct xc_conn *c = arg;

	if (info->n_added == 0 || c->state != CONN_IDLE)
		return;
	c->state = CONN_READING;
	if (c->deadline.tv_sec > 0)
		event_add(c->timer, &c->deadline);
}

static void
conn_attach(struct xc_conn *c)
{
	void *arg = NULL;
	long now, last;

	bufferevent_getcb(c->bev, NULL, NULL, NULL, &arg);
	if (arg == NULL || evhttp_connection_get_bufferevent(arg) != c->bev) {
		/* Not what libevent 2.1 does; serve the connection without limits. */
		xc_log(AGENTID_LOG_WARN, "connection not tracked: unexpected libevent behaviour");
		event_free(c->timer);
		atomic_fetch_sub(&live, 1);
		free(c);
		return;
	}
	c->evcon = arg;
	c->fd = bufferevent_getfd(c->bev);
	c->state = CONN_IDLE;
	evhttp_connection_set_closecb(c->evcon, conn_closed, c);
	if (c->over_limit || c->fd < 0 || (size_t)c->fd >= n_by_fd) {
		now = (long)time(NULL);
		last = atomic_load(&limit_logged);
		if (c->over_limit && now != last
		    && atomic_compare_exchange_strong(&limit_logged, &last, now))
			xc_log(AGENTID_LOG_WARN,
			    "connection limit reached (%d open): closing new connections",
			    atomic_load(&live) - 1);
		/* Frees c through conn_closed. */
		evhttp_connection_free(c->evcon);
		return;
	}
	atomic_store(&by_fd[c->fd], c);
	c->input_cb = evbuffer_add_cb(bufferevent_get_input(c->bev), conn_input, c);
}

static void
conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct xc_conn *c = arg;
	struct timeval again = { 1, 0 };

	if (c->state == CONN_ATTACHING) {
		conn_attach(c);
		return;
	}
	if (c->state != CONN_READING)
		return;
	if (c->busy > 0) {
		/* The previous response is still going out: never free under it. */
		event_add(c->timer, &again);
		return;
	}
	atomic_fetch_add(&deadline_closed, 1);
	xc_log(AGENTID_LOG_DEBUG, "closing a connection: no complete request within %ld s",
	    (long)c->deadline.tv_sec);
	/* Frees c through conn_closed. */
	evhttp_connection_free(c->evcon);
}

struct bufferevent *
xc_conn_bev_new(struct event_base *base, SSL *ssl, int request_timeout, int max_connections)
{
	struct xc_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	c->fd = -1;
	c->deadline.tv_sec = request_timeout;
	if (ssl != NULL)
		c->bev = bufferevent_openssl_socket_new(
		    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	else
		c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL || (c->timer = event_new(base, -1, 0, conn_timer, c)) == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		free(c);
		return NULL;
	}
	if (atomic_fetch_add(&live, 1) >= max_connections && max_connections > 0)
		c->over_limit = 1;
	/*
	 * Runs after evhttp has set the connection up, still in this loop pass:
	 * no I/O on the new socket can happen before it.
	 */
	event_active(c->timer, EV_TIMEOUT, 1);
	return c->bev;
}

static void
conn_sent(struct evhttp_request *req, void *arg)
{
	struct xc_conn *c = arg;

	if (c->busy > 0)
		c->busy--;
}

void
xc_conn_request(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;
	struct xc_conn *c;
	int fd;

	if (evcon == NULL || (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return;
	fd = bufferevent_getfd(bev);
	if (fd < 0 || (size_t)fd >= n_by_fd || (c = atomic_load(&by_fd[fd])) == NULL
	    || c->evcon != evcon)
		return;
	c->state = CONN_IDLE;
	event_del(c->timer);
	c->busy++;
	evhttp_request_set_on_complete_cb(req, conn_sent, c);
}
