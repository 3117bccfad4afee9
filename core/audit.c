/*
 * The audit log writer: hash-chained JSON Lines with signed checkpoints.
 *
 * Each record is built directly in its canonical form -- the bytes jansson
 * produces with JSON_COMPACT | JSON_SORT_KEYS for the record without its
 * "hash" member -- hashed as SHA-256(prev || canonical), and written with
 * one write(2) on an O_APPEND descriptor as canonical-without-'}' +
 * ',"hash":"<hex>"}' + '\n'.  doc/audit-format.md is the reference.
 *
 * Building the canonical bytes here rather than through json_dumps keeps
 * the hot path free of a JSON tree per record; audit_verify.c recomputes
 * them with jansson, and tests/unit/test_audit.c checks the two agree.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "audit_int.h"

#define AUDIT_STREAM_MAX 200

struct agentid_audit {
	pthread_mutex_t mu;
	char *path;
	int fd;
	char *cp_path;
	int cp_fd;
	int mode;
	char *component;
	char *host;
	char *origin;
	struct agentid_key *key;
	struct audit_note_key nk;
	char *vkey;
	unsigned cp_records;
	unsigned cp_seconds;
	enum agentid_audit_fsync fsync;
	uint64_t rotate_bytes;

	/*
	 * The stream of the process that owns the handle.  gen is the fork
	 * generation the stream was started in; it is read before the lock is
	 * taken, to notice a child of fork() without a system call per record.
	 */
	atomic_uint gen;
	int started;
	int broken;
	char stream[AUDIT_STREAM_MAX];
	uint64_t seq; /* of the next record */
	unsigned char head[AUDIT_HASH_LEN];
	unsigned since_cp;
	time_t last_cp;
	EVP_MD *sha256;
	EVP_MD_CTX *md;
	struct audit_lbuf line;
	time_t ts_sec; /* the second ts_prefix was made for */
	char ts_prefix[64]; /* "2025-05-01T10:15:00." */
	char ts[96];
	char prev_hex[AUDIT_HEX_LEN + 1];
};

/* Bumped in every child of fork(): a handle from an older generation belongs to a parent. */
static atomic_uint fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
on_fork_child(void)
{
	atomic_fetch_add(&fork_gen, 1);
}

static void
register_atfork(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

/* RFC 3339 UTC with microseconds: 2024-05-01T10:15:00.123456Z */
static void
format_ts(char *out, size_t outsz, const struct timespec *ts)
{
	struct tm tm;
	time_t t = ts->tv_sec;

	gmtime_r(&t, &tm);
	snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000);
}

/* Keeps [A-Za-z0-9._-]; anything else becomes '_' (stream ids and origins are plain). */
static char *
sanitized_dup(const char *s)
{
	char *d;
	size_t i;

	if ((d = agentid_strdup(s)) == NULL)
		return NULL;
	for (i = 0; d[i] != '\0'; i++) {
		char c = d[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		        || c == '.' || c == '_' || c == '-'))
			d[i] = '_';
	}
	return d;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return AGENTID_EIO;
		}
		/* A short write to a regular file means the disk is full: the line is torn. */
		if ((size_t)w != n)
			return AGENTID_EIO;
		n = 0;
	}
	return 0;
}

static int
open_log(const char *path, int mode)
{
	struct stat st;
	char last;
	int fd;

	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode)) < 0)
		return -1;
	/*
	 * A writer killed inside write(2) can leave a line without its newline.
	 * Terminate it so that our first record starts on a line of its own; the
	 * verifier reports the fragment as a torn record.  The file size can run
	 * ahead of a concurrent append that is still being copied, so the byte
	 * read may belong to a line that will be complete: then this adds an
	 * empty line, which the verifier skips.
	 */
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		int rfd = open(path, O_RDONLY | O_CLOEXEC);
		if (rfd >= 0) {
			if (pread(rfd, &last, 1, st.st_size - 1) == 1 && last != '\n')
				(void)write_all(fd, "\n", 1);
			close(rfd);
		}
	}
	return fd;
}

