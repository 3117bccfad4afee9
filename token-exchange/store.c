/*
 * The store: one interface (struct xc_store_ops) over SQLite and
 * PostgreSQL.  Each backend holds one connection that this wrapper
 * serialises with a mutex; the statements are short, and one connection
 * per process keeps SQLite free of lock contention between our own
 * threads.  Status-list indexes are reserved from the database in blocks,
 * so several nodes sharing one PostgreSQL database never hand out the same
 * index while a single exchange costs no extra round trip.  Ledger rows are
 * written in batches, one per worker and event-loop pass (xc_batch), and
 * SQLite's checkpoints run on the main thread (xc_store_checkpoint), so
 * neither a commit per token nor a checkpoint's fdatasync sits on the
 * request path.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "exchange.h"

#define STATUS_BLOCK 256

int
xc_store_open(const struct xc_config *c, struct xc_store **out, char *errbuf, size_t errlen)
{
	struct xc_store *s;
	int r;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return AGENTID_ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->alloc_lock, NULL);
	if (strcmp(c->store_driver, "postgres") == 0) {
		s->ops = &xc_store_pg_ops;
		r = xc_store_pg_open(c->store_conninfo, &s->db, errbuf, errlen);
	} else {
		s->ops = &xc_store_sqlite_ops;
		r = xc_store_sqlite_open(c->store_path, &s->db, errbuf, errlen);
	}
	if (r != 0) {
		xc_store_close(s);
		return r;
	}
	if ((r = s->ops->migrate(s->db)) != 0) {
		snprintf(errbuf, errlen, "%s store: schema migration failed", s->ops->name);
		xc_store_close(s);
		return r;
	}
	*out = s;
	return 0;
}

void
xc_store_close(struct xc_store *s)
{
	if (s == NULL)
		return;
	if (s->ops != NULL && s->db != NULL)
		s->ops->close(s->db);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->alloc_lock);
	free(s);
}

void
xc_ledger_entry_clear(struct xc_ledger_entry *e)
{
	free(e->parent_jti);
	free(e->root_jti);
	free(e->subject);
	free(e->subject_iss);
	free(e->actor);
	free(e->client_id);
	free(e->task);
	free(e->scope);
	free(e->aud);
	free(e->act);
	free(e->cnf);
	memset(e, 0, sizeof(*e));
}

#define LOCKED(s, call)                                                                            \
	do {                                                                                       \
		pthread_mutex_lock(&(s)->lock);                                                    \
		r = (call);                                                                        \
		pthread_mutex_unlock(&(s)->lock);                                                  \
	} while (0)

int
xc_store_available(struct xc_store *s)
{
	return s == NULL || s->ops->available == NULL || s->ops->available(s->db);
}

void
xc_store_probe(struct xc_store *s)
{
	if (s == NULL || s->ops->probe == NULL || s->ops->available(s->db))
		return;
	/* A worker holding the lock is reconnecting (or using the store) already. */
	if (pthread_mutex_trylock(&s->lock) != 0)
		return;
	s->ops->probe(s->db);
	pthread_mutex_unlock(&s->lock);
}

int
xc_store_ledger_insert(struct xc_store *s, const struct xc_ledger_entry *e)
{
	int r;

	LOCKED(s, s->ops->ledger_insert(s->db, e));
	return r;
}

/* ---------------------------------------------------------------- group commit */

struct batch_item {
	struct xc_ledger_entry e; /* deep copy */
	xc_batch_done_fn done;
	void *arg;
};

struct xc_batch {
	struct xc_store *store;
	struct event *ev;
	struct batch_item *items;
	size_t n, cap;
	struct xc_ledger_entry *rows; /* scratch for ledger_insert_many */
	int *res;
};

static int
dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL)
		return 0;
	return (*dst = strdup(src)) != NULL ? 0 : -1;
}

static int
ledger_entry_copy(struct xc_ledger_entry *d, const struct xc_ledger_entry *e)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->jti, e->jti, sizeof(d->jti));
	d->iat = e->iat;
	d->exp = e->exp;
	d->status_idx = e->status_idx;
	d->revoked = e->revoked;
	if (dup_str(&d->parent_jti, e->parent_jti) != 0 || dup_str(&d->root_jti, e->root_jti) != 0
	    || dup_str(&d->subject, e->subject) != 0
	    || dup_str(&d->subject_iss, e->subject_iss) != 0 || dup_str(&d->actor, e->actor) != 0
	    || dup_str(&d->client_id, e->client_id) != 0 || dup_str(&d->task, e->task) != 0
	    || dup_str(&d->scope, e->scope) != 0 || dup_str(&d->aud, e->aud) != 0
	    || dup_str(&d->act, e->act) != 0 || dup_str(&d->cnf, e->cnf) != 0) {
		xc_ledger_entry_clear(d);
		return -1;
	}
	return 0;
}

