/*
 * PostgreSQL store (libpq), for several exchange nodes that act as one
 * service.  Nodes need no coordination beyond the database: status indexes
 * come from one counter row, replay caches from one primary key, and
 * migrations run under an advisory lock so nodes starting together do not
 * race.
 *
 * Issuing a child token and revoking its parent on another node must not
 * race (a child committed after the revocation walked the tree would escape
 * it).  Under READ COMMITTED a statement only sees rows committed before it
 * started, so the two sides meet on the parent's row lock instead:
 *
 *   - the insert locks the parent row FOR SHARE and writes the child only
 *     if that row, re-read after any lock wait, is not revoked;
 *   - the revocation, in one transaction, repeats its cascading UPDATE
 *     until a pass finds nothing left to revoke.  Each pass row-locks what
 *     it revoked, so an insert under one of those rows either committed
 *     before the lock (the next pass, with a newer snapshot, sees the
 *     child) or waits for the revocation to commit and then finds the
 *     parent revoked.
 *
 * An ancestor further up needs no check of its own: it can only be revoked
 * together with its whole subtree, so a parent that is not revoked has no
 * revoked ancestor.  Revocations take a transaction-scoped advisory lock
 * among themselves, so two cascades over overlapping trees cannot deadlock.
 *
 * An unreachable database must not wedge the server: libpq's connect
 * timeout defaults to 2 s here (libpq's own default is to wait forever), a
 * broken connection is reset at most once per back-off second -- every
 * statement in between fails at once, so the request gets its 503 without
 * waiting -- and the warning about it is logged once per second with the
 * number of failures it stands for.  While the database is down /healthz
 * says so, and the main thread keeps trying to reconnect, so a node that a
 * load balancer took out of service comes back by itself.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exchange.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#define SCHEMA_VERSION 1
#define PG_LOCK_MIGRATE "1633904244" /* advisory lock keys (arbitrary, fixed) */
#define PG_LOCK_REVOKE "1633904245"
/* Bounds a cascade that keeps finding new children; each pass reaches one level deeper. */
#define PG_REVOKE_MAX_PASSES 64
#define PG_CONNECT_TIMEOUT "2" /* seconds, unless conninfo sets connect_timeout */
#define PG_RETRY_SECONDS 1.0 /* no reset attempt for this long after a failed one */

/* Fields other than down are used under the store's lock. */
struct pg {
	PGconn *conn;
	atomic_int down; /* the last attempt to reach the database failed */
	double retry_at; /* monotonic seconds: next reset attempt allowed */
	double warn_at; /* next connection warning allowed */
	unsigned long suppressed; /* failures not logged since the last warning */
};

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char schema_v1[]
    = "CREATE TABLE tokens ("
      " jti TEXT PRIMARY KEY, parent_jti TEXT, root_jti TEXT NOT NULL,"
      " subject TEXT NOT NULL, subject_iss TEXT, actor TEXT NOT NULL, client_id TEXT,"
      " task TEXT, scope TEXT,"
      " aud TEXT, act TEXT, cnf TEXT, iat BIGINT NOT NULL, exp BIGINT NOT NULL,"
      " status_idx BIGINT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0, revoked_at BIGINT);"
      "CREATE INDEX tokens_parent ON tokens(parent_jti);"
      "CREATE INDEX tokens_actor ON tokens(actor);"
      "CREATE INDEX tokens_subject ON tokens(subject);"
      "CREATE INDEX tokens_task ON tokens(task);"
      "CREATE INDEX tokens_exp ON tokens(exp);"
      "CREATE INDEX tokens_revoked ON tokens(status_idx) WHERE revoked = 1;"
      "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);"
      "INSERT INTO counters VALUES ('status_next', 0), ('revocation_epoch', 0);"
      "CREATE TABLE dpop_jti (jti TEXT PRIMARY KEY, exp BIGINT NOT NULL);"
      "CREATE INDEX dpop_jti_exp ON dpop_jti(exp);"
      "INSERT INTO schema_version VALUES (1);";