/* Renames a full log to <path>.<UTC time> and reopens path; the chain continues there. */
static int
rotate(struct agentid_audit *a)
{
	struct agentid_buf name;
	struct timespec now;
	struct stat ps, fs;
	char ts[96];
	int fd, i, r = 0;

	agentid_buf_init(&name, 0);
	/* Several processes share the file: one of them renames it, the others follow. */
	if (flock(a->fd, LOCK_EX) != 0)
		return AGENTID_EIO;
	if (fstat(a->fd, &fs) == 0 && stat(a->path, &ps) == 0 && ps.st_ino == fs.st_ino
	    && ps.st_dev == fs.st_dev) {
		clock_gettime(CLOCK_REALTIME, &now);
		format_ts(ts, sizeof(ts), &now);
		for (i = 0; i < 100; i++) {
			name.len = 0;
			r = i == 0 ? agentid_buf_printf(&name, "%s.%s", a->path, ts)
			           : agentid_buf_printf(&name, "%s.%s-%d", a->path, ts, i);
			if (r != 0 || access(name.data, F_OK) != 0)
				break;
		}
		if (r == 0 && rename(a->path, name.data) != 0)
			r = AGENTID_EIO;
	}
	if (r == 0) {
		if ((fd = open_log(a->path, a->mode)) < 0) {
			r = AGENTID_EIO;
		} else {
			flock(a->fd, LOCK_UN);
			close(a->fd);
			a->fd = fd;
			agentid_buf_free(&name);
			return 0;
		}
	}
	flock(a->fd, LOCK_UN);
	agentid_buf_free(&name);
	return r;
}

/* ts for now: the date and time part is formatted once per second. */
static void
stamp(struct agentid_audit *a)
{
	struct timespec now;
	struct tm tm;
	long us;
	size_t n;
	int i;

	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec != a->ts_sec || a->ts_prefix[0] == '\0') {
		gmtime_r(&now.tv_sec, &tm);
		snprintf(a->ts_prefix, sizeof(a->ts_prefix), "%04d-%02d-%02dT%02d:%02d:%02d.",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		a->ts_sec = now.tv_sec;
	}
	n = strlen(a->ts_prefix);
	memcpy(a->ts, a->ts_prefix, n);
	us = now.tv_nsec / 1000;
	for (i = 5; i >= 0; i--, us /= 10)
		a->ts[n + (size_t)i] = (char)('0' + us % 10);
	a->ts[n + 6] = 'Z';
	a->ts[n + 7] = '\0';
}

/*
 * Builds the canonical record, hashes it, writes the line and advances the
 * chain.  With presorted, fs already holds ts, stream, seq and prev (pointing
 * at a->ts, a->stream, AF_SEQ and a->prev_hex) in sorted order; otherwise
 * they are added here and fs is sorted.  Called with a->mu held.
 */