/* Writes every queued row (one transaction when the backend can), then answers each. */
static void
batch_flush(evutil_socket_t fd, short what, void *arg)
{
	struct xc_batch *b = arg;
	struct xc_store *s = b->store;
	size_t i, n = b->n;
	int r;

	if (n == 0)
		return;
	if (s->ops->ledger_insert_many != NULL) {
		for (i = 0; i < n; i++)
			b->rows[i] = b->items[i].e;
		LOCKED(s, s->ops->ledger_insert_many(s->db, b->rows, n, b->res));
		if (r != 0)
			for (i = 0; i < n; i++)
				b->res[i] = r;
	} else
		for (i = 0; i < n; i++) {
			LOCKED(s, s->ops->ledger_insert(s->db, &b->items[i].e));
			b->res[i] = r;
		}
	/* The callbacks may queue nothing new (they only answer), but reset first anyway. */
	b->n = 0;
	for (i = 0; i < n; i++) {
		b->items[i].done(b->res[i], b->items[i].arg);
		xc_ledger_entry_clear(&b->items[i].e);
	}
}

struct xc_batch *
xc_batch_new(struct event_base *base, struct xc_store *store)
{
	struct xc_batch *b;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->store = store;
	if ((b->ev = event_new(base, -1, 0, batch_flush, b)) == NULL) {
		free(b);
		return NULL;
	}
	return b;
}

void
xc_batch_free(struct xc_batch *b)
{
	if (b == NULL)
		return;
	batch_flush(-1, 0, b);
	event_free(b->ev);
	free(b->items);
	free(b->rows);
	free(b->res);
	free(b);
}

int
xc_batch_add(struct xc_batch *b, const struct xc_ledger_entry *e, xc_batch_done_fn done, void *arg)
{
	struct batch_item *items;
	struct xc_ledger_entry *rows;
	size_t cap;
	int *res;

	if (b->n == b->cap) {
		cap = b->cap != 0 ? b->cap * 2 : 16;
		if ((items = realloc(b->items, cap * sizeof(*items))) == NULL)
			return AGENTID_ENOMEM;
		b->items = items;
		if ((rows = realloc(b->rows, cap * sizeof(*rows))) == NULL)
			return AGENTID_ENOMEM;
		b->rows = rows;
		if ((res = realloc(b->res, cap * sizeof(*res))) == NULL)
			return AGENTID_ENOMEM;
		b->res = res;
		b->cap = cap;
	}
	if (ledger_entry_copy(&b->items[b->n].e, e) != 0)
		return AGENTID_ENOMEM;
	b->items[b->n].done = done;
	b->items[b->n].arg = arg;
	/*
	 * The first row of a pass activates the flush event: it joins the end
	 * of the active queue, so it runs after the callbacks already due in
	 * this pass of the loop, that is after the requests that arrived
	 * together with this one.
	 */
	if (b->n++ == 0)
		event_active(b->ev, 0, 0);
	return 0;
}

int
xc_store_ledger_get(struct xc_store *s, const char *jti, struct xc_ledger_entry *e)
{
	int r;

	memset(e, 0, sizeof(*e));
	LOCKED(s, s->ops->ledger_get(s->db, jti, e));
	return r;
}

int
xc_store_revoke(struct xc_store *s, enum xc_revoke_by by, const char *value, long *n)
{
	int r;

	*n = 0;
	LOCKED(s, s->ops->revoke(s->db, by, value, (int64_t)time(NULL), n));
	return r;
}

int
xc_store_status_bits(struct xc_store *s, int64_t first, int64_t count, unsigned char *bits)
{
	int r;

	LOCKED(s, s->ops->status_bits(s->db, first, count, bits));
	return r;
}

int
xc_store_status_alloc(struct xc_store *s, int64_t *idx)
{
	int64_t first;
	int r = 0;

	pthread_mutex_lock(&s->alloc_lock);
	if (s->alloc_next >= s->alloc_end) {
		LOCKED(s, s->ops->status_reserve(s->db, STATUS_BLOCK, &first));
		if (r == 0) {
			s->alloc_next = first;
			s->alloc_end = first + STATUS_BLOCK;
		}
	}
	if (r == 0)
		*idx = s->alloc_next++;
	pthread_mutex_unlock(&s->alloc_lock);
	return r;
}

int
xc_store_revocation_epoch(struct xc_store *s, int64_t *epoch)
{
	int r;

	LOCKED(s, s->ops->revocation_epoch(s->db, epoch));
	return r;
}

int
xc_store_replay_check(struct xc_store *s, const char *jti, int64_t exp)
{
	int r;

	LOCKED(s, s->ops->replay_check(s->db, jti, exp));
	return r;
}

/*
 * Two passes: the first without the store lock, so copying pages back and
 * the fdatasync that ends it do not hold up the workers; the second under
 * the lock, so no row is being written while it copies the few pages
 * committed meanwhile.  After it the whole log is in the database and the
 * next commit starts the log from its beginning again; without it a log
 * written to without pause would never be reset and would grow.
 */
int
xc_store_checkpoint(struct xc_store *s)
{
	int r;

	if (s->ops->checkpoint == NULL)
		return 0;
	if ((r = s->ops->checkpoint(s->db)) != 0)
		return r;
	LOCKED(s, s->ops->checkpoint(s->db));
	return r;
}

int
xc_store_prune(struct xc_store *s)
{
	int r;

	/* A backend may prune in chunks (1 = more to do), the lock taken for one at a time. */
	do {
		LOCKED(s, s->ops->prune(s->db, (int64_t)time(NULL)));
	} while (r > 0);
	return r;
}
