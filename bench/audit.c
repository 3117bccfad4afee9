/*
 * bench/audit: the cost of tamper evidence and of revocation checks.
 *
 *   audit append vs plain logger     records/s through agentid_audit_append() (hash
 *                                    chained, no fsync) against a plain JSON-lines
 *                                    logger writing the same line without hashing
 *                                    (snprintf + write(2)): the cost of tamper evidence
 *                                    (target >= 0.7)
 *   audit append vs write(2)         the same against write(2) of the line already built:
 *                                    the physical limit of one write per record
 *   ... +checkpoints                 the same with Ed25519 checkpoints every 1000 records
 *   status list check                       ns per agentid_status_check() on a list of
 *                                           2^20 entries (no baseline)
 *
 * The files live in $TMPDIR (default /tmp) and are emptied every 64k records.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <agentid/agentid.h>

#include "bench.h"

#define TRUNCATE_EVERY 65536

struct append_ctx {
	struct agentid_audit *a;
	int trunc_fd;
	uint64_t n;
	char resource[64];
	struct agentid_audit_event ev;
};

struct write_ctx {
	int fd;
	uint64_t n;
	const char *line;
	size_t len;
};

static int
op_append(void *arg)
{
	struct append_ctx *c = arg;

	if (++c->n % TRUNCATE_EVERY == 0 && ftruncate(c->trunc_fd, 0) != 0)
		return -1;
	snprintf(c->resource, sizeof(c->resource), "GET /api/v1/documents/%llu",
	    (unsigned long long)(c->n % 100000));
	return agentid_audit_append(c->a, &c->ev);
}

/*
 * A plain JSON-lines logger writing the same record without the hash chain:
 * the line formatted with snprintf (timestamp included) and written.  This
 * is the baseline "the same lines without hashing" is measured against.
 */
struct plain_ctx {
	int fd;
	uint64_t n;
	char line[1024];
	const struct agentid_audit_event *ev;
	const char *stream;
};

static int
op_plain(void *arg)
{
	struct plain_ctx *c = arg;
	const struct agentid_audit_event *ev = c->ev;
	struct timespec now;
	struct tm tm;
	int len;

	if (++c->n % TRUNCATE_EVERY == 0 && ftruncate(c->fd, 0) != 0)
		return -1;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	len = snprintf(c->line, sizeof(c->line),
	    "{\"agent\":\"%s\",\"aud\":[\"%s\"],\"client\":\"%s\",\"decision\":\"%s\","
	    "\"event\":\"%s\",\"iss\":\"%s\",\"jti\":\"%s\",\"parent_jti\":\"%s\","
	    "\"prev\":\"%064d\",\"reason\":\"%s\",\"resource\":\"GET /api/v1/documents/%llu\","
	    "\"scope\":\"%s\",\"seq\":%llu,\"stream\":\"%s\",\"subject\":\"%s\","
	    "\"task\":\"%s\",\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\",\"hash\":\"%064d\"}\n",
	    ev->agent, ev->aud[0], ev->client, ev->decision, ev->event, ev->iss, ev->jti,
	    ev->parent_jti, 0, ev->reason, (unsigned long long)(c->n % 100000), ev->scope,
	    (unsigned long long)c->n, c->stream, ev->subject, ev->task, tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    (long)(now.tv_nsec / 1000), 0);
	if (len <= 0 || (size_t)len >= sizeof(c->line))
		return -1;
	return write(c->fd, c->line, (size_t)len) == len ? 0 : -1;
}

static int
op_write(void *arg)
{
	struct write_ctx *c = arg;

	if (++c->n % TRUNCATE_EVERY == 0 && ftruncate(c->fd, 0) != 0)
		return -1;
	return write(c->fd, c->line, c->len) == (ssize_t)c->len ? 0 : -1;
}