static int
write_record(struct agentid_audit *a, struct audit_fields *fs, int presorted)
{
	unsigned char hash[AUDIT_HASH_LEN];
	struct stat st;
	unsigned int mdlen;
	int r;

	stamp(a);
	if (!presorted) {
		audit_fields_plain(fs, "ts", a->ts);
		audit_fields_plain(fs, "stream", a->stream);
		audit_fields_seq(fs);
		audit_fields_plain(fs, "prev", a->prev_hex);
		if ((r = audit_fields_sort(fs)) != 0)
			return r;
	}
	if (fs->overflow)
		return AGENTID_ERANGE;

	a->line.len = 0;
	if ((r = audit_emit_canonical(&a->line, fs, a->seq)) != 0)
		return r;
	if (EVP_DigestInit_ex(a->md, a->sha256, NULL) != 1
	    || EVP_DigestUpdate(a->md, a->head, AUDIT_HASH_LEN) != 1
	    || EVP_DigestUpdate(a->md, a->line.p, a->line.len) != 1
	    || EVP_DigestFinal_ex(a->md, hash, &mdlen) != 1)
		return AGENTID_ECRYPTO;
	/* Drop the closing brace and append the hash member: still one JSON object per line. */
	a->line.len--;
	if ((r = audit_put(&a->line, ",\"hash\":\"", 9)) != 0
	    || (r = audit_lbuf_grow(&a->line, AUDIT_HEX_LEN + 4)) != 0)
		return r;
	audit_hex(hash, AUDIT_HASH_LEN, a->line.p + a->line.len);
	a->line.len += AUDIT_HEX_LEN;
	if ((r = audit_put(&a->line, "\"}\n", 3)) != 0)
		return r;

	if (a->rotate_bytes != 0 && fstat(a->fd, &st) == 0 && st.st_size > 0
	    && (uint64_t)st.st_size + a->line.len > a->rotate_bytes && (r = rotate(a)) != 0) {
		agentid_log(AGENTID_LOG_ERROR, "audit: cannot rotate %s", a->path);
		return r;
	}
	if ((r = write_all(a->fd, a->line.p, a->line.len)) != 0) {
		/* The chain cannot go on from a record that may be half on disk. */
		a->broken = 1;
		agentid_log(
		    AGENTID_LOG_ERROR, "audit: write to %s failed: %s", a->path, strerror(errno));
		return r;
	}
	if (a->fsync == AGENTID_AUDIT_FSYNC_RECORD)
		fdatasync(a->fd);
	memcpy(a->head, hash, AUDIT_HASH_LEN);
	/* The next record's prev: the hex just written (before '"}\n'). */
	memcpy(a->prev_hex, a->line.p + a->line.len - 3 - AUDIT_HEX_LEN, AUDIT_HEX_LEN);
	a->seq++;
	a->since_cp++;
	return 0;
}

static int
write_checkpoint(struct agentid_audit *a)
{
	struct agentid_buf text, root;
	struct audit_fields fs;
	int r;

	if (a->key == NULL || a->since_cp == 0 || !a->started || a->broken)
		return 0;
	agentid_buf_init(&text, 0);
	agentid_buf_init(&root, 0);
	/* c2sp.org/tlog-checkpoint: origin, tree size, root hash; then the signature lines. */
	if ((r = audit_b64_encode(a->head, AUDIT_HASH_LEN, &root)) != 0
	    || (r = agentid_buf_printf(&text, "%s/%s\n%llu\n%s\n", a->origin, a->stream,
	            (unsigned long long)a->seq, root.data))
	        != 0
	    || (r = audit_note_sign(&a->nk, text.data, text.len, &text)) != 0)
		goto out;
	fs.n = 0;
	fs.overflow = 0;
	audit_fields_str(&fs, "event", "checkpoint");
	audit_fields_int(&fs, "size", (int64_t)a->seq);
	audit_fields_str(&fs, "root", root.data);
	audit_fields_str(&fs, "note", text.data);
	if ((r = write_record(a, &fs, 0)) != 0)
		goto out;
	a->since_cp = 0;
	a->last_cp = time(NULL);
	if (a->fsync == AGENTID_AUDIT_FSYNC_CHECKPOINT)
		fdatasync(a->fd);
	if (a->cp_fd >= 0 && write_all(a->cp_fd, a->line.p, a->line.len) != 0)
		agentid_log(
		    AGENTID_LOG_WARN, "audit: cannot write the checkpoint copy to %s", a->cp_path);
out:
	agentid_buf_free(&text);
	agentid_buf_free(&root);
	return r;
}

/* 1 when the calling process is the one whose stream the handle holds. */
static int
owner(struct agentid_audit *a)
{
	return atomic_load_explicit(&a->gen, memory_order_relaxed)
	    == atomic_load_explicit(&fork_gen, memory_order_relaxed);
}

