/*
 * SQLite store: one file in WAL mode, created on first start.  Statements
 * are prepared once.  synchronous=NORMAL in WAL mode keeps every committed
 * transaction consistent across a crash and loses at most the last few
 * after a power failure, which for a ledger of short-lived tokens is the
 * right trade.  The store wrapper serialises calls.  Rows issued
 * together are written in one transaction (xc_batch in store.c), so the
 * cost of a commit -- appending every touched page of the table and its
 * indexes to the WAL -- is shared by all of them.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "exchange.h"

#define SCHEMA_VERSION 1
#define SQ_CHECKPOINT_FRAMES 1000
#define SQ_PRUNE_CHUNK 2000

enum {
	ST_INSERT,
	ST_PARENT_REVOKED,
	ST_GET,
	ST_BITS,
	ST_RESERVE,
	ST_EPOCH,
	ST_EPOCH_BUMP,
	ST_REPLAY,
	ST_REV_JTI,
	ST_REV_AGENT,
	ST_REV_SUBJECT,
	ST_REV_TASK,
	ST_BEGIN,
	ST_COMMIT,
	ST__COUNT
};

struct sq {
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT];
	sqlite3 *ckpt; /* checkpoints only, from the main thread (NULL: SQLite's automatic ones) */
	int ckpt_open; /* ckpt has read the database (and so knows it is in WAL mode) */
	atomic_int wal_frames; /* frames in the WAL after the last commit (wal hook) */
};

#define REVOKE_CASCADE(col)                                                                        \
	"WITH RECURSIVE d(jti) AS (SELECT jti FROM tokens WHERE " col " = ?1 "                     \
	"UNION SELECT t.jti FROM tokens t JOIN d ON t.parent_jti = d.jti) "                        \
	"UPDATE tokens SET revoked = 1, revoked_at = ?2 "                                          \
	"WHERE revoked = 0 AND jti IN (SELECT jti FROM d)"

static const char *const stmt_sql[ST__COUNT] = {
	/*
	 * A child row is only written while its parent is not revoked: the
	 * check (ST_PARENT_REVOKED) and the insert run in one write
	 * transaction (BEGIN IMMEDIATE), so a revocation committed after the
	 * exchange looked at the parent, but before this row, cannot miss the
	 * child.  Two statements rather than one INSERT ... SELECT ... WHERE
	 * NOT EXISTS: reading the table it inserts into makes SQLite
	 * materialise the SELECT in a temporary b-tree for every row.
	 */
	[ST_INSERT]
	= "INSERT INTO tokens (jti, parent_jti, root_jti, subject, actor, client_id, "
	  "task, scope, aud, act, cnf, iat, exp, status_idx, subject_iss, revoked) "
	  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 0)",
	[ST_PARENT_REVOKED] = "SELECT 1 FROM tokens WHERE jti = ?1 AND revoked = 1",
	[ST_GET] = "SELECT parent_jti, root_jti, subject, actor, client_id, task, scope, aud, act, "
	           "cnf, iat, exp, status_idx, revoked, subject_iss FROM tokens WHERE jti = ?1",
	[ST_BITS] = "SELECT status_idx FROM tokens WHERE revoked = 1 AND status_idx >= ?1 AND "
	            "status_idx < ?2",
	[ST_RESERVE] = "UPDATE counters SET value = value + ?1 WHERE name = 'status_next' "
	               "RETURNING value - ?1",
	[ST_EPOCH] = "SELECT value FROM counters WHERE name = 'revocation_epoch'",
	[ST_EPOCH_BUMP] = "UPDATE counters SET value = value + 1 WHERE name = 'revocation_epoch'",
	[ST_REPLAY] = "INSERT INTO dpop_jti (jti, exp) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
	[ST_REV_JTI] = REVOKE_CASCADE("jti"),
	[ST_REV_AGENT] = REVOKE_CASCADE("actor"),
	[ST_REV_SUBJECT] = REVOKE_CASCADE("subject"),
	[ST_REV_TASK] = REVOKE_CASCADE("task"),
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
};

