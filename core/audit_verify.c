/*
 * Audit log verification and reading.
 *
 * The files are read once, in order, line by line.  Each record's hash is
 * recomputed from its canonical bytes (jansson, JSON_COMPACT |
 * JSON_SORT_KEYS, without "hash"); each stream's chain is followed (seq
 * contiguous from the stream.start header, prev equal to the previous
 * hash); each checkpoint's signed note is checked against the stream head
 * and the trusted key.  At the first anomaly the stream in question is read
 * again in full to say precisely what happened (which record was edited,
 * deleted, moved or inserted).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit_int.h"

static const char *const fault_names[AGENTID_AUDIT__COUNT] = {
	[AGENTID_AUDIT_OK] = "ok",
	[AGENTID_AUDIT_BAD_RECORD] = "bad_record",
	[AGENTID_AUDIT_HASH_MISMATCH] = "hash_mismatch",
	[AGENTID_AUDIT_CHAIN_BROKEN] = "chain_broken",
	[AGENTID_AUDIT_MISSING] = "missing",
	[AGENTID_AUDIT_REORDERED] = "reordered",
	[AGENTID_AUDIT_INSERTED] = "inserted",
	[AGENTID_AUDIT_NO_HEADER] = "no_header",
	[AGENTID_AUDIT_TRUNCATED] = "truncated",
	[AGENTID_AUDIT_BAD_CHECKPOINT] = "bad_checkpoint",
	[AGENTID_AUDIT_BAD_SIGNATURE] = "bad_signature",
	[AGENTID_AUDIT_UNTRUSTED_KEY] = "untrusted_key",
	[AGENTID_AUDIT_AFTER_END] = "after_end",
	[AGENTID_AUDIT_TORN] = "torn",
	[AGENTID_AUDIT_UNATTESTED] = "unattested",
};

AGENTID_EXPORT const char *
agentid_audit_fault_name(enum agentid_audit_fault f)
{
	if ((unsigned)f >= AGENTID_AUDIT__COUNT || fault_names[f] == NULL)
		return "unknown";
	return fault_names[f];
}

/* ---- line reader ---- */

struct reader {
	int fd;
	char buf[65536];
	size_t pos, len;
	struct agentid_buf line;
	size_t lineno;
	int too_long;
};