static void
fill_event(struct append_ctx *c)
{
	static const char *aud[] = { "https://api.example.org" };

	memset(&c->ev, 0, sizeof(c->ev));
	c->ev.event = "access.allowed";
	c->ev.agent = "spiffe://example.org/agent/summarizer";
	c->ev.subject = "spiffe://example.org/user/alice";
	c->ev.task = "task-7f3e9a";
	c->ev.jti = "b4c1d2e3-5f60-4a7b-8c9d-0e1f2a3b4c5d";
	c->ev.parent_jti = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
	c->ev.iss = "https://exchange.example.org";
	c->ev.aud = aud;
	c->ev.n_aud = 1;
	c->ev.scope = "documents:read";
	c->ev.resource = c->resource;
	c->ev.decision = "allow";
	c->ev.reason = "ok";
	c->ev.client = "10.0.0.7";
}

/* The second line of path (the first event record), for the baseline. */
static char *
sample_line(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = -1;
	int i;

	if (f == NULL)
		return NULL;
	for (i = 0; i < 2; i++)
		n = getline(&line, &cap, f);
	fclose(f);
	if (n <= 0) {
		free(line);
		return NULL;
	}
	*len = (size_t)n;
	return line;
}

static int
bench_append(const char *dir, double seconds, struct agentid_key *key, const char *name)
{
	struct agentid_audit_config cfg;
	struct append_ctx ac;
	struct write_ctx wc;
	struct plain_ctx pc;
	char rowname[128];
	double rate_a2, rate_p;
	struct agentid_error err;
	char apath[512], wpath[512], *line = NULL;
	double rate_a, rate_w;
	int r = -1;

	memset(&ac, 0, sizeof(ac));
	memset(&wc, 0, sizeof(wc));
	memset(&pc, 0, sizeof(pc));
	ac.trunc_fd = wc.fd = pc.fd = -1;
	snprintf(apath, sizeof(apath), "%s/bench-audit.%ld.log", dir, (long)getpid());
	snprintf(wpath, sizeof(wpath), "%s/bench-write.%ld.log", dir, (long)getpid());
	unlink(apath);
	agentid_audit_config_init(&cfg);
	cfg.path = apath;
	cfg.component = "bench";
	cfg.signing_key = key;
	cfg.checkpoint_records = 1000;
	cfg.checkpoint_seconds = 0;
	cfg.fsync = AGENTID_AUDIT_FSYNC_NEVER;
	fill_event(&ac);
	snprintf(ac.resource, sizeof(ac.resource), "GET /api/v1/documents/%d", 12345);
	if (agentid_audit_open(&cfg, &ac.a, &err) != 0 || agentid_audit_append(ac.a, &ac.ev) != 0) {
		fprintf(stderr, "bench/audit: cannot open %s\n", apath);
		goto out;
	}
	if ((line = sample_line(apath, &wc.len)) == NULL ||
	    (ac.trunc_fd = open(apath, O_WRONLY)) < 0 ||
	    (wc.fd = open(wpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600)) < 0)
		goto out;
	wc.line = line;
	pc.ev = &ac.ev;
	pc.stream = agentid_audit_stream_id(ac.a);
	if ((pc.fd = open(wpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600)) < 0)
		goto out;
	if (bench_compare(op_append, &ac, op_plain, &pc, seconds, &rate_a, &rate_p) != 0 ||
	    bench_compare(op_append, &ac, op_write, &wc, seconds, &rate_a2, &rate_w) != 0) {
		fprintf(stderr, "bench/audit: an operation failed\n");
		goto out;
	}
	snprintf(rowname, sizeof(rowname), "%s vs plain logger", name);
	bench_row(rowname, rate_a, "records/s", rate_p, rate_a / rate_p);
	snprintf(rowname, sizeof(rowname), "%s vs write(2)", name);
	bench_row(rowname, rate_a2, "records/s", rate_w, rate_a2 / rate_w);
	r = 0;
out:
	agentid_audit_close(ac.a);
	if (ac.trunc_fd >= 0)
		close(ac.trunc_fd);
	if (wc.fd >= 0)
		close(wc.fd);
	if (pc.fd >= 0)
		close(pc.fd);
	unlink(apath);
	unlink(wpath);
	free(line);
	return r;
}