static const char schema_v1[]
    = "CREATE TABLE tokens ("
      " jti TEXT PRIMARY KEY, parent_jti TEXT, root_jti TEXT NOT NULL,"
      " subject TEXT NOT NULL, subject_iss TEXT, actor TEXT NOT NULL, client_id TEXT,"
      " task TEXT, scope TEXT,"
      " aud TEXT, act TEXT, cnf TEXT, iat INTEGER NOT NULL, exp INTEGER NOT NULL,"
      " status_idx INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0, revoked_at INTEGER);"
      "CREATE INDEX tokens_parent ON tokens(parent_jti);"
      "CREATE INDEX tokens_actor ON tokens(actor);"
      "CREATE INDEX tokens_subject ON tokens(subject);"
      "CREATE INDEX tokens_task ON tokens(task);"
      "CREATE INDEX tokens_exp ON tokens(exp);"
      "CREATE INDEX tokens_revoked ON tokens(status_idx) WHERE revoked = 1;"
      "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
      "INSERT INTO counters VALUES ('status_next', 0), ('revocation_epoch', 0);"
      "CREATE TABLE dpop_jti (jti TEXT PRIMARY KEY, exp INTEGER NOT NULL);"
      "CREATE INDEX dpop_jti_exp ON dpop_jti(exp);";

static int
sq_exec(struct sq *q, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		xc_log(AGENTID_LOG_ERROR, "sqlite: %s", msg != NULL ? msg : "error");
		sqlite3_free(msg);
		return AGENTID_EIO;
	}
	return 0;
}

static void
sq_close(void *db)
{
	struct sq *q = db;
	int i;

	if (q == NULL)
		return;
	for (i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(q->st[i]);
	sqlite3_close(q->db);
	sqlite3_close(q->ckpt);
	free(q);
}

/* Called by SQLite after each commit on the request connection. */
static int
sq_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sq *q = arg;

	atomic_store_explicit(&q->wal_frames, frames, memory_order_relaxed);
	return SQLITE_OK;
}

int
xc_store_sqlite_open(const char *path, void **db, char *errbuf, size_t errlen)
{
	struct sq *q;

	*db = NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return AGENTID_ENOMEM;
	if (sqlite3_open_v2(path, &q->db,
	        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL)
	    != SQLITE_OK) {
		snprintf(errbuf, errlen, "%s: cannot open SQLite database: %s", path,
		    q->db != NULL ? sqlite3_errmsg(q->db) : "out of memory");
		sq_close(q);
		return AGENTID_EIO;
	}
	sqlite3_busy_timeout(q->db, 5000);
	/*
	 * A larger page cache (16 MiB, not the default 2 MiB) keeps the
	 * jti index, whose random keys touch pages all over it, in memory.
	 */
	if (sq_exec(q,
	        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
	        "PRAGMA foreign_keys=ON; PRAGMA cache_size=-16384;")
	    != 0) {
		snprintf(errbuf, errlen, "%s: cannot configure SQLite database", path);
		sq_close(q);
		return AGENTID_EIO;
	}
	/*
	 * SQLite's automatic checkpoint runs inside the commit that crosses
	 * 1000 WAL pages, on a worker thread, and ends in fdatasync: a stall of
	 * every request on that worker.  With a second connection for
	 * checkpoints, the main thread's tick does them (xc_store_checkpoint)
	 * once the WAL holds as many pages, and the request connection never
	 * checkpoints.  If it cannot be opened, the automatic checkpoints stay.
	 */
	if (sqlite3_open_v2(path, &q->ckpt, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL)
	    == SQLITE_OK) {
		sqlite3_busy_timeout(q->ckpt, 5000);
		/* Replaces the automatic checkpoint, which is itself a WAL hook. */
		sqlite3_wal_hook(q->db, sq_wal_hook, q);
	} else {
		sqlite3_close(q->ckpt);
		q->ckpt = NULL;
	}
	*db = q;
	return 0;
}

static int
sq_checkpoint(void *db)
{
	struct sq *q = db;
	int rc;

	/* The same threshold as SQLite's own automatic checkpoint. */
	if (q->ckpt == NULL
	    || atomic_load_explicit(&q->wal_frames, memory_order_relaxed) < SQ_CHECKPOINT_FRAMES)
		return 0;
	/*
	 * A connection that has not read the database yet does not know it is
	 * in WAL mode, and its checkpoint would do nothing: read it once.
	 */
	if (!q->ckpt_open) {
		if (sqlite3_exec(q->ckpt, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL)
		    != SQLITE_OK)
			return AGENTID_EIO;
		q->ckpt_open = 1;
	}
	rc = sqlite3_wal_checkpoint_v2(q->ckpt, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
		xc_log(AGENTID_LOG_WARN, "sqlite: checkpoint: %s", sqlite3_errmsg(q->ckpt));
		return AGENTID_EIO;
	}
	return 0;
}