/*
 * The first pass of a revocation: the matching tokens and every descendant
 * visible now.  Later passes start from the children of what the previous
 * pass revoked ($1, a text array), to catch children committed meanwhile.
 */
#define REVOKE_FIRST(col)                                                                          \
	"WITH RECURSIVE d(jti) AS (SELECT jti FROM tokens WHERE " col " = $1 "                     \
	"UNION SELECT t.jti FROM tokens t JOIN d ON t.parent_jti = d.jti) "                        \
	"UPDATE tokens SET revoked = 1, revoked_at = $2::bigint "                                  \
	"WHERE revoked = 0 AND jti IN (SELECT jti FROM d) RETURNING jti"
#define REVOKE_NEXT                                                                                \
	"WITH RECURSIVE d(jti) AS (SELECT jti FROM tokens WHERE parent_jti = ANY ($1::text[]) "    \
	"UNION SELECT t.jti FROM tokens t JOIN d ON t.parent_jti = d.jti) "                        \
	"UPDATE tokens SET revoked = 1, revoked_at = $2::bigint "                                  \
	"WHERE revoked = 0 AND jti IN (SELECT jti FROM d) RETURNING jti"

/* Logs a connection failure at most once per back-off window, with the count. */
static void
pg_warn(struct pg *p)
{
	char msg[256];
	size_t n;
	double now = mono();

	if (now < p->warn_at) {
		p->suppressed++;
		return;
	}
	snprintf(msg, sizeof(msg), "%s", PQerrorMessage(p->conn));
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	if (p->suppressed > 0)
		xc_log(AGENTID_LOG_WARN,
		    "postgres: connection lost, resetting: %s (%lu more failures since the last "
		    "message)",
		    n > 0 ? msg : "no connection", p->suppressed);
	else
		xc_log(AGENTID_LOG_WARN, "postgres: connection lost, resetting: %s",
		    n > 0 ? msg : "no connection");
	p->suppressed = 0;
	p->warn_at = now + PG_RETRY_SECONDS;
}

/* One reset attempt unless one failed less than a back-off window ago; 0 when connected. */
static int
pg_reconnect(struct pg *p)
{
	atomic_store(&p->down, 1);
	if (mono() < p->retry_at) {
		pg_warn(p);
		return -1;
	}
	PQreset(p->conn);
	if (PQstatus(p->conn) == CONNECTION_OK) {
		atomic_store(&p->down, 0);
		xc_log(AGENTID_LOG_INFO, "postgres: connection re-established");
		return 0;
	}
	p->retry_at = mono() + PG_RETRY_SECONDS;
	pg_warn(p);
	return -1;
}

static PGresult *
pg_run(struct pg *p, const char *sql, int n, const char *const *vals)
{
	/* Without parameters, PQexec: it also runs scripts of several statements. */
	return n > 0 ? PQexecParams(p->conn, sql, n, NULL, vals, NULL, NULL, 0)
	             : PQexec(p->conn, sql);
}

/* NULL when the database cannot be reached now (pg_ok maps it to AGENTID_EIO). */
static PGresult *
pg_exec(struct pg *p, const char *sql, int n, const char *const *vals)
{
	PGresult *res;

	if (PQstatus(p->conn) != CONNECTION_OK && pg_reconnect(p) != 0)
		return NULL;
	res = pg_run(p, sql, n, vals);
	if (PQstatus(p->conn) == CONNECTION_OK)
		return res;
	/* Lost during the statement: reset (if not backing off) and retry it once. */
	PQclear(res);
	if (pg_reconnect(p) != 0)
		return NULL;
	return pg_run(p, sql, n, vals);
}

static int
pg_ok(struct pg *p, PGresult *res, const char *what)
{
	ExecStatusType s = PQresultStatus(res);

	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
		return 0;
	/* Unreachable: pg_warn has said so, rate-limited. */
	if (res == NULL)
		return AGENTID_EIO;
	xc_log(AGENTID_LOG_ERROR, "postgres: %s: %s", what, PQerrorMessage(p->conn));
	return AGENTID_EIO;
}

