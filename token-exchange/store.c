/*
 * The store: one interface (struct xc_store_ops) over SQLite and
 * PostgreSQL.  Each backend holds one connection that this wrapper
 * serialises with a mutex; the statements are short, and one connection
 * per process keeps SQLite free of lock contention between our own
 * threads.  Status-list indexes are reserved from the database in blocks,
 * so several nodes sharing one PostgreSQL database never hand out the same
 * index while a single exchange costs no extra round trip.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

#define LOCKED(s, call)                                                                           \
	do {                                                                                      \
		pthread_mutex_lock(&(s)->lock);                                                   \
		r = (call);                                                                       \
		pthread_mutex_unlock(&(s)->lock);                                                 \
	} while (0)

int
xc_store_ledger_insert(struct xc_store *s, const struct xc_ledger_entry *e)
{
	int r;

	LOCKED(s, s->ops->ledger_insert(s->db, e));
	return r;
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

int
xc_store_prune(struct xc_store *s)
{
	int r;

	LOCKED(s, s->ops->prune(s->db, (int64_t)time(NULL)));
	return r;
}