static int
sq_migrate(void *db)
{
	struct sq *q = db;
	sqlite3_stmt *st = NULL;
	int version = 0, i, r;

	if ((r = sq_exec(q,
	         "BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS schema_version "
	         "(version INTEGER NOT NULL);"))
	    != 0)
		return r;
	if (sqlite3_prepare_v2(q->db, "SELECT max(version) FROM schema_version", -1, &st, NULL)
	        != SQLITE_OK
	    || sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		sq_exec(q, "ROLLBACK");
		return AGENTID_EIO;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > SCHEMA_VERSION) {
		xc_log(AGENTID_LOG_ERROR,
		    "sqlite: database schema %d is newer than this server (%d)", version,
		    SCHEMA_VERSION);
		sq_exec(q, "ROLLBACK");
		return AGENTID_EUNSUPPORTED;
	}
	if (version < 1) {
		if ((r = sq_exec(q, schema_v1)) != 0
		    || (r = sq_exec(q, "INSERT INTO schema_version VALUES (1)")) != 0) {
			sq_exec(q, "ROLLBACK");
			return r;
		}
		xc_log(AGENTID_LOG_INFO, "sqlite: created schema version 1");
	}
	/* Later versions add their migration steps here, each inside this transaction. */
	if ((r = sq_exec(q, "COMMIT")) != 0)
		return r;
	for (i = 0; i < ST__COUNT; i++) {
		if (sqlite3_prepare_v3(
		        q->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL)
		    != SQLITE_OK) {
			xc_log(AGENTID_LOG_ERROR, "sqlite: prepare: %s", sqlite3_errmsg(q->db));
			return AGENTID_EIO;
		}
	}
	return 0;
}

static int
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Runs a prepared statement without parameters or rows (BEGIN, COMMIT). */
static int
sq_step_done(struct sq *q, int which)
{
	sqlite3_stmt *st = q->st[which];
	int rc;

	sqlite3_reset(st);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		xc_log(AGENTID_LOG_ERROR, "sqlite: %s: %s", stmt_sql[which], sqlite3_errmsg(q->db));
		return AGENTID_EIO;
	}
	return 0;
}

/* 1 when jti is a revoked token, 0 when it is not (or unknown), or an error. */
static int
sq_parent_revoked(struct sq *q, const char *jti)
{
	sqlite3_stmt *st = q->st[ST_PARENT_REVOKED];
	int rc;

	sqlite3_reset(st);
	bind_text(st, 1, jti);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	xc_log(AGENTID_LOG_ERROR, "sqlite: ledger parent: %s", sqlite3_errmsg(q->db));
	return AGENTID_EIO;
}

/*
 * One row, inside the caller's write transaction: AGENTID_EREJECTED when
 * its parent is revoked.  *checked remembers the last parent found not
 * revoked; it stays valid for the whole transaction, because nothing else
 * can write while it holds the write lock and the rows it inserts are not
 * revoked, so a batch of children of one parent looks the parent up once.
 */
static int
sq_insert_row(struct sq *q, const struct xc_ledger_entry *e, const char **checked)
{
	sqlite3_stmt *st = q->st[ST_INSERT];
	int rc;

	if (e->parent_jti != NULL && (*checked == NULL || strcmp(*checked, e->parent_jti) != 0)) {
		if ((rc = sq_parent_revoked(q, e->parent_jti)) != 0)
			return rc > 0 ? AGENTID_EREJECTED : rc;
		*checked = e->parent_jti;
	}
	sqlite3_reset(st);
	bind_text(st, 1, e->jti);
	bind_text(st, 2, e->parent_jti);
	bind_text(st, 3, e->root_jti);
	bind_text(st, 4, e->subject);
	bind_text(st, 5, e->actor);
	bind_text(st, 6, e->client_id);
	bind_text(st, 7, e->task);
	bind_text(st, 8, e->scope);
	bind_text(st, 9, e->aud);
	bind_text(st, 10, e->act);
	bind_text(st, 11, e->cnf);
	sqlite3_bind_int64(st, 12, e->iat);
	sqlite3_bind_int64(st, 13, e->exp);
	sqlite3_bind_int64(st, 14, e->status_idx);
	bind_text(st, 15, e->subject_iss);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		xc_log(AGENTID_LOG_ERROR, "sqlite: ledger insert: %s", sqlite3_errmsg(q->db));
		return AGENTID_EIO;
	}
	return 0;
}