static int
pg_simple(struct pg *p, const char *sql)
{
	PGresult *res = pg_exec(p, sql, 0, NULL);
	int r = pg_ok(p, res, "exec");

	PQclear(res);
	return r;
}

static void
pg_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

int
xc_store_pg_open(const char *conninfo, void **db, char *errbuf, size_t errlen)
{
	/*
	 * connect_timeout comes before the expanded conninfo, so a value there
	 * overrides this default (libpq processes the arrays in order).
	 */
	static const char *const keys[] = { "connect_timeout", "dbname", NULL };
	const char *vals[] = { PG_CONNECT_TIMEOUT, conninfo, NULL };
	struct pg *p;

	*db = NULL;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return AGENTID_ENOMEM;
	atomic_init(&p->down, 0);
	p->conn = PQconnectdbParams(keys, vals, 1);
	if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK) {
		snprintf(errbuf, errlen, "postgres: cannot connect: %s",
		    p->conn != NULL ? PQerrorMessage(p->conn) : "out of memory");
		PQfinish(p->conn);
		free(p);
		return AGENTID_EIO;
	}
	PQsetNoticeProcessor(p->conn, pg_notice, NULL);
	*db = p;
	return 0;
}

static void
pgs_close(void *db)
{
	struct pg *p = db;

	if (p == NULL)
		return;
	PQfinish(p->conn);
	free(p);
}