static int
reader_open(struct reader *rd, const char *path)
{
	rd->pos = rd->len = 0;
	rd->lineno = 0;
	rd->too_long = 0;
	agentid_buf_init(&rd->line, AUDIT_MAX_LINE);
	if ((rd->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? AGENTID_ENOTFOUND : AGENTID_EIO;
	return 0;
}

static void
reader_close(struct reader *rd)
{
	if (rd->fd >= 0)
		close(rd->fd);
	rd->fd = -1;
	agentid_buf_free(&rd->line);
}

/*
 * Next line without its newline: 1 and *complete (0 for a final line with no
 * newline), 0 at end of file, AGENTID_EIO on a read error.  Lines longer
 * than AUDIT_MAX_LINE come back empty with rd->too_long set.
 */
static int
reader_next(struct reader *rd, int *complete)
{
	char *nl;
	ssize_t n;
	size_t take;

	rd->line.len = 0;
	if (rd->line.data != NULL)
		rd->line.data[0] = '\0';
	rd->too_long = 0;
	for (;;) {
		if (rd->pos == rd->len) {
			do
				n = read(rd->fd, rd->buf, sizeof(rd->buf));
			while (n < 0 && errno == EINTR);
			if (n < 0)
				return AGENTID_EIO;
			if (n == 0) {
				if (rd->line.len == 0 && !rd->too_long)
					return 0;
				rd->lineno++;
				*complete = 0;
				return 1;
			}
			rd->pos = 0;
			rd->len = (size_t)n;
		}
		nl = memchr(rd->buf + rd->pos, '\n', rd->len - rd->pos);
		take = nl != NULL ? (size_t)(nl - (rd->buf + rd->pos)) : rd->len - rd->pos;
		if (!rd->too_long && agentid_buf_append(&rd->line, rd->buf + rd->pos, take) != 0) {
			rd->too_long = 1;
			rd->line.len = 0;
		}
		rd->pos += take;
		if (nl != NULL) {
			rd->pos++;
			rd->lineno++;
			*complete = 1;
			return 1;
		}
	}
}

static int
blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

/* ---- records ---- */

struct rec {
	json_t *root;
	const char *stream;
	const char *event;
	int64_t seq;
	unsigned char prev[AUDIT_HASH_LEN];
	unsigned char hash[AUDIT_HASH_LEN];
	int hash_ok;
};

enum parse_result {
	PARSE_OK = 0,
	PARSE_TORN, /* not JSON at all */
	PARSE_BAD /* JSON, but not a record */
};

static json_t *
load_line(const char *s, size_t n)
{
	json_error_t jerr;

	/* JSON_ALLOW_NUL: a writer may have recorded "\u0000" inside a string. */
	return json_loadb(s, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
}

static int
get_hash_member(json_t *root, const char *name, unsigned char *out)
{
	json_t *v = json_object_get(root, name);

	if (!json_is_string(v))
		return -1;
	return audit_unhex(json_string_value(v), json_string_length(v), out, AUDIT_HASH_LEN);
}

/*
 * Parses one line into r and recomputes its hash.  On PARSE_BAD, why says
 * what is wrong.  r->root is owned by the caller (json_decref) in every case.
 */
static enum parse_result
rec_parse(const char *s, size_t n, struct rec *r, char *why, size_t whysz)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	json_t *seq, *hash;
	char *canon;
	EVP_MD_CTX *ctx;
	int ok;

	memset(r, 0, sizeof(*r));
	if ((r->root = load_line(s, n)) == NULL)
		return PARSE_TORN;
	if (!json_is_object(r->root)) {
		snprintf(why, whysz, "not a JSON object");
		return PARSE_BAD;
	}
	r->stream = json_string_value(json_object_get(r->root, "stream"));
	r->event = json_string_value(json_object_get(r->root, "event"));
	seq = json_object_get(r->root, "seq");
	if (r->stream == NULL || r->stream[0] == '\0') {
		snprintf(why, whysz, "no \"stream\" member");
		return PARSE_BAD;
	}
	if (!json_is_integer(seq) || json_integer_value(seq) < 0) {
		snprintf(why, whysz, "\"seq\" is not a non-negative integer");
		return PARSE_BAD;
	}
	r->seq = json_integer_value(seq);
	if (r->event == NULL) {
		snprintf(why, whysz, "no \"event\" member");
		return PARSE_BAD;
	}
	if (!json_is_string(json_object_get(r->root, "ts"))) {
		snprintf(why, whysz, "no \"ts\" member");
		return PARSE_BAD;
	}
	if (get_hash_member(r->root, "prev", r->prev) != 0) {
		snprintf(why, whysz, "\"prev\" is not 64 lower-case hex digits");
		return PARSE_BAD;
	}
	if (get_hash_member(r->root, "hash", r->hash) != 0) {
		snprintf(why, whysz, "\"hash\" is not 64 lower-case hex digits");
		return PARSE_BAD;
	}
	/* The canonical bytes are those of the record without its hash. */
	hash = json_incref(json_object_get(r->root, "hash"));
	json_object_del(r->root, "hash");
	canon = json_dumps(r->root, AUDIT_CANON_FLAGS);
	json_object_set_new(r->root, "hash", hash);
	/* json_object_set_new took the reference back; stream/event still point into root. */
	r->stream = json_string_value(json_object_get(r->root, "stream"));
	r->event = json_string_value(json_object_get(r->root, "event"));
	if (canon == NULL) {
		snprintf(why, whysz, "cannot serialize the record");
		return PARSE_BAD;
	}
	ok = (ctx = EVP_MD_CTX_new()) != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
	    && EVP_DigestUpdate(ctx, r->prev, AUDIT_HASH_LEN) == 1
	    && EVP_DigestUpdate(ctx, canon, strlen(canon)) == 1
	    && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
	EVP_MD_CTX_free(ctx);
	free(canon);
	if (!ok) {
		snprintf(why, whysz, "hashing failed");
		return PARSE_BAD;
	}
	r->hash_ok = CRYPTO_memcmp(md, r->hash, AUDIT_HASH_LEN) == 0;
	return PARSE_OK;
}

/*
 * Like rec_parse, but a line that is not JSON is searched for a record
 * glued to the end of a torn fragment: a writer killed inside write(2)
 * leaves a partial line, and the next append of another process lands right
 * after it.  The recovered record is verified like any other.  *recovered
 * is set when a fragment was skipped.
 */
static enum parse_result
rec_parse_recover(const char *s, size_t n, struct rec *r, char *why, size_t whysz, int *recovered)
{
	enum parse_result pr;
	const char *p;

	*recovered = 0;
	if ((pr = rec_parse(s, n, r, why, whysz)) != PARSE_TORN)
		return pr;
	for (p = memchr(s + 1, '{', n - 1); p != NULL;
	     p = memchr(p + 1, '{', n - (size_t)(p + 1 - s))) {
		if (p[1] != '"')
			continue;
		if ((pr = rec_parse(p, n - (size_t)(p - s), r, why, whysz)) == PARSE_OK) {
			*recovered = 1;
			return pr;
		}
		json_decref(r->root);
		r->root = NULL;
		if (p + 1 >= s + n)
			break;
	}
	memset(r, 0, sizeof(*r));
	return PARSE_TORN;
}

/* ---- streams ---- */

struct witness {
	int64_t size;
	unsigned char root[AUDIT_HASH_LEN];
	const char *file;
	size_t line;
	int matched;
};

struct sstate {
	char *id;
	struct sstate *next_in_bucket;
	int seen; /* records of it were found in the log */
	int64_t next; /* the seq expected next */
	unsigned char last[AUDIT_HASH_LEN];
	size_t last_file, last_line;
	int ended;
	int attested; /* a checkpoint verified (by the trusted key when one is given) */
	int64_t last_cp_seq; /* seq of the last good checkpoint record, -1 */
	int has_hkey;
	struct audit_note_key hkey; /* from the header's vkey */
	struct witness *w;
	size_t nw;
};

struct table {
	struct sstate **b;
	size_t nb, n;
};

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static struct sstate *
table_find(struct table *t, const char *id)
{
	struct sstate *s;

	if (t->nb == 0)
		return NULL;
	for (s = t->b[fnv1a(id) & (t->nb - 1)]; s != NULL; s = s->next_in_bucket)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

static int
table_grow(struct table *t)
{
	struct sstate **nb, *s, *next;
	size_t i, n = t->nb != 0 ? t->nb * 2 : 256;

	if ((nb = agentid_calloc(n, sizeof(*nb))) == NULL)
		return AGENTID_ENOMEM;
	for (i = 0; i < t->nb; i++)
		for (s = t->b[i]; s != NULL; s = next) {
			next = s->next_in_bucket;
			s->next_in_bucket = nb[fnv1a(s->id) & (n - 1)];
			nb[fnv1a(s->id) & (n - 1)] = s;
		}
	agentid_free(t->b);
	t->b = nb;
	t->nb = n;
	return 0;
}

static int
table_add(struct table *t, const char *id, struct sstate **out)
{
	struct sstate *s;
	size_t i;
	int r;

	*out = NULL;
	if (t->n + 1 > t->nb / 2 && (r = table_grow(t)) != 0)
		return r;
	if ((s = agentid_calloc(1, sizeof(*s))) == NULL)
		return AGENTID_ENOMEM;
	if ((s->id = agentid_strdup(id)) == NULL) {
		agentid_free(s);
		return AGENTID_ENOMEM;
	}
	s->last_cp_seq = -1;
	i = fnv1a(id) & (t->nb - 1);
	s->next_in_bucket = t->b[i];
	t->b[i] = s;
	t->n++;
	*out = s;
	return 0;
}

static void
table_free(struct table *t)
{
	struct sstate *s, *next;
	size_t i;

	for (i = 0; i < t->nb; i++)
		for (s = t->b[i]; s != NULL; s = next) {
			next = s->next_in_bucket;
			agentid_free(s->id);
			audit_note_key_clear(&s->hkey);
			agentid_free(s->w);
			agentid_free(s);
		}
	agentid_free(t->b);
	memset(t, 0, sizeof(*t));
}

/* ---- the verification run ---- */

struct vctx {
	const char *const *paths;
	size_t npaths;
	const struct agentid_audit_verify_opts *opts;
	struct agentid_audit_summary *sum;
	struct table streams;
	struct audit_note_key tkey; /* the trusted key */
	int have_tkey;
	size_t file; /* index of the file being read; npaths: a witness file */
	const char *wfile; /* the witness file faults with index npaths refer to */
};

static void
set_name(char *dst, const char *src)
{
	snprintf(dst, AGENTID_AUDIT_NAME_MAX, "%s", src != NULL ? src : "");
}

static int fault(struct vctx *v, enum agentid_audit_fault f, size_t file, size_t line,
    const char *stream, int64_t seq, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static int
fault(struct vctx *v, enum agentid_audit_fault f, size_t file, size_t line, const char *stream,
    int64_t seq, const char *fmt, ...)
{
	struct agentid_audit_summary *sum = v->sum;
	va_list ap;

	sum->fault = f;
	set_name(sum->file, file < v->npaths ? v->paths[file] : v->wfile);
	sum->line = line;
	set_name(sum->stream, stream);
	sum->seq = seq;
	va_start(ap, fmt);
	vsnprintf(sum->what, sizeof(sum->what), fmt, ap);
	va_end(ap);
	return AGENTID_EREJECTED;
}

/* One record of a stream, as the diagnosis needs it. */
struct drec {
	int64_t seq;
	unsigned char prev[AUDIT_HASH_LEN], hash[AUDIT_HASH_LEN];
	size_t file, line;
};

/* Reads every record of stream id from all files (in order). */
static int
collect_stream(struct vctx *v, const char *id, struct drec **out, size_t *n)
{
	struct reader rd;
	struct rec r;
	struct drec *a = NULL, *na;
	size_t i, cap = 0, cnt = 0;
	char why[64];
	int complete, rr = 0, recovered;

	*out = NULL;
	*n = 0;
	for (i = 0; i < v->npaths && rr == 0; i++) {
		if (reader_open(&rd, v->paths[i]) != 0) {
			reader_close(&rd);
			continue;
		}
		while ((rr = reader_next(&rd, &complete)) == 1) {
			rr = 0;
			if (rd.line.len == 0)
				continue;
			if (rec_parse_recover(
			        rd.line.data, rd.line.len, &r, why, sizeof(why), &recovered)
			        == PARSE_OK
			    && strcmp(r.stream, id) == 0) {
				if (cnt == cap) {
					cap = cap != 0 ? cap * 2 : 64;
					if ((na = agentid_realloc(a, cap * sizeof(*a))) == NULL) {
						json_decref(r.root);
						rr = AGENTID_ENOMEM;
						break;
					}
					a = na;
				}
				a[cnt].seq = r.seq;
				memcpy(a[cnt].prev, r.prev, AUDIT_HASH_LEN);
				memcpy(a[cnt].hash, r.hash, AUDIT_HASH_LEN);
				a[cnt].file = i;
				a[cnt].line = rd.lineno;
				cnt++;
			}
			json_decref(r.root);
		}
		reader_close(&rd);
	}
	if (rr < 0) {
		agentid_free(a);
		return rr;
	}
	*out = a;
	*n = cnt;
	return 0;
}

static ssize_t
find_seq(const struct drec *a, size_t n, int64_t seq, size_t from, size_t skip1, size_t skip2)
{
	size_t i;

	for (i = from; i < n; i++)
		if (a[i].seq == seq && i != skip1 && i != skip2)
			return (ssize_t)i;
	return -1;
}

/*
 * The record at (file, line) with seq found broke stream s, which expected
 * seq s->next.  Reads the whole stream again to tell which record is to
 * blame and why.
 */
static int
diagnose(struct vctx *v, struct sstate *s, size_t file, size_t line, int64_t found)
{
	struct drec *a = NULL;
	size_t n = 0, p, i;
	ssize_t j, q = -1;
	int64_t e = s->next;
	int r;

	if ((r = collect_stream(v, s->id, &a, &n)) != 0)
		return r;
	for (p = 0; p < n; p++)
		if (a[p].file == file && a[p].line == line)
			break;
	if (p == n) {
		r = fault(v, AGENTID_AUDIT_CHAIN_BROKEN, file, line, s->id, found,
		    "chain broken at seq %" PRId64, found);
		goto out;
	}
	if (found > e) {
		if ((j = find_seq(a, n, e, p + 1, n, n)) >= 0)
			r = fault(v, AGENTID_AUDIT_REORDERED, file, line, s->id, found,
			    "record seq %" PRId64 " comes before seq %" PRId64
			    " (%s:%zu): reordered",
			    found, e, v->paths[a[j].file], a[j].line);
		else if (found == e + 1)
			r = fault(v, AGENTID_AUDIT_MISSING, file, line, s->id, e,
			    "record seq %" PRId64 " is missing before this record (deleted)", e);
		else
			r = fault(v, AGENTID_AUDIT_MISSING, file, line, s->id, e,
			    "records seq %" PRId64 "..%" PRId64
			    " are missing before this record (deleted)",
			    e, found - 1);
		goto out;
	}
	if (found < e) {
		for (i = 0; i < p; i++)
			if (a[i].seq == found)
				q = (ssize_t)i;
		if (q < 0) {
			r = fault(v, AGENTID_AUDIT_REORDERED, file, line, s->id, found,
			    "record seq %" PRId64 " comes after seq %" PRId64 ": reordered", found,
			    e - 1);
			goto out;
		}
		if (memcmp(a[q].hash, a[p].hash, AUDIT_HASH_LEN) == 0) {
			r = fault(v, AGENTID_AUDIT_INSERTED, file, line, s->id, found,
			    "duplicate of the record at %s:%zu (inserted)", v->paths[a[q].file],
			    a[q].line);
			goto out;
		}
		/* Two different records claim the same seq: the chain says which one is real. */
		j = find_seq(a, n, found + 1, 0, p, (size_t)q);
		if (j >= 0 && memcmp(a[j].prev, a[p].hash, AUDIT_HASH_LEN) == 0
		    && memcmp(a[j].prev, a[q].hash, AUDIT_HASH_LEN) != 0)
			r = fault(v, AGENTID_AUDIT_INSERTED, a[q].file, a[q].line, s->id, found,
			    "record is not part of the chain: seq %" PRId64
			    " continues from %s:%zu (inserted)",
			    found, v->paths[a[p].file], a[p].line);
		else
			r = fault(v, AGENTID_AUDIT_INSERTED, file, line, s->id, found,
			    "record is not part of the chain: seq %" PRId64
			    " already appeared at %s:%zu (inserted)",
			    found, v->paths[a[q].file], a[q].line);
		goto out;
	}
	/* found == e, but prev is not the hash of the record before. */
	j = find_seq(a, n, found + 1, p + 1, n, n);
	if (j >= 0 && memcmp(a[j].prev, a[p].hash, AUDIT_HASH_LEN) == 0 && found > 0)
		r = fault(v, AGENTID_AUDIT_CHAIN_BROKEN, s->last_file, s->last_line, s->id, e - 1,
		    "record was altered and re-hashed: seq %" PRId64
		    " (%s:%zu) chains to a different hash",
		    found, v->paths[file], line);
	else
		r = fault(v, AGENTID_AUDIT_CHAIN_BROKEN, file, line, s->id, found,
		    "prev does not match the hash of seq %" PRId64 " (%s:%zu)", e - 1,
		    v->paths[s->last_file], s->last_line);
out:
	agentid_free(a);
	return r;
}

static int
rec_int(json_t *root, const char *name, int64_t *out)
{
	json_t *v = json_object_get(root, name);

	if (!json_is_integer(v))
		return -1;
	*out = json_integer_value(v);
	return 0;
}

/* Checks the note text of a checkpoint: "<origin>/<stream>\n<size>\n<root>\n". */
static int
note_text_ok(const char *text, size_t len, const char *stream, int64_t size, const char *root)
{
	const char *nl1, *nl2, *nl3, *end = text + len;
	size_t slen = strlen(stream);
	char num[32];

	if ((nl1 = memchr(text, '\n', len)) == NULL
	    || (nl2 = memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1))) == NULL
	    || (nl3 = memchr(nl2 + 1, '\n', (size_t)(end - nl2 - 1))) == NULL || nl3 + 1 != end)
		return 0;
	if ((size_t)(nl1 - text) < slen + 2 || memcmp(nl1 - slen, stream, slen) != 0
	    || nl1[-(ptrdiff_t)slen - 1] != '/')
		return 0;
	snprintf(num, sizeof(num), "%" PRId64, size);
	if ((size_t)(nl2 - nl1 - 1) != strlen(num) || memcmp(nl1 + 1, num, strlen(num)) != 0)
		return 0;
	return (size_t)(nl3 - nl2 - 1) == strlen(root) && memcmp(nl2 + 1, root, strlen(root)) == 0;
}

/*
 * Verifies a checkpoint record r of stream s (its chain position is
 * already checked): size and root match the head, the note text matches,
 * and the note is signed by the trusted key (or the header's key).
 * *trusted is set when the trusted key verified it.
 */
static int
check_checkpoint(
    struct vctx *v, struct sstate *s, struct rec *r, size_t line, int *trusted, int witness)
{
	struct agentid_buf root;
	const struct audit_note_key *k;
	const char *note;
	size_t text_len;
	int64_t size;
	enum audit_note_result nr;
	int rr = 0;

	*trusted = 0;
	agentid_buf_init(&root, 0);
	if (audit_b64_encode(r->prev, AUDIT_HASH_LEN, &root) != 0)
		return AGENTID_ENOMEM;
	note = json_string_value(json_object_get(r->root, "note"));
	if (rec_int(r->root, "size", &size) != 0 || size != r->seq) {
		rr = fault(v, AGENTID_AUDIT_BAD_CHECKPOINT, v->file, line, r->stream, r->seq,
		    "checkpoint size is not the number of records before it");
		goto out;
	}
	if (json_string_value(json_object_get(r->root, "root")) == NULL
	    || strcmp(json_string_value(json_object_get(r->root, "root")), root.data) != 0) {
		rr = fault(v, AGENTID_AUDIT_BAD_CHECKPOINT, v->file, line, r->stream, r->seq,
		    "checkpoint root is not the hash of the previous record");
		goto out;
	}
	if (note == NULL) {
		rr = fault(v, AGENTID_AUDIT_BAD_CHECKPOINT, v->file, line, r->stream, r->seq,
		    "checkpoint without a signed note");
		goto out;
	}
	k = v->have_tkey ? &v->tkey : (s != NULL && s->has_hkey ? &s->hkey : NULL);
	if (k == NULL && !witness) {
		rr = fault(v, AGENTID_AUDIT_BAD_CHECKPOINT, v->file, line, r->stream, r->seq,
		    "no key to check the checkpoint with (the stream header names none)");
		goto out;
	}
	nr = audit_note_verify(note, strlen(note), k, &text_len);
	if (nr == AUDIT_NOTE_MALFORMED
	    || !note_text_ok(note, text_len, r->stream, r->seq, root.data)) {
		rr = fault(v, AGENTID_AUDIT_BAD_CHECKPOINT, v->file, line, r->stream, r->seq,
		    "checkpoint note does not match the stream head");
		goto out;
	}
	if (k == NULL)
		goto out;
	if (nr == AUDIT_NOTE_BAD_SIG) {
		rr = fault(v, AGENTID_AUDIT_BAD_SIGNATURE, v->file, line, r->stream, r->seq,
		    "checkpoint signature does not verify");
		goto out;
	}
	if (nr == AUDIT_NOTE_NO_SIG) {
		rr = fault(v, AGENTID_AUDIT_UNTRUSTED_KEY, v->file, line, r->stream, r->seq,
		    v->have_tkey ? "checkpoint is not signed by the trusted key"
		                 : "checkpoint is not signed by the key the stream header names");
		goto out;
	}
	*trusted = v->have_tkey;
out:
	agentid_buf_free(&root);
	return rr;
}

/* Loads the witness copies of checkpoints; each becomes an expectation on its stream. */
static int
load_witnesses(struct vctx *v)
{
	const struct agentid_audit_verify_opts *o = v->opts;
	struct reader rd;
	struct sstate *s;
	struct witness *nw;
	struct rec r;
	char why[128];
	size_t i;
	int complete, rr = 0, trusted;
	enum parse_result pr;

	for (i = 0; i < o->n_checkpoint_files && rr == 0; i++) {
		if ((rr = reader_open(&rd, o->checkpoint_files[i])) != 0) {
			reader_close(&rd);
			return rr;
		}
		while ((rr = reader_next(&rd, &complete)) == 1) {
			rr = 0;
			if (rd.line.len == 0 || blank(rd.line.data, rd.line.len))
				continue;
			pr = rec_parse(rd.line.data, rd.line.len, &r, why, sizeof(why));
			v->file = v->npaths; /* faults here name the witness file */
			v->wfile = o->checkpoint_files[i];
			if (pr != PARSE_OK || !r.hash_ok || r.event == NULL
			    || strcmp(r.event, "checkpoint") != 0) {
				rr = fault(v, AGENTID_AUDIT_BAD_CHECKPOINT, v->npaths, rd.lineno,
				    r.stream, r.seq, "%s:%zu: not an intact checkpoint record",
				    o->checkpoint_files[i], rd.lineno);
				json_decref(r.root);
				break;
			}
			s = table_find(&v->streams, r.stream);
			if (s == NULL && (rr = table_add(&v->streams, r.stream, &s)) != 0) {
				json_decref(r.root);
				break;
			}
			if ((rr = check_checkpoint(v, NULL, &r, rd.lineno, &trusted, 1)) != 0) {
				json_decref(r.root);
				break;
			}
			if ((nw = agentid_realloc(s->w, (s->nw + 1) * sizeof(*nw))) == NULL) {
				json_decref(r.root);
				rr = AGENTID_ENOMEM;
				break;
			}
			s->w = nw;
			memset(&s->w[s->nw], 0, sizeof(s->w[0]));
			s->w[s->nw].size = r.seq;
			memcpy(s->w[s->nw].root, r.prev, AUDIT_HASH_LEN);
			s->w[s->nw].file = o->checkpoint_files[i];
			s->w[s->nw].line = rd.lineno;
			s->nw++;
			json_decref(r.root);
		}
		reader_close(&rd);
	}
	return rr < 0 ? rr : 0;
}

/* Processes one parsed record of file v->file at line. */
static int
check_record(struct vctx *v, struct rec *r, size_t line)
{
	struct agentid_audit_summary *sum = v->sum;
	struct sstate *s;
	const char *vkey;
	size_t i;
	int rr, trusted;

	if (!r->hash_ok)
		return fault(v, AGENTID_AUDIT_HASH_MISMATCH, v->file, line, r->stream, r->seq,
		    "record content does not match its hash (altered)");
	s = table_find(&v->streams, r->stream);
	if (s == NULL && (rr = table_add(&v->streams, r->stream, &s)) != 0)
		return rr;
	if (!s->seen) {
		if (r->seq != 0)
			return fault(v, AGENTID_AUDIT_NO_HEADER, v->file, line, r->stream, r->seq,
			    "stream begins at seq %" PRId64
			    ": its earlier records (and stream.start) are missing",
			    r->seq);
		s->seen = 1;
		sum->streams++;
	} else if (s->ended && (strcmp(r->event, "checkpoint") != 0 || s->ended > 1)) {
		/* Only the final checkpoint may follow stream.end. */
		return fault(v, AGENTID_AUDIT_AFTER_END, v->file, line, r->stream, r->seq,
		    "record after the stream's stream.end");
	} else if (r->seq != s->next || CRYPTO_memcmp(r->prev, s->last, AUDIT_HASH_LEN) != 0) {
		return diagnose(v, s, v->file, line, r->seq);
	}
	if (r->seq == 0) {
		static const unsigned char zero[AUDIT_HASH_LEN];
		if (strcmp(r->event, "stream.start") != 0)
			return fault(v, AGENTID_AUDIT_NO_HEADER, v->file, line, r->stream, 0,
			    "first record of the stream is not stream.start");
		if (memcmp(r->prev, zero, AUDIT_HASH_LEN) != 0)
			return fault(v, AGENTID_AUDIT_CHAIN_BROKEN, v->file, line, r->stream, 0,
			    "stream.start must chain to the zero hash");
		vkey = json_string_value(json_object_get(r->root, "vkey"));
		if (vkey != NULL) {
			if (audit_note_key_from_vkey(vkey, strlen(vkey), &s->hkey) != 0)
				return fault(v, AGENTID_AUDIT_BAD_RECORD, v->file, line, r->stream,
				    0, "stream.start carries an unusable vkey");
			s->has_hkey = 1;
		}
	} else if (strcmp(r->event, "stream.start") == 0) {
		return fault(v, AGENTID_AUDIT_BAD_RECORD, v->file, line, r->stream, r->seq,
		    "stream.start in the middle of a stream");
	}
	if (strcmp(r->event, "checkpoint") == 0) {
		if ((rr = check_checkpoint(v, s, r, line, &trusted, 0)) != 0)
			return rr;
		sum->checkpoints++;
		if (trusted)
			sum->checkpoints_trusted++;
		if (trusted || !v->have_tkey)
			s->attested = 1;
		s->last_cp_seq = r->seq;
		if (s->ended)
			s->ended++;
	} else if (strcmp(r->event, "stream.end") == 0) {
		s->ended = 1;
		sum->streams_closed++;
	}
	/* Witness copies pin the hash of the record just before each of their checkpoints. */
	for (i = 0; i < s->nw; i++)
		if (s->w[i].size == r->seq + 1) {
			if (CRYPTO_memcmp(s->w[i].root, r->hash, AUDIT_HASH_LEN) != 0)
				return fault(v, AGENTID_AUDIT_CHAIN_BROKEN, v->file, line,
				    r->stream, r->seq,
				    "record differs from the one the witness checkpoint %s:%zu "
				    "covers",
				    s->w[i].file, s->w[i].line);
			s->w[i].matched = 1;
			sum->witness_checkpoints++;
		}
	s->next = r->seq + 1;
	memcpy(s->last, r->hash, AUDIT_HASH_LEN);
	s->last_file = v->file;
	s->last_line = line;
	sum->records++;
	return 0;
}

static int
check_end(struct vctx *v)
{
	struct sstate *s;
	size_t b, i;

	for (b = 0; b < v->streams.nb; b++)
		for (s = v->streams.b[b]; s != NULL; s = s->next_in_bucket) {
			for (i = 0; i < s->nw; i++) {
				if (s->w[i].matched)
					continue;
				v->wfile = s->w[i].file;
				if (!s->seen)
					return fault(v, AGENTID_AUDIT_TRUNCATED, v->npaths,
					    s->w[i].line, s->id, 0,
					    "stream is missing from the log, but the witness "
					    "checkpoint %s:%zu covers %" PRId64 " records of it",
					    s->w[i].file, s->w[i].line, s->w[i].size);
				return fault(v, AGENTID_AUDIT_TRUNCATED, s->last_file, s->last_line,
				    s->id, s->next,
				    "log ends at seq %" PRId64 " but the witness checkpoint %s:%zu "
				    "covers records up to seq %" PRId64 " (truncated)",
				    s->next - 1, s->w[i].file, s->w[i].line, s->w[i].size - 1);
			}
			if (!s->seen)
				continue;
			if (!s->attested)
				v->sum->streams_unattested++;
			if (v->opts->require_checkpoint
			    && (!s->attested || s->last_cp_seq != s->next - 1))
				return fault(v, AGENTID_AUDIT_UNATTESTED, s->last_file,
				    s->last_line, s->id, s->next - 1,
				    "the stream's last records are not covered by a trusted "
				    "checkpoint");
		}
	return 0;
}

AGENTID_EXPORT int
agentid_audit_verify_files(const char *const *paths, size_t n,
    const struct agentid_audit_verify_opts *opts, struct agentid_audit_summary *sum,
    struct agentid_error *err)
{
	static const struct agentid_audit_verify_opts no_opts;
	struct vctx v;
	struct reader rd;
	struct rec r;
	char why[128];
	int complete, rr = 0, recovered = 0;
	enum parse_result pr;

	memset(&v, 0, sizeof(v));
	memset(sum, 0, sizeof(*sum));
	sum->seq = -1;
	rd.fd = -1;
	agentid_buf_init(&rd.line, 0);
	v.paths = paths;
	v.npaths = n;
	v.opts = opts != NULL ? opts : &no_opts;
	v.sum = sum;
	if (v.opts->key != NULL) {
		if ((rr = audit_note_key_from_key(v.opts->key, v.opts->key_name, &v.tkey)) != 0) {
			agentid_error_set(
			    err, AGENTID_R_BAD_KEY, "the trusted checkpoint key must be Ed25519");
			return rr == AGENTID_EUNSUPPORTED ? AGENTID_EINVAL : rr;
		}
		v.have_tkey = 1;
	}
	if ((rr = load_witnesses(&v)) != 0)
		goto out;
	for (v.file = 0; v.file < n && rr == 0; v.file++) {
		if ((rr = reader_open(&rd, paths[v.file])) != 0) {
			agentid_error_set(err, AGENTID_R_INTERNAL, "cannot open %s: %s",
			    paths[v.file], strerror(errno));
			reader_close(&rd);
			goto out;
		}
		sum->files++;
		while ((rr = reader_next(&rd, &complete)) == 1) {
			rr = 0;
			sum->lines++;
			if (!rd.too_long
			    && blank(rd.line.data != NULL ? rd.line.data : "", rd.line.len))
				continue;
			pr = rd.too_long ? PARSE_TORN
			                 : rec_parse_recover(rd.line.data, rd.line.len, &r, why,
			                     sizeof(why), &recovered);
			if (pr == PARSE_OK && recovered) {
				if (v.opts->strict) {
					rr = fault(&v, AGENTID_AUDIT_TORN, v.file, rd.lineno,
					    r.stream, r.seq, "line starts with a torn record");
					json_decref(r.root);
					break;
				}
				if (sum->torn++ == 0) {
					set_name(sum->torn_file, paths[v.file]);
					sum->torn_line = rd.lineno;
				}
			}
			if (pr == PARSE_TORN) {
				if (!rd.too_long)
					json_decref(r.root);
				/*
				 * A writer killed inside write(2) leaves a fragment.  Skipping it
				 * is safe: a record that is missing from its chain is still
				 * caught through the records that follow it.
				 */
				if (v.opts->strict) {
					rr = fault(&v, AGENTID_AUDIT_TORN, v.file, rd.lineno, NULL,
					    -1,
					    complete ? "line is not JSON (torn or damaged)"
					             : "final line is incomplete (torn)");
					break;
				}
				if (sum->torn++ == 0) {
					set_name(sum->torn_file, paths[v.file]);
					sum->torn_line = rd.lineno;
				}
				continue;
			}
			if (pr == PARSE_BAD) {
				rr = fault(&v, AGENTID_AUDIT_BAD_RECORD, v.file, rd.lineno,
				    r.stream, r.stream != NULL ? r.seq : -1, "%s", why);
				json_decref(r.root);
				break;
			}
			rr = check_record(&v, &r, rd.lineno);
			json_decref(r.root);
			if (rr != 0)
				break;
		}
		reader_close(&rd);
	}
	if (rr == 0)
		rr = check_end(&v);
out:
	if (rr == AGENTID_EREJECTED)
		agentid_error_set(
		    err, AGENTID_R_AUDIT_INVALID, "%s:%zu: %s", sum->file, sum->line, sum->what);
	else if (rr == AGENTID_EIO || rr == AGENTID_ENOTFOUND)
		rr = AGENTID_EIO;
	table_free(&v.streams);
	audit_note_key_clear(&v.tkey);
	return rr;
}

AGENTID_EXPORT int
agentid_audit_read_files(const char *const *paths, size_t n, agentid_audit_record_fn fn, void *arg,
    struct agentid_error *err)
{
	struct reader rd;
	json_t *rec;
	size_t i;
	int complete, r = 0;

	for (i = 0; i < n && r == 0; i++) {
		if ((r = reader_open(&rd, paths[i])) != 0) {
			agentid_error_set(err, AGENTID_R_INTERNAL, "cannot open %s: %s", paths[i],
			    strerror(errno));
			reader_close(&rd);
			return AGENTID_EIO;
		}
		while ((r = reader_next(&rd, &complete)) == 1) {
			r = 0;
			if (rd.too_long || rd.line.len == 0)
				continue;
			if ((rec = load_line(rd.line.data, rd.line.len)) == NULL) {
				/* A record glued to a torn fragment (see rec_parse_recover). */
				const char *p = rd.line.data;
				while (rec == NULL
				    && (p = memchr(p + 1, '{',
				            rd.line.len - (size_t)(p + 1 - rd.line.data)))
				        != NULL)
					if (p[1] == '"')
						rec = load_line(
						    p, rd.line.len - (size_t)(p - rd.line.data));
				if (rec == NULL)
					continue;
			}
			if (json_is_object(rec))
				r = fn(arg, rec, paths[i], rd.lineno);
			json_decref(rec);
			if (r != 0)
				break;
		}
		reader_close(&rd);
		if (r == AGENTID_EIO)
			agentid_error_set(err, AGENTID_R_INTERNAL, "cannot read %s", paths[i]);
	}
	return r;
}