static int
sq_ledger_insert(void *db, const struct xc_ledger_entry *e)
{
	struct sq *q = db;
	const char *checked = NULL;
	int r;

	if ((r = sq_step_done(q, ST_BEGIN)) != 0)
		return r;
	r = sq_insert_row(q, e, &checked);
	if ((r == 0 || r == AGENTID_EREJECTED) && sq_step_done(q, ST_COMMIT) == 0)
		return r;
	sq_exec(q, "ROLLBACK");
	return r != 0 ? r : AGENTID_EIO;
}

/*
 * A batch of rows in one transaction: one WAL append and one commit for
 * all of them.  A row refused because its parent was revoked is just not
 * written; if any row fails otherwise, the transaction is rolled back and
 * the rows are inserted one by one, so one bad row costs only its own
 * token.
 */
static int
sq_ledger_insert_many(void *db, const struct xc_ledger_entry *e, size_t n, int *res)
{
	struct sq *q = db;
	const char *checked = NULL;
	size_t i;
	int r, failed = 0;

	if (n == 1) {
		res[0] = sq_ledger_insert(db, e);
		return 0;
	}
	if ((r = sq_step_done(q, ST_BEGIN)) != 0)
		return r;
	for (i = 0; i < n && !failed; i++)
		if ((res[i] = sq_insert_row(q, &e[i], &checked)) != 0
		    && res[i] != AGENTID_EREJECTED)
			failed = 1;
	if (!failed && sq_step_done(q, ST_COMMIT) == 0)
		return 0;
	sq_exec(q, "ROLLBACK");
	for (i = 0; i < n; i++)
		res[i] = sq_ledger_insert(db, &e[i]);
	return 0;
}

static char *
col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t != NULL ? strdup((const char *)t) : NULL;
}

static int
sq_ledger_get(void *db, const char *jti, struct xc_ledger_entry *e)
{
	struct sq *q = db;
	sqlite3_stmt *st = q->st[ST_GET];
	int rc, r = 0;

	sqlite3_reset(st);
	bind_text(st, 1, jti);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(e->jti, sizeof(e->jti), "%s", jti);
		e->parent_jti = col_text(st, 0);
		e->root_jti = col_text(st, 1);
		e->subject = col_text(st, 2);
		e->actor = col_text(st, 3);
		e->client_id = col_text(st, 4);
		e->task = col_text(st, 5);
		e->scope = col_text(st, 6);
		e->aud = col_text(st, 7);
		e->act = col_text(st, 8);
		e->cnf = col_text(st, 9);
		e->iat = sqlite3_column_int64(st, 10);
		e->exp = sqlite3_column_int64(st, 11);
		e->status_idx = sqlite3_column_int64(st, 12);
		e->revoked = sqlite3_column_int(st, 13);
		e->subject_iss = col_text(st, 14);
	} else if (rc == SQLITE_DONE)
		r = AGENTID_ENOTFOUND;
	else {
		xc_log(AGENTID_LOG_ERROR, "sqlite: ledger get: %s", sqlite3_errmsg(q->db));
		r = AGENTID_EIO;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int
sq_revoke(void *db, enum xc_revoke_by by, const char *value, int64_t now, long *n)
{
	struct sq *q = db;
	sqlite3_stmt *st;
	int rc, r;

	switch (by) {
	case XC_REVOKE_JTI:
		st = q->st[ST_REV_JTI];
		break;
	case XC_REVOKE_AGENT:
		st = q->st[ST_REV_AGENT];
		break;
	case XC_REVOKE_SUBJECT:
		st = q->st[ST_REV_SUBJECT];
		break;
	case XC_REVOKE_TASK:
		st = q->st[ST_REV_TASK];
		break;
	default:
		return AGENTID_EINVAL;
	}
	if ((r = sq_exec(q, "BEGIN IMMEDIATE")) != 0)
		return r;
	sqlite3_reset(st);
	bind_text(st, 1, value);
	sqlite3_bind_int64(st, 2, now);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		xc_log(AGENTID_LOG_ERROR, "sqlite: revoke: %s", sqlite3_errmsg(q->db));
		sq_exec(q, "ROLLBACK");
		return AGENTID_EIO;
	}
	*n = sqlite3_changes(q->db);
	if (*n > 0) {
		st = q->st[ST_EPOCH_BUMP];
		sqlite3_reset(st);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			sq_exec(q, "ROLLBACK");
			return AGENTID_EIO;
		}
	}
	return sq_exec(q, "COMMIT");
}