/* Starts a new stream for the calling process: id, header record.  a->mu held. */
static int
stream_begin(struct agentid_audit *a, const char *parent)
{
	unsigned char rnd[4];
	char rhex[9], hex[2 * AUDIT_KEYID_LEN + 1], started[96];
	struct timespec now;
	struct audit_fields fs;
	int r;

	if (a->broken) {
		/* Whatever the failed write left behind ends here, on its own line. */
		if (write_all(a->fd, "\n", 1) != 0)
			return AGENTID_EIO;
		a->broken = 0;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	format_ts(started, sizeof(started), &now);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return AGENTID_ECRYPTO;
	audit_hex(rnd, sizeof(rnd), rhex);
	atomic_store(&a->gen, atomic_load(&fork_gen));
	/* host/component/pid/start/random: unique across hosts, restarts and pid reuse. */
	r = snprintf(a->stream, sizeof(a->stream), "%s/%s/%ld/%s/%s", a->host, a->component,
	    (long)getpid(), started, rhex);
	if (r < 0 || (size_t)r >= sizeof(a->stream))
		return AGENTID_ERANGE;
	a->seq = 0;
	memset(a->head, 0, sizeof(a->head));
	audit_hex(a->head, AUDIT_HASH_LEN, a->prev_hex);
	a->since_cp = 0;
	a->last_cp = now.tv_sec;
	a->started = 1;

	fs.n = 0;
	fs.overflow = 0;
	audit_fields_str(&fs, "event", "stream.start");
	audit_fields_str(&fs, "component", a->component);
	audit_fields_str(&fs, "host", a->host);
	audit_fields_int(&fs, "pid", (int64_t)getpid());
	audit_fields_str(&fs, "started", started);
	audit_fields_str(&fs, "writer", "agentid/" PACKAGE_VERSION);
	audit_fields_str(&fs, "parent_stream", parent);
	if (a->key != NULL) {
		audit_hex(a->nk.id, AUDIT_KEYID_LEN, hex);
		audit_fields_str(&fs, "origin", a->origin);
		audit_fields_str(&fs, "key_name", a->nk.name);
		audit_fields_str(&fs, "key_id", hex);
		audit_fields_str(&fs, "vkey", a->vkey);
	}
	if ((r = write_record(a, &fs, 0)) != 0)
		a->started = 0;
	return r;
}

/*
 * Makes sure the calling process writes into a stream of its own: after
 * fork() the child inherits the handle but must not continue the parent's
 * chain (both would write the same seq numbers).  a->mu held.
 */
static int
stream_ensure(struct agentid_audit *a)
{
	char parent[AUDIT_STREAM_MAX];

	if (a->started && !a->broken && owner(a))
		return 0;
	parent[0] = '\0';
	if (a->started && !owner(a))
		snprintf(parent, sizeof(parent), "%s", a->stream);
	return stream_begin(a, parent[0] != '\0' ? parent : NULL);
}

static void
lock(struct agentid_audit *a)
{
	/*
	 * A child of fork() may inherit the mutex locked by a thread that does
	 * not exist in the child; the child is single-threaded at that point,
	 * so a fresh mutex is safe.
	 */
	if (!owner(a))
		pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_lock(&a->mu);
}

static int
maybe_checkpoint(struct agentid_audit *a)
{
	if (a->key == NULL || a->since_cp == 0)
		return 0;
	if ((a->cp_records != 0 && a->since_cp >= a->cp_records)
	    || (a->cp_seconds != 0 && time(NULL) - a->last_cp >= (time_t)a->cp_seconds))
		return write_checkpoint(a);
	return 0;
}

AGENTID_EXPORT int
agentid_audit_fsync_from_name(const char *name, enum agentid_audit_fsync *out)
{
	if (name == NULL)
		return AGENTID_EINVAL;
	if (strcmp(name, "checkpoint") == 0)
		*out = AGENTID_AUDIT_FSYNC_CHECKPOINT;
	else if (strcmp(name, "record") == 0)
		*out = AGENTID_AUDIT_FSYNC_RECORD;
	else if (strcmp(name, "never") == 0)
		*out = AGENTID_AUDIT_FSYNC_NEVER;
	else
		return AGENTID_EINVAL;
	return 0;
}

AGENTID_EXPORT void
agentid_audit_config_init(struct agentid_audit_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->component = "agentid";
	cfg->checkpoint_records = 1000;
	cfg->checkpoint_seconds = 60;
	cfg->fsync = AGENTID_AUDIT_FSYNC_CHECKPOINT;
	cfg->file_mode = 0640;
}

static void
audit_free(struct agentid_audit *a)
{
	if (a == NULL)
		return;
	if (a->fd >= 0)
		close(a->fd);
	if (a->cp_fd >= 0)
		close(a->cp_fd);
	pthread_mutex_destroy(&a->mu);
	agentid_free(a->path);
	agentid_free(a->cp_path);
	agentid_free(a->component);
	agentid_free(a->host);
	agentid_free(a->origin);
	agentid_free(a->vkey);
	audit_note_key_clear(&a->nk);
	agentid_key_free(a->key);
	EVP_MD_CTX_free(a->md);
	audit_lbuf_free(&a->line);
	EVP_MD_free(a->sha256);
	agentid_free(a);
}

AGENTID_EXPORT int
agentid_audit_open(
    const struct agentid_audit_config *cfg, struct agentid_audit **out, struct agentid_error *err)
{
	struct agentid_audit *a = NULL;
	struct agentid_buf vk, origin;
	char host[256];
	int r;

	*out = NULL;
	agentid_buf_init(&vk, 0);
	agentid_buf_init(&origin, 0);
	if (cfg == NULL || cfg->path == NULL || cfg->path[0] == '\0') {
		agentid_error_set(err, AGENTID_R_MALFORMED, "audit: no log file configured");
		return AGENTID_EINVAL;
	}
	if ((a = agentid_calloc(1, sizeof(*a))) == NULL)
		return AGENTID_ENOMEM;
	a->fd = a->cp_fd = -1;
	pthread_once(&atfork_once, register_atfork);
	atomic_init(&a->gen, atomic_load(&fork_gen));
	pthread_mutex_init(&a->mu, NULL);
	a->cp_records = cfg->checkpoint_records;
	a->cp_seconds = cfg->checkpoint_seconds;
	a->fsync = cfg->fsync;
	a->rotate_bytes = cfg->rotate_bytes;
	a->mode = cfg->file_mode != 0 ? cfg->file_mode : 0640;
	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	r = AGENTID_ENOMEM;
	if ((a->path = agentid_strdup(cfg->path)) == NULL
	    || (a->component = sanitized_dup(cfg->component != NULL ? cfg->component : "agentid"))
	        == NULL
	    || (a->host = sanitized_dup(host)) == NULL || (a->md = EVP_MD_CTX_new()) == NULL)
		goto fail;
	/* Fetched once: an implicit fetch per record would take a lock each time. */
	if ((a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
		r = AGENTID_ECRYPTO;
		goto fail;
	}
	if (cfg->origin != NULL) {
		if ((a->origin = agentid_strdup(cfg->origin)) == NULL)
			goto fail;
	} else {
		if ((r = agentid_buf_printf(&origin, "agentid-audit/%s", a->host)) != 0)
			goto fail;
		a->origin = agentid_buf_steal(&origin, NULL);
		r = AGENTID_ENOMEM;
		if (a->origin == NULL)
			goto fail;
	}
	if (cfg->signing_key != NULL) {
		a->key = agentid_key_ref(cfg->signing_key);
	} else if (cfg->signing_key_path != NULL) {
		if ((r = agentid_key_load_file(cfg->signing_key_path, &a->key, err)) != 0) {
			if (err != NULL && err->detail[0] == '\0')
				agentid_error_set(err, AGENTID_R_BAD_KEY,
				    "audit: cannot load the checkpoint key %s",
				    cfg->signing_key_path);
			goto fail;
		}
	}
	if (a->key != NULL) {
		if (!agentid_key_is_private(a->key)) {
			agentid_error_set(err, AGENTID_R_BAD_KEY,
			    "audit: the checkpoint key must be a private key");
			r = AGENTID_EINVAL;
			goto fail;
		}
		if ((r = audit_note_key_from_key(a->key, a->origin, &a->nk)) != 0) {
			agentid_error_set(err, AGENTID_R_BAD_KEY,
			    r == AGENTID_EUNSUPPORTED
			        ? "audit: checkpoint keys must be Ed25519"
			        : "audit: origin is not a valid note key name (no spaces or '+')");
			goto fail;
		}
		if ((r = audit_note_vkey(&a->nk, &vk)) != 0)
			goto fail;
		a->vkey = agentid_buf_steal(&vk, NULL);
		r = AGENTID_ENOMEM;
		if (a->vkey == NULL)
			goto fail;
	}
	if ((a->fd = open_log(a->path, a->mode)) < 0) {
		agentid_error_set(
		    err, AGENTID_R_INTERNAL, "audit: cannot open %s: %s", a->path, strerror(errno));
		r = AGENTID_EIO;
		goto fail;
	}
	if (cfg->checkpoint_copy_path != NULL) {
		if ((a->cp_path = agentid_strdup(cfg->checkpoint_copy_path)) == NULL)
			goto fail;
		if ((a->cp_fd
		        = open(a->cp_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, a->mode))
		    < 0) {
			agentid_error_set(err, AGENTID_R_INTERNAL, "audit: cannot open %s: %s",
			    a->cp_path, strerror(errno));
			r = AGENTID_EIO;
			goto fail;
		}
	}
	pthread_mutex_lock(&a->mu);
	r = stream_begin(a, NULL);
	pthread_mutex_unlock(&a->mu);
	if (r != 0) {
		agentid_error_set(err, AGENTID_R_INTERNAL, "audit: cannot write to %s", a->path);
		goto fail;
	}
	*out = a;
	return 0;
fail:
	agentid_buf_free(&vk);
	agentid_buf_free(&origin);
	audit_free(a);
	return r;
}

AGENTID_EXPORT void
agentid_audit_event_set_token(struct agentid_audit_event *ev, const struct agentid_token *t)
{
	if (ev == NULL || t == NULL)
		return;
	ev->agent = agentid_token_agent(t);
	ev->subject = agentid_token_sub(t);
	ev->chain = agentid_token_chain(t);
	ev->task = agentid_token_task(t);
	ev->jti = agentid_token_jti(t);
	ev->parent_jti = agentid_token_claim_string(t, "parent_jti");
	ev->iss = agentid_token_iss(t);
	ev->scope = agentid_token_claim_string(t, "scope");
}

AGENTID_EXPORT int
agentid_audit_append(struct agentid_audit *a, const struct agentid_audit_event *ev)
{
	struct audit_fields fs;
	int r;

	if (a == NULL || ev == NULL || ev->event == NULL || ev->event[0] == '\0')
		return AGENTID_EINVAL;
	if (ev->extra != NULL && !json_is_object(ev->extra))
		return AGENTID_EINVAL;
	fs.n = 0;
	fs.overflow = 0;
	/*
	 * Added in sorted order (strcmp), the writer's own members included, so
	 * that the hot path needs no sorting.  ts, stream and prev point at
	 * buffers write_record() fills; tests/unit/test_audit.c keeps the order
	 * honest (the verifier rejects a record whose bytes are not canonical).
	 */
	audit_fields_str(&fs, "agent", ev->agent);
	audit_fields_strs(&fs, "aud", ev->aud, ev->n_aud);
	audit_fields_chain(&fs, "chain", ev->chain);
	audit_fields_str(&fs, "client", ev->client);
	audit_fields_str(&fs, "decision", ev->decision);
	audit_fields_str(&fs, "event", ev->event);
	audit_fields_json(&fs, "extra", ev->extra);
	audit_fields_str(&fs, "iss", ev->iss);
	audit_fields_str(&fs, "jti", ev->jti);
	audit_fields_str(&fs, "parent_jti", ev->parent_jti);
	audit_fields_plain(&fs, "prev", a->prev_hex);
	audit_fields_str(&fs, "reason", ev->reason);
	audit_fields_str(&fs, "resource", ev->resource);
	audit_fields_str(&fs, "scope", ev->scope);
	audit_fields_str(&fs, "scope_requested", ev->scope_requested);
	audit_fields_seq(&fs);
	audit_fields_plain(&fs, "stream", a->stream);
	audit_fields_str(&fs, "subject", ev->subject);
	audit_fields_str(&fs, "task", ev->task);
	audit_fields_plain(&fs, "ts", a->ts);

	lock(a);
	if ((r = stream_ensure(a)) == 0 && (r = write_record(a, &fs, 1)) == 0)
		r = maybe_checkpoint(a);
	pthread_mutex_unlock(&a->mu);
	return r;
}

static int
reserved_member(const char *k)
{
	return strcmp(k, "ts") == 0 || strcmp(k, "stream") == 0 || strcmp(k, "seq") == 0
	    || strcmp(k, "prev") == 0 || strcmp(k, "hash") == 0;
}

AGENTID_EXPORT int
agentid_audit_append_json(struct agentid_audit *a, const json_t *fields)
{
	const char *k, *ev;
	struct audit_fields fs;
	json_t *v;
	int r;

	if (a == NULL || !json_is_object(fields))
		return AGENTID_EINVAL;
	ev = json_string_value(json_object_get(fields, "event"));
	if (ev == NULL || ev[0] == '\0' || strcmp(ev, "stream.start") == 0
	    || strcmp(ev, "checkpoint") == 0 || strcmp(ev, "stream.end") == 0)
		return AGENTID_EINVAL;
	/* Four members are the writer's own. */
	if (json_object_size(fields) > AUDIT_MAX_FIELDS - 4)
		return AGENTID_ERANGE;
	fs.n = 0;
	fs.overflow = 0;
	json_object_foreach((json_t *)fields, k, v)
	{
		if (reserved_member(k))
			return AGENTID_EINVAL;
		/* jansson strings may hold NUL bytes; those go through json_dumps. */
		if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
			audit_fields_str(&fs, k, json_string_value(v));
		else
			audit_fields_json(&fs, k, v);
	}
	lock(a);
	if ((r = stream_ensure(a)) == 0 && (r = write_record(a, &fs, 0)) == 0)
		r = maybe_checkpoint(a);
	pthread_mutex_unlock(&a->mu);
	return r;
}

AGENTID_EXPORT int
agentid_audit_checkpoint(struct agentid_audit *a)
{
	int r = 0;

	if (a == NULL)
		return AGENTID_EINVAL;
	lock(a);
	if (a->started && owner(a))
		r = write_checkpoint(a);
	pthread_mutex_unlock(&a->mu);
	return r;
}

AGENTID_EXPORT int
agentid_audit_tick(struct agentid_audit *a)
{
	int r = 0;

	if (a == NULL)
		return AGENTID_EINVAL;
	lock(a);
	if (a->started && owner(a) && a->cp_seconds != 0
	    && time(NULL) - a->last_cp >= (time_t)a->cp_seconds)
		r = write_checkpoint(a);
	pthread_mutex_unlock(&a->mu);
	return r;
}

AGENTID_EXPORT const char *
agentid_audit_stream_id(struct agentid_audit *a)
{
	return a != NULL && a->started ? a->stream : NULL;
}

AGENTID_EXPORT int
agentid_audit_close(struct agentid_audit *a)
{
	struct audit_fields fs;
	int r = 0;

	if (a == NULL)
		return 0;
	lock(a);
	/* Only the process that owns the stream ends it; a forked child's copy just goes away. */
	if (a->started && !a->broken && owner(a)) {
		fs.n = 0;
		fs.overflow = 0;
		audit_fields_str(&fs, "event", "stream.end");
		if ((r = write_record(a, &fs, 0)) == 0)
			r = write_checkpoint(a);
		if (a->fsync != AGENTID_AUDIT_FSYNC_NEVER)
			fdatasync(a->fd);
	}
	pthread_mutex_unlock(&a->mu);
	audit_free(a);
	return r;
}

AGENTID_EXPORT int
agentid_audit_note_vkey(const struct agentid_key *key, const char *name, char **out)
{
	struct audit_note_key nk;
	struct agentid_buf b;
	int r;

	*out = NULL;
	if (key == NULL || name == NULL)
		return AGENTID_EINVAL;
	if ((r = audit_note_key_from_key(key, name, &nk)) != 0)
		return r;
	agentid_buf_init(&b, 0);
	if ((r = audit_note_vkey(&nk, &b)) == 0 && (*out = agentid_buf_steal(&b, NULL)) == NULL)
		r = AGENTID_ENOMEM;
	agentid_buf_free(&b);
	audit_note_key_clear(&nk);
	return r;
}