static int
pgs_migrate(void *db)
{
	struct pg *p = db;
	PGresult *res;
	int version, r;

	if ((r = pg_simple(p, "BEGIN")) != 0)
		return r;
	if ((r = pg_simple(p, "SELECT pg_advisory_xact_lock(" PG_LOCK_MIGRATE ")")) != 0
	    || (r = pg_simple(
	            p, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
	        != 0)
		goto fail;
	res = pg_exec(p, "SELECT coalesce(max(version), 0) FROM schema_version", 0, NULL);
	if ((r = pg_ok(p, res, "schema version")) != 0) {
		PQclear(res);
		goto fail;
	}
	version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (version > SCHEMA_VERSION) {
		xc_log(AGENTID_LOG_ERROR, "postgres: schema %d is newer than this server (%d)",
		    version, SCHEMA_VERSION);
		r = AGENTID_EUNSUPPORTED;
		goto fail;
	}
	if (version < 1) {
		if ((r = pg_simple(p, schema_v1)) != 0)
			goto fail;
		xc_log(AGENTID_LOG_INFO, "postgres: created schema version 1");
	}
	return pg_simple(p, "COMMIT");
fail:
	pg_simple(p, "ROLLBACK");
	return r;
}

/*
 * A child is written only while its parent row, locked FOR SHARE, is not
 * revoked.  When a revocation holds that row, the lock waits for it and
 * re-reads the row after it commits (READ COMMITTED re-checks the WHERE
 * clause on the newest version), so the child is refused; when the insert
 * holds it first, the revocation waits and its next pass finds the child.
 * A missing parent refuses the child too.
 */
#define INSERT_COLUMNS                                                                             \
	"INSERT INTO tokens (jti, parent_jti, root_jti, subject, actor, client_id, task, scope, "  \
	"aud, act, cnf, iat, exp, status_idx, subject_iss, revoked) "
#define INSERT_VALUES                                                                              \
	"$1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, "         \
	"$9::text, $10::text, $11::text, $12::bigint, $13::bigint, $14::bigint, $15::text, 0"

static int
pgs_ledger_insert(void *db, const struct xc_ledger_entry *e)
{
	static const char sql_root[] = INSERT_COLUMNS "VALUES (" INSERT_VALUES ")";
	static const char sql_child[] = INSERT_COLUMNS
	    "SELECT " INSERT_VALUES
	    " FROM (SELECT 1 FROM tokens WHERE jti = $2::text AND revoked = 0 FOR SHARE) parent";
	struct pg *p = db;
	char iat[24], exp[24], idx[24];
	const char *v[15];
	PGresult *res;
	int r;

	snprintf(iat, sizeof(iat), "%lld", (long long)e->iat);
	snprintf(exp, sizeof(exp), "%lld", (long long)e->exp);
	snprintf(idx, sizeof(idx), "%lld", (long long)e->status_idx);
	v[0] = e->jti;
	v[1] = e->parent_jti;
	v[2] = e->root_jti;
	v[3] = e->subject;
	v[4] = e->actor;
	v[5] = e->client_id;
	v[6] = e->task;
	v[7] = e->scope;
	v[8] = e->aud;
	v[9] = e->act;
	v[10] = e->cnf;
	v[11] = iat;
	v[12] = exp;
	v[13] = idx;
	v[14] = e->subject_iss;
	res = pg_exec(p, e->parent_jti != NULL ? sql_child : sql_root, 15, v);
	if ((r = pg_ok(p, res, "ledger insert")) == 0 && strcmp(PQcmdTuples(res), "1") != 0)
		r = AGENTID_EREJECTED; /* the parent is revoked (or gone) */
	PQclear(res);
	return r;
}

static char *
val(PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? NULL : strdup(PQgetvalue(res, 0, col));
}

static int
pgs_ledger_get(void *db, const char *jti, struct xc_ledger_entry *e)
{
	struct pg *p = db;
	const char *v[1] = { jti };
	PGresult *res;
	int r;

	res = pg_exec(p,
	    "SELECT parent_jti, root_jti, subject, actor, client_id, task, scope, aud, act, cnf, "
	    "iat, exp, status_idx, revoked, subject_iss FROM tokens WHERE jti = $1",
	    1, v);
	if ((r = pg_ok(p, res, "ledger get")) == 0) {
		if (PQntuples(res) == 0)
			r = AGENTID_ENOTFOUND;
		else {
			snprintf(e->jti, sizeof(e->jti), "%s", jti);
			e->parent_jti = val(res, 0);
			e->root_jti = val(res, 1);
			e->subject = val(res, 2);
			e->actor = val(res, 3);
			e->client_id = val(res, 4);
			e->task = val(res, 5);
			e->scope = val(res, 6);
			e->aud = val(res, 7);
			e->act = val(res, 8);
			e->cnf = val(res, 9);
			e->iat = strtoll(PQgetvalue(res, 0, 10), NULL, 10);
			e->exp = strtoll(PQgetvalue(res, 0, 11), NULL, 10);
			e->status_idx = strtoll(PQgetvalue(res, 0, 12), NULL, 10);
			e->revoked = atoi(PQgetvalue(res, 0, 13));
			e->subject_iss = val(res, 14);
		}
	}
	PQclear(res);
	return r;
}

/*
 * A statement inside a transaction: unlike pg_exec it never reconnects and
 * retries, which would run the rest of the transaction outside it.  NULL
 * when the connection is lost (the next pg_exec resets it).
 */
static PGresult *
pg_exec_tx(struct pg *p, const char *sql, int n, const char *const *vals)
{
	PGresult *res = pg_run(p, sql, n, vals);

	if (PQstatus(p->conn) == CONNECTION_OK)
		return res;
	PQclear(res);
	atomic_store(&p->down, 1);
	pg_warn(p);
	return NULL;
}

/* Appends the jti column of res to the text-array literal in *buf ("{" ... "}"). */
static int
jti_array(PGresult *res, char **buf)
{
	size_t need = 3, off = 0, i, j;
	const char *s;
	char *a;
	int row;

	free(*buf);
	*buf = NULL;
	for (row = 0; row < PQntuples(res); row++)
		need += 3 + 2 * strlen(PQgetvalue(res, row, 0));
	if ((a = malloc(need)) == NULL)
		return AGENTID_ENOMEM;
	a[off++] = '{';
	for (row = 0; row < PQntuples(res); row++) {
		s = PQgetvalue(res, row, 0);
		if (row > 0)
			a[off++] = ',';
		a[off++] = '"';
		for (i = 0, j = strlen(s); i < j; i++) {
			if (s[i] == '"' || s[i] == '\\')
				a[off++] = '\\';
			a[off++] = s[i];
		}
		a[off++] = '"';
	}
	a[off++] = '}';
	a[off] = '\0';
	*buf = a;
	return 0;
}

/*
 * One transaction: the first pass revokes what is visible, each further pass
 * the not yet revoked descendants of what the previous pass revoked, until a
 * pass finds none (see the top of the file for why this closes the race with
 * inserts on other nodes).
 */
static int
pgs_revoke(void *db, enum xc_revoke_by by, const char *value, int64_t now, long *n)
{
	static const char *const sql[] = {
		[XC_REVOKE_JTI] = REVOKE_FIRST("jti"),
		[XC_REVOKE_AGENT] = REVOKE_FIRST("actor"),
		[XC_REVOKE_SUBJECT] = REVOKE_FIRST("subject"),
		[XC_REVOKE_TASK] = REVOKE_FIRST("task"),
	};
	struct pg *p = db;
	char nows[24], *roots = NULL;
	const char *v[2] = { value, nows };
	PGresult *res = NULL;
	long total = 0;
	int r, pass;

	*n = 0;
	if ((int)by < 0 || (int)by > XC_REVOKE_TASK)
		return AGENTID_EINVAL;
	snprintf(nows, sizeof(nows), "%lld", (long long)now);
	if ((r = pg_simple(p, "BEGIN; SELECT pg_advisory_xact_lock(" PG_LOCK_REVOKE ")")) != 0)
		goto fail;
	for (pass = 0;; pass++) {
		if (pass == PG_REVOKE_MAX_PASSES) {
			xc_log(AGENTID_LOG_ERROR,
			    "postgres: revoke: descendants still being issued "
			    "after %d passes; giving up",
			    pass);
			r = AGENTID_EIO;
			goto fail;
		}
		res = pg_exec_tx(p, pass == 0 ? sql[by] : REVOKE_NEXT, 2, v);
		if ((r = pg_ok(p, res, "revoke")) != 0)
			goto fail;
		if (PQntuples(res) == 0)
			break;
		total += PQntuples(res);
		if ((r = jti_array(res, &roots)) != 0)
			goto fail;
		v[0] = roots;
		PQclear(res);
		res = NULL;
	}
	PQclear(res);
	res = pg_exec_tx(p,
	    total > 0 ? "UPDATE counters SET value = value + 1 WHERE name = 'revocation_epoch'; "
	                "COMMIT"
	              : "COMMIT",
	    0, NULL);
	if ((r = pg_ok(p, res, "revoke commit")) != 0)
		goto fail;
	PQclear(res);
	free(roots);
	*n = total;
	return 0;
fail:
	PQclear(res);
	free(roots);
	if (PQstatus(p->conn) == CONNECTION_OK)
		PQclear(pg_run(p, "ROLLBACK", 0, NULL));
	return r;
}

static int
pgs_status_bits(void *db, int64_t first, int64_t count, unsigned char *bits)
{
	struct pg *p = db;
	char a[24], b[24];
	const char *v[2] = { a, b };
	PGresult *res;
	int64_t idx;
	int i, r;

	snprintf(a, sizeof(a), "%lld", (long long)first);
	snprintf(b, sizeof(b), "%lld", (long long)(first + count));
	res = pg_exec(p,
	    "SELECT status_idx FROM tokens WHERE revoked = 1 AND status_idx >= $1 AND "
	    "status_idx < $2",
	    2, v);
	if ((r = pg_ok(p, res, "status bits")) == 0) {
		for (i = 0; i < PQntuples(res); i++) {
			idx = strtoll(PQgetvalue(res, i, 0), NULL, 10) - first;
			if (idx >= 0 && idx < count)
				bits[idx / 8] |= (unsigned char)(1u << (idx % 8));
		}
	}
	PQclear(res);
	return r;
}

static int
pgs_status_reserve(void *db, int64_t count, int64_t *first)
{
	struct pg *p = db;
	char c[24];
	const char *v[1] = { c };
	PGresult *res;
	int r;

	snprintf(c, sizeof(c), "%lld", (long long)count);
	res = pg_exec(p,
	    "UPDATE counters SET value = value + $1::bigint WHERE name = 'status_next' "
	    "RETURNING value - $1::bigint",
	    1, v);
	if ((r = pg_ok(p, res, "status reserve")) == 0) {
		if (PQntuples(res) == 1)
			*first = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		else
			r = AGENTID_EIO;
	}
	PQclear(res);
	return r;
}

static int
pgs_revocation_epoch(void *db, int64_t *epoch)
{
	struct pg *p = db;
	PGresult *res;
	int r;

	res = pg_exec(p, "SELECT value FROM counters WHERE name = 'revocation_epoch'", 0, NULL);
	if ((r = pg_ok(p, res, "epoch")) == 0) {
		if (PQntuples(res) == 1)
			*epoch = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		else
			r = AGENTID_EIO;
	}
	PQclear(res);
	return r;
}

static int
pgs_replay_check(void *db, const char *jti, int64_t exp)
{
	struct pg *p = db;
	char e[24];
	const char *v[2] = { jti, e };
	PGresult *res;
	int r;

	snprintf(e, sizeof(e), "%lld", (long long)exp);
	res = pg_exec(
	    p, "INSERT INTO dpop_jti (jti, exp) VALUES ($1, $2) ON CONFLICT DO NOTHING", 2, v);
	if ((r = pg_ok(p, res, "replay")) == 0)
		r = strcmp(PQcmdTuples(res), "1") == 0 ? 0 : AGENTID_EREJECTED;
	PQclear(res);
	return r;
}

static int
pgs_prune(void *db, int64_t now)
{
	struct pg *p = db;
	char a[24], b[24];
	const char *v1[1] = { a }, *v2[1] = { b };
	PGresult *res;
	int r;

	snprintf(a, sizeof(a), "%lld", (long long)(now - 86400));
	snprintf(b, sizeof(b), "%lld", (long long)now);
	res = pg_exec(p, "DELETE FROM tokens WHERE exp < $1", 1, v1);
	r = pg_ok(p, res, "prune");
	PQclear(res);
	if (r != 0)
		return r;
	res = pg_exec(p, "DELETE FROM dpop_jti WHERE exp < $1", 1, v2);
	r = pg_ok(p, res, "prune");
	PQclear(res);
	return r;
}

static int
pgs_available(void *db)
{
	struct pg *p = db;

	return !atomic_load(&p->down);
}

static void
pgs_probe(void *db)
{
	struct pg *p = db;

	if (PQstatus(p->conn) != CONNECTION_OK || atomic_load(&p->down))
		(void)pg_reconnect(p);
}

const struct xc_store_ops xc_store_pg_ops = {
	.name = "postgres",
	.migrate = pgs_migrate,
	.available = pgs_available,
	.probe = pgs_probe,
	.ledger_insert = pgs_ledger_insert,
	.ledger_get = pgs_ledger_get,
	.revoke = pgs_revoke,
	.status_bits = pgs_status_bits,
	.status_reserve = pgs_status_reserve,
	.revocation_epoch = pgs_revocation_epoch,
	.replay_check = pgs_replay_check,
	.prune = pgs_prune,
	.close = pgs_close,
};

#else /* !HAVE_LIBPQ */

int
xc_store_pg_open(const char *conninfo, void **db, char *errbuf, size_t errlen)
{
	(void)conninfo;
	*db = NULL;
	snprintf(errbuf, errlen, "this build has no PostgreSQL support (libpq was not found)");
	return AGENTID_EUNSUPPORTED;
}

static int
nopg(void *db)
{
	(void)db;
	return AGENTID_EUNSUPPORTED;
}

static void
nopg_close(void *db)
{
	(void)db;
}

const struct xc_store_ops xc_store_pg_ops = {
	.name = "postgres",
	.migrate = nopg,
	.close = nopg_close,
};

#endif