struct check_ctx {
	struct agentid_status_checker *chk;
	const char *uri;
	size_t uri_len;
	uint64_t idx;
	time_t now;
	uint64_t revoked;
};

static int
op_check(void *arg)
{
	struct check_ctx *c = arg;
	struct agentid_error err;

	c->idx = (c->idx * 2862933555777941757ULL + 3037000493ULL);
	if (agentid_status_check(c->chk, c->uri, c->uri_len, (c->idx >> 20) & ((1u << 20) - 1),
		c->now, &err) != 0)
		c->revoked++;
	return 0;
}

static int
bench_status(const char *dir, double seconds)
{
	struct agentid_status_checker_config cfg;
	struct agentid_status_list_claims claims;
	struct agentid_status_list *l = NULL;
	struct agentid_keyset *ks = NULL;
	struct agentid_key *key = NULL;
	struct agentid_error err;
	struct check_ctx cc;
	uint64_t ops = 0, elapsed = 0;
	char path[512], *jwt = NULL;
	FILE *f;
	size_t i;
	int r = -1;

	memset(&cc, 0, sizeof(cc));
	cc.uri = "https://issuer.example.org/statuslists/1";
	cc.uri_len = strlen(cc.uri);
	cc.now = time(NULL);
	snprintf(path, sizeof(path), "%s/bench-list.%ld.jwt", dir, (long)getpid());
	if (agentid_key_generate(AGENTID_ALG_ES256, &key) != 0 ||
	    agentid_key_set_kid(key, "bench") != 0 || agentid_keyset_new(&ks) != 0 ||
	    agentid_keyset_add(ks, key) != 0 || agentid_status_list_new(1u << 20, 2, &l) != 0)
		goto out;
	for (i = 0; i < (1u << 20); i += 97)
		agentid_status_list_set(l, i, i % 2 == 0 ? 1 : 2);
	memset(&claims, 0, sizeof(claims));
	claims.uri = cc.uri;
	claims.iat = cc.now;
	claims.exp = cc.now + 3600;
	if (agentid_status_list_sign(l, key, AGENTID_ALG_ES256, &claims, &jwt) != 0 ||
	    (f = fopen(path, "w")) == NULL)
		goto out;
	fputs(jwt, f);
	fclose(f);
	agentid_status_checker_config_init(&cfg);
	cfg.keys = ks;
	if (agentid_status_checker_new(&cfg, &cc.chk, &err) != 0 ||
	    agentid_status_checker_add_source(cc.chk, cc.uri, path) != 0 ||
	    agentid_status_checker_refresh(cc.chk, cc.now, 1, &err) != 0) {
		fprintf(stderr, "bench/audit: status list setup failed: %s\n", err.detail);
		goto out;
	}
	if (bench_run_for(op_check, &cc, (uint64_t)(seconds * 1e8), &ops, &elapsed) != 0)
		goto out;
	ops = elapsed = 0;
	if (bench_run_for(op_check, &cc, (uint64_t)(seconds * 1e9), &ops, &elapsed) != 0)
		goto out;
	bench_row("status list check (2^20 entries)", (double)elapsed / (double)ops, "ns/check",
	    NAN, NAN);
	r = 0;
out:
	agentid_status_checker_free(cc.chk);
	agentid_status_list_free(l);
	agentid_keyset_free(ks);
	agentid_key_free(key);
	agentid_free(jwt);
	unlink(path);
	return r;
}

int
main(void)
{
	const char *dir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	double seconds = bench_seconds(2.0);
	struct agentid_key *key = NULL;
	int r = 0;

	bench_pin_one_core();
	bench_header();
	if (agentid_key_generate(AGENTID_ALG_EDDSA, &key) != 0)
		return 1;
	r |= bench_append(dir, seconds, NULL, "audit append");
	r |= bench_append(dir, seconds, key, "audit append +checkpoints");
	r |= bench_status(dir, seconds / 2);
	agentid_key_free(key);
	return r != 0;
}