static int
sq_status_bits(void *db, int64_t first, int64_t count, unsigned char *bits)
{
	struct sq *q = db;
	sqlite3_stmt *st = q->st[ST_BITS];
	int64_t idx;
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, first);
	sqlite3_bind_int64(st, 2, first + count);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		idx = sqlite3_column_int64(st, 0) - first;
		if (idx >= 0 && idx < count)
			bits[idx / 8] |= (unsigned char)(1u << (idx % 8));
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : AGENTID_EIO;
}

static int
sq_status_reserve(void *db, int64_t count, int64_t *first)
{
	struct sq *q = db;
	sqlite3_stmt *st = q->st[ST_RESERVE];
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, count);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*first = sqlite3_column_int64(st, 0);
	/* Step to completion so the UPDATE is committed by the autocommit transaction. */
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : AGENTID_EIO;
}

static int
sq_revocation_epoch(void *db, int64_t *epoch)
{
	struct sq *q = db;
	sqlite3_stmt *st = q->st[ST_EPOCH];
	int rc;

	sqlite3_reset(st);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*epoch = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : AGENTID_EIO;
}

static int
sq_replay_check(void *db, const char *jti, int64_t exp)
{
	struct sq *q = db;
	sqlite3_stmt *st = q->st[ST_REPLAY];
	int rc;

	sqlite3_reset(st);
	bind_text(st, 1, jti);
	sqlite3_bind_int64(st, 2, exp);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return AGENTID_EIO;
	return sqlite3_changes(q->db) == 1 ? 0 : AGENTID_EREJECTED;
}

/*
 * Deletes at most SQ_PRUNE_CHUNK expired rows of each table and returns 1
 * when there may be more: a day's worth of expired tokens deleted in one
 * statement would hold the store (and every worker's next commit) for
 * seconds, so the store wrapper calls this again, taking its lock for one
 * chunk at a time.
 */
static int
sq_prune(void *db, int64_t now)
{
	struct sq *q = db;
	char sql[320];
	int n;

	/* Tokens are kept a day past expiry so introspection and audits can still find them. */
	snprintf(sql, sizeof(sql),
	    "DELETE FROM tokens WHERE rowid IN (SELECT rowid FROM tokens WHERE exp < %lld "
	    "LIMIT %d)",
	    (long long)(now - 86400), SQ_PRUNE_CHUNK);
	if (sq_exec(q, sql) != 0)
		return AGENTID_EIO;
	n = sqlite3_changes(q->db);
	snprintf(sql, sizeof(sql),
	    "DELETE FROM dpop_jti WHERE rowid IN (SELECT rowid FROM dpop_jti WHERE exp < %lld "
	    "LIMIT %d)",
	    (long long)now, SQ_PRUNE_CHUNK);
	if (sq_exec(q, sql) != 0)
		return AGENTID_EIO;
	return n == SQ_PRUNE_CHUNK || sqlite3_changes(q->db) == SQ_PRUNE_CHUNK ? 1 : 0;
}

const struct xc_store_ops xc_store_sqlite_ops = {
	.name = "sqlite",
	.migrate = sq_migrate,
	.ledger_insert = sq_ledger_insert,
	.ledger_insert_many = sq_ledger_insert_many,
	.ledger_get = sq_ledger_get,
	.revoke = sq_revoke,
	.status_bits = sq_status_bits,
	.status_reserve = sq_status_reserve,
	.revocation_epoch = sq_revocation_epoch,
	.replay_check = sq_replay_check,
	.prune = sq_prune,
	.checkpoint = sq_checkpoint,
	.close = sq_close,
};
