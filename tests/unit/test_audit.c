/*
 * The audit log: canonical bytes agree with jansson, signed notes agree
 * with Go's note package, intact logs verify with exact counts, and every
 * kind of tampering is caught and blamed on the right record.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glob.h>
#include <openssl/evp.h>

#include "testutil.h"

#define CANON (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)

/* ---- small helpers ---- */

struct lines {
	char **l;
	size_t n;
};

static void
lines_read(const char *path, struct lines *ls)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;

	ls->l = NULL;
	ls->n = 0;
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	while ((n = getline(&buf, &cap, f)) > 0) {
		ls->l = realloc(ls->l, (ls->n + 1) * sizeof(*ls->l));
		ls->l[ls->n++] = strdup(buf);
	}
	free(buf);
	fclose(f);
}

static void
lines_write(const char *path, const struct lines *ls)
{
	FILE *f = fopen(path, "w");
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	for (i = 0; i < ls->n; i++)
		if (ls->l[i] != NULL)
			fputs(ls->l[i], f);
	fclose(f);
}

static void
lines_free(struct lines *ls)
{
	size_t i;

	for (i = 0; i < ls->n; i++)
		free(ls->l[i]);
	free(ls->l);
	ls->l = NULL;
	ls->n = 0;
}

static const char *
path_in_tmp(const char *name)
{
	static char p[8][512];
	static int k;

	k = (k + 1) % 8;
	snprintf(p[k], sizeof(p[k]), "%s/%s", tu_tmpdir(), name);
	return p[k];
}

static struct agentid_key *
ed25519_key(void)
{
	struct agentid_key *k = NULL;

	CU_ASSERT_EQUAL_FATAL(agentid_key_generate(AGENTID_ALG_EDDSA, &k), 0);
	return k;
}

static struct agentid_audit *
open_log(const char *path, struct agentid_key *key, unsigned every, const char *copy)
{
	struct agentid_audit_config cfg;
	struct agentid_audit *a = NULL;
	struct agentid_error err;

	agentid_audit_config_init(&cfg);
	cfg.path = path;
	cfg.component = "test";
	cfg.signing_key = key;
	cfg.origin = "audit.example/test";
	cfg.checkpoint_records = every;
	cfg.checkpoint_seconds = 0;
	cfg.fsync = AGENTID_AUDIT_FSYNC_NEVER;
	cfg.checkpoint_copy_path = copy;
	CU_ASSERT_EQUAL_FATAL(agentid_audit_open(&cfg, &a, &err), 0);
	return a;
}

static void
append_n(struct agentid_audit *a, int from, int n)
{
	struct agentid_audit_event ev;
	char res[64], jti[32];
	int i;

	for (i = from; i < from + n; i++) {
		memset(&ev, 0, sizeof(ev));
		snprintf(res, sizeof(res), "GET /r/%d", i);
		snprintf(jti, sizeof(jti), "jti-%d", i);
		ev.event = "access.allowed";
		ev.agent = "spiffe://example.org/agent/a";
		ev.subject = "user:alice";
		ev.jti = jti;
		ev.resource = res;
		ev.decision = "allow";
		CU_ASSERT_EQUAL(agentid_audit_append(a, &ev), 0);
	}
}

static int
verify(const char *const *files, size_t n, const struct agentid_key *key,
    const char *const *witness, size_t nw, struct agentid_audit_summary *sum)
{
	struct agentid_audit_verify_opts o;
	struct agentid_error err;
	int r;

	memset(&o, 0, sizeof(o));
	o.key = key;
	o.checkpoint_files = witness;
	o.n_checkpoint_files = nw;
	r = agentid_audit_verify_files(files, n, &o, sum, &err);
	if (r == AGENTID_EREJECTED)
		CU_ASSERT_EQUAL(err.reason, AGENTID_R_AUDIT_INVALID);
	return r;
}

static int
verify1(const char *file, const struct agentid_key *key, struct agentid_audit_summary *sum)
{
	return verify(&file, 1, key, NULL, 0, sum);
}

static void
expect_fault(const char *file, const struct agentid_key *key, enum agentid_audit_fault f,
    size_t line, int64_t seq)
{
	struct agentid_audit_summary sum;

	CU_ASSERT_EQUAL(verify1(file, key, &sum), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_audit_fault_name(sum.fault), agentid_audit_fault_name(f));
	CU_ASSERT_EQUAL(sum.line, line);
	CU_ASSERT_EQUAL(sum.seq, seq);
	if (sum.fault != f || sum.line != line || sum.seq != seq)
		fprintf(stderr, "\n    got %s at line %zu seq %lld: %s\n",
		    agentid_audit_fault_name(sum.fault), sum.line, (long long)sum.seq, sum.what);
}

static void
sha256(const void *a, size_t alen, const void *b, size_t blen, unsigned char *out)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n;

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, a, alen);
	EVP_DigestUpdate(ctx, b, blen);
	EVP_DigestFinal_ex(ctx, out, &n);
	EVP_MD_CTX_free(ctx);
}

static void
tohex(const unsigned char *in, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
}

static void
unhex(const char *s, unsigned char *out, size_t n)
{
	size_t i;
	unsigned v;

	for (i = 0; i < n; i++) {
		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (unsigned char)v;
	}
}

static char *
b64std(const unsigned char *in, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return out;
}

/*
 * Recomputes prev/hash of every record of the (single-stream) log in order,
 * as a forger without the checkpoint key would.  With evil set, checkpoints
 * are re-signed with it and the header names it.
 */
static void
rechain(struct lines *ls, const struct agentid_key *evil)
{
	unsigned char last[32], h[32];
	char hex[65], *canon, *vkey = NULL;
	size_t i;

	memset(last, 0, sizeof(last));
	if (evil != NULL)
		CU_ASSERT_EQUAL_FATAL(agentid_audit_note_vkey(evil, "audit.example/test", &vkey), 0);
	for (i = 0; i < ls->n; i++) {
		json_error_t jerr;
		json_t *rec = json_loads(ls->l[i], 0, &jerr);
		const char *ev;

		CU_ASSERT_PTR_NOT_NULL_FATAL(rec);
		ev = json_string_value(json_object_get(rec, "event"));
		tohex(last, 32, hex);
		json_object_set_new(rec, "prev", json_string(hex));
		json_object_del(rec, "hash");
		if (strcmp(ev, "stream.start") == 0 && evil != NULL)
			json_object_set_new(rec, "vkey", json_string(vkey));
		if (strcmp(ev, "checkpoint") == 0) {
			char *root = b64std(last, 32), text[1024], *note = NULL;
			const char *old = json_string_value(json_object_get(rec, "note"));
			size_t ol = strcspn(old, "\n");

			snprintf(text, sizeof(text), "%.*s\n%lld\n%s\n", (int)ol, old,
			    (long long)json_integer_value(json_object_get(rec, "seq")), root);
			json_object_set_new(rec, "root", json_string(root));
			if (evil != NULL) {
				CU_ASSERT_EQUAL_FATAL(agentid_audit_note_sign(evil,
				    "audit.example/test", text, &note), 0);
				json_object_set_new(rec, "note", json_string(note));
				agentid_free(note);
			}
			free(root);
		}
		canon = json_dumps(rec, CANON);
		sha256(last, 32, canon, strlen(canon), h);
		free(canon);
		tohex(h, 32, hex);
		json_object_set_new(rec, "hash", json_string(hex));
		memcpy(last, h, 32);
		free(ls->l[i]);
		canon = json_dumps(rec, JSON_COMPACT);
		ls->l[i] = malloc(strlen(canon) + 2);
		sprintf(ls->l[i], "%s\n", canon);
		free(canon);
		json_decref(rec);
	}
	agentid_free(vkey);
}

/* ---- tests ---- */

static void
test_note_go_interop(void)
{
	char *skey = tu_read_vector("note-go-example.skey", NULL);
	char *vkey = tu_read_vector("note-go-example.vkey", NULL);
	char *note = tu_read_vector("note-go-example.note", NULL);
	char *mine = NULL, *myvkey = NULL, *text, *bad;
	const char *b64;
	unsigned char raw[64];
	struct agentid_key *key = NULL;
	struct agentid_error err;
	EVP_PKEY *pk;
	size_t tl, nl;
	int n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(skey);
	CU_ASSERT_PTR_NOT_NULL_FATAL(vkey);
	CU_ASSERT_PTR_NOT_NULL_FATAL(note);
	/* tu_read_vector trims the final newline; a note ends with one. */
	nl = strlen(note);
	note = realloc(note, nl + 2);
	strcat(note, "\n");

	/* PRIVATE+KEY+<name>+<id>+base64(0x01 || seed) */
	/* The base64 itself may hold '+': the key material follows the fourth '+'. */
	b64 = strstr(skey, "+c74f20a3+") + 10;
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)strlen(b64));
	CU_ASSERT_EQUAL_FATAL(n, 33);
	CU_ASSERT_EQUAL_FATAL(raw[0], 0x01);
	pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw + 1, 32);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
	CU_ASSERT_EQUAL_FATAL(agentid_key_from_evp(pk, &key), 0);
	EVP_PKEY_free(pk);

	CU_ASSERT_EQUAL(agentid_audit_note_vkey(key, "PeterNeumann", &myvkey), 0);
	CU_ASSERT_STRING_EQUAL(myvkey, vkey);
	text = strndup(note, strstr(note, "\n\n") - note + 1);
	CU_ASSERT_EQUAL(agentid_audit_note_sign(key, "PeterNeumann", text, &mine), 0);
	CU_ASSERT_STRING_EQUAL(mine, note);

	CU_ASSERT_EQUAL(agentid_audit_note_open(note, strlen(note), vkey, &tl, &err), 0);
	CU_ASSERT_EQUAL(tl, strlen(text));
	bad = strdup(note);
	bad[3] = 'Y';
	CU_ASSERT_EQUAL(agentid_audit_note_open(bad, strlen(bad), vkey, &tl, &err),
	    AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_signature");
	CU_ASSERT_EQUAL(agentid_audit_note_open(note, strlen(note),
	    "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop", &tl, &err),
	    AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "unknown_kid");
	/* A mangled verifier key is refused. */
	CU_ASSERT_EQUAL(agentid_audit_note_open(note, strlen(note),
	    "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", &tl, &err),
	    AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_key");

	free(bad);
	free(text);
	agentid_free(mine);
	agentid_free(myvkey);
	agentid_key_free(key);
	free(skey);
	free(vkey);
	free(note);
}

static void
test_canonical_matches_jansson(void)
{
	const char *path = path_in_tmp("canon.log");
	const char *aud[] = { "https://api.example", "x\"y" };
	struct agentid_chain_rules rules = { 8, 1, NULL, NULL };
	struct agentid_chain *chain = NULL;
	struct agentid_audit_event ev;
	struct agentid_audit_summary sum;
	struct agentid_audit *a;
	struct agentid_error err;
	struct lines ls;
	json_t *claims, *extra, *fields;
	size_t i;

	claims = json_pack("{s:{s:s, s:{s:s}}}", "act", "sub", "spiffe://example.org/sub-agent",
	    "act", "sub", "spiffe://example.org/orchestrator");
	CU_ASSERT_EQUAL_FATAL(agentid_chain_parse(claims, &rules, &chain, &err), 0);
	extra = json_pack("{s:i, s:[s, b, n], s:{s:s}, s:f}", "n", -42, "list", "\x01\x7f",
	    1, "obj", "z", "\xe2\x80\xa8", "real", 0.1);
	a = open_log(path, NULL, 0, NULL);
	memset(&ev, 0, sizeof(ev));
	ev.event = "exchange.granted";
	ev.agent = "spiffe://example.org/sub-agent";
	ev.subject = "tab\there \"quoted\" back\\slash /slash \x1f\x7f é 𝄞";
	ev.chain = chain;
	ev.task = "invalid utf-8: \xc3\x28 \xe0\x80\x80 \xed\xa0\x80 \xf4\x90\x80\x80 \xff end";
	ev.jti = "j1";
	ev.aud = aud;
	ev.n_aud = 2;
	ev.scope = "read write";
	ev.extra = extra;
	CU_ASSERT_EQUAL(agentid_audit_append(a, &ev), 0);
	fields = json_pack("{s:s, s:s, s:i, s:[i, i]}", "event", "custom.thing", "note",
	    "\n\r\b\f", "count", 3, "arr", 1, 2);
	CU_ASSERT_EQUAL(agentid_audit_append_json(a, fields), 0);
	json_decref(fields);
	/* The writer's own members cannot be set from outside. */
	fields = json_pack("{s:s, s:i}", "event", "x", "seq", 1);
	CU_ASSERT_EQUAL(agentid_audit_append_json(a, fields), AGENTID_EINVAL);
	json_decref(fields);
	fields = json_pack("{s:s}", "resource", "no event");
	CU_ASSERT_EQUAL(agentid_audit_append_json(a, fields), AGENTID_EINVAL);
	json_decref(fields);
	CU_ASSERT_EQUAL(agentid_audit_close(a), 0);

	lines_read(path, &ls);
	CU_ASSERT_EQUAL_FATAL(ls.n, 4); /* start, two events, end */
	for (i = 0; i < ls.n; i++) {
		json_error_t jerr;
		json_t *rec = json_loads(ls.l[i], 0, &jerr);
		char *canon, *hashpos;

		CU_ASSERT_PTR_NOT_NULL_FATAL(rec);
		json_object_del(rec, "hash");
		canon = json_dumps(rec, CANON);
		/* The line is the canonical bytes with ,"hash":"..." before the closing brace. */
		hashpos = strstr(ls.l[i], ",\"hash\":\"");
		CU_ASSERT_PTR_NOT_NULL_FATAL(hashpos);
		CU_ASSERT_EQUAL(strlen(canon) - 1, (size_t)(hashpos - ls.l[i]));
		CU_ASSERT_EQUAL(strncmp(canon, ls.l[i], strlen(canon) - 1), 0);
		free(canon);
		json_decref(rec);
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(ls.l[1], "\"chain\":[\"spiffe://example.org/sub-agent\","
					       "\"spiffe://example.org/orchestrator\"]"));
	CU_ASSERT_PTR_NOT_NULL(strstr(ls.l[1], "\\u001F\x7f"));
	CU_ASSERT_PTR_NOT_NULL(strstr(ls.l[1], "\xef\xbf\xbd(")); /* U+FFFD replaced \xc3 */
	CU_ASSERT_EQUAL(verify1(path, NULL, &sum), 0);
	CU_ASSERT_EQUAL(sum.records, 4);
	CU_ASSERT_EQUAL(sum.streams, 1);
	CU_ASSERT_EQUAL(sum.streams_closed, 1);
	CU_ASSERT_EQUAL(sum.checkpoints, 0);
	lines_free(&ls);
	json_decref(claims);
	json_decref(extra);
	agentid_chain_free(chain);
}

static void
test_intact_counts(void)
{
	const char *path = path_in_tmp("intact.log");
	struct agentid_key *key = ed25519_key(), *other = ed25519_key();
	struct agentid_audit_summary sum;
	struct agentid_audit *a;
	struct lines ls;
	size_t i, ncp = 0;

	a = open_log(path, key, 5, NULL);
	append_n(a, 0, 23);
	CU_ASSERT_EQUAL(agentid_audit_checkpoint(a), 0);
	CU_ASSERT_EQUAL(agentid_audit_checkpoint(a), 0); /* nothing new: no second one */
	CU_ASSERT_EQUAL(agentid_audit_close(a), 0);
	lines_read(path, &ls);
	for (i = 0; i < ls.n; i++)
		if (strstr(ls.l[i], "\"event\":\"checkpoint\"") != NULL)
			ncp++;
	CU_ASSERT_EQUAL(verify1(path, key, &sum), 0);
	CU_ASSERT_EQUAL(sum.streams, 1);
	CU_ASSERT_EQUAL(sum.records, ls.n);
	CU_ASSERT_EQUAL(sum.records, 1 + 23 + ncp + 1);
	CU_ASSERT_EQUAL(sum.checkpoints, ncp);
	CU_ASSERT_EQUAL(sum.checkpoints_trusted, ncp);
	CU_ASSERT(ncp >= 6);
	CU_ASSERT_EQUAL(sum.streams_closed, 1);
	CU_ASSERT_EQUAL(sum.streams_unattested, 0);
	/* The last record is the checkpoint that covers the stream.end. */
	CU_ASSERT_PTR_NOT_NULL(strstr(ls.l[ls.n - 1], "\"event\":\"checkpoint\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(ls.l[ls.n - 2], "\"event\":\"stream.end\""));
	/* Without the trusted key, the header's key is used; with another key, nothing is trusted. */
	CU_ASSERT_EQUAL(verify1(path, NULL, &sum), 0);
	CU_ASSERT_EQUAL(sum.checkpoints_trusted, 0);
	expect_fault(path, other, AGENTID_AUDIT_UNTRUSTED_KEY, 6, 5);
	lines_free(&ls);
	agentid_key_free(key);
	agentid_key_free(other);
}

/*
 * The base log of the tamper matrix: header (line 1, seq 0), events seq 1..5,
 * checkpoint seq 6 (line 7), events seq 7..12, checkpoint seq 13 (line 14),
 * events 14..19, checkpoint 20, events 21..24, stream.end 25, checkpoint 26:
 * line n holds seq n - 1.
 */
static const char *
tamper_base(struct agentid_key *key, struct lines *ls, const char *copy)
{
	const char *path = path_in_tmp(copy != NULL ? "base-w.log" : "base.log");
	struct agentid_audit *a;

	unlink(path);
	a = open_log(path, key, 6, copy);
	append_n(a, 1, 20);
	CU_ASSERT_EQUAL(agentid_audit_close(a), 0);
	lines_read(path, ls);
	return path;
}

static void
test_tamper_edit_delete_reorder(void)
{
	struct agentid_key *key = ed25519_key();
	const char *t = path_in_tmp("tampered.log");
	struct lines ls;
	char *tmp, *p;

	tamper_base(key, &ls, NULL);
	/* Edit: line 9 is seq 8 (GET /r/7). */
	tmp = ls.l[8];
	CU_ASSERT_PTR_NOT_NULL_FATAL((p = strstr(tmp, "GET /r/7")));
	p[7] = '9';
	lines_write(t, &ls);
	expect_fault(t, key, AGENTID_AUDIT_HASH_MISMATCH, 9, 8);
	p[7] = '7';

	/* Delete line 9 (seq 8): noticed at the next record (now line 9), naming seq 8. */
	ls.l[8] = NULL;
	lines_write(t, &ls);
	expect_fault(t, key, AGENTID_AUDIT_MISSING, 9, 8);
	ls.l[8] = tmp;

	/* Reorder: swap lines 9 and 10 (seq 8 and 9). */
	ls.l[8] = ls.l[9];
	ls.l[9] = tmp;
	lines_write(t, &ls);
	expect_fault(t, key, AGENTID_AUDIT_REORDERED, 9, 9);
	ls.l[9] = ls.l[8];
	ls.l[8] = tmp;

	/* Intact again. */
	lines_write(t, &ls);
	{
		struct agentid_audit_summary sum;
		CU_ASSERT_EQUAL(verify1(t, key, &sum), 0);
	}
	lines_free(&ls);
	agentid_key_free(key);
}

static void
test_tamper_insert(void)
{
	struct agentid_key *key = ed25519_key();
	const char *t = path_in_tmp("inserted.log");
	unsigned char prev[32], h[32];
	struct lines ls, ins;
	json_error_t jerr;
	json_t *rec;
	char *canon, hex[65];
	size_t i;

	tamper_base(key, &ls, NULL);
	/* A copy of line 3 (seq 2) inserted after line 5: blamed on the copy (line 6). */
	ins.n = ls.n + 1;
	ins.l = calloc(ins.n, sizeof(char *));
	for (i = 0; i < 5; i++)
		ins.l[i] = ls.l[i];
	ins.l[5] = ls.l[2];
	for (i = 5; i < ls.n; i++)
		ins.l[i + 1] = ls.l[i];
	lines_write(t, &ins);
	expect_fault(t, key, AGENTID_AUDIT_INSERTED, 6, 2);

	/* A forged record with valid prev and hash claiming seq 4, placed before the real seq 4
	 * (line 5): the real chain continues from the real record, so the forgery is named. */
	rec = json_loads(ls.l[4], 0, &jerr);
	json_object_set_new(rec, "resource", json_string("GET /forged"));
	json_object_del(rec, "hash");
	unhex(json_string_value(json_object_get(rec, "prev")), prev, 32);
	canon = json_dumps(rec, CANON);
	sha256(prev, 32, canon, strlen(canon), h);
	free(canon);
	tohex(h, 32, hex);
	json_object_set_new(rec, "hash", json_string(hex));
	canon = json_dumps(rec, JSON_COMPACT);
	json_decref(rec);
	ins.l[4] = malloc(strlen(canon) + 2);
	sprintf(ins.l[4], "%s\n", canon);
	free(canon);
	for (i = 4; i < ls.n; i++)
		ins.l[i + 1] = ls.l[i];
	lines_write(t, &ins);
	expect_fault(t, key, AGENTID_AUDIT_INSERTED, 5, 4);
	free(ins.l[4]);
	free(ins.l);

	/* A record of an unknown stream that does not start with a header. */
	ins.n = ls.n + 1;
	ins.l = calloc(ins.n, sizeof(char *));
	for (i = 0; i < ls.n; i++)
		ins.l[i] = ls.l[i];
	ins.l[ls.n] = "{\"event\":\"x\",\"hash\":\"" "0000000000000000000000000000000000000000000000000000000000000000"
		      "\",\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000"
		      "\",\"seq\":3,\"stream\":\"ghost\",\"ts\":\"now\"}\n";
	lines_write(t, &ins);
	expect_fault(t, key, AGENTID_AUDIT_HASH_MISMATCH, ls.n + 1, 3);
	free(ins.l);
	lines_free(&ls);
	agentid_key_free(key);
}

static void
test_tamper_rehash_and_resign(void)
{
	struct agentid_key *key = ed25519_key(), *evil = ed25519_key();
	const char *t = path_in_tmp("resigned.log");
	struct agentid_audit_summary sum;
	struct lines ls;
	char *p;

	/* Edit seq 8 and re-hash the whole chain without the key: the next checkpoint (seq 13,
	 * line 14) no longer matches its signed note. */
	tamper_base(key, &ls, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL((p = strstr(ls.l[8], "GET /r/7")));
	p[7] = '9';
	rechain(&ls, NULL);
	lines_write(t, &ls);
	expect_fault(t, key, AGENTID_AUDIT_BAD_CHECKPOINT, 14, 13);

	/* The same, checkpoints re-signed with another key and the header naming it: only the
	 * trusted key tells. */
	rechain(&ls, evil);
	lines_write(t, &ls);
	CU_ASSERT_EQUAL(verify1(t, NULL, &sum), 0);
	CU_ASSERT_EQUAL(sum.checkpoints_trusted, 0);
	expect_fault(t, key, AGENTID_AUDIT_UNTRUSTED_KEY, 7, 6);
	lines_free(&ls);

	/* Edit seq 8 and fix its own hash only: its successor's prev blames it. */
	tamper_base(key, &ls, NULL);
	{
		json_error_t jerr;
		json_t *rec = json_loads(ls.l[8], 0, &jerr);
		unsigned char prev[32], h[32];
		char *canon, hex[65];

		json_object_set_new(rec, "resource", json_string("GET /edited"));
		json_object_del(rec, "hash");
		unhex(json_string_value(json_object_get(rec, "prev")), prev, 32);
		canon = json_dumps(rec, CANON);
		sha256(prev, 32, canon, strlen(canon), h);
		free(canon);
		tohex(h, 32, hex);
		json_object_set_new(rec, "hash", json_string(hex));
		canon = json_dumps(rec, JSON_COMPACT);
		free(ls.l[8]);
		ls.l[8] = malloc(strlen(canon) + 2);
		sprintf(ls.l[8], "%s\n", canon);
		free(canon);
		json_decref(rec);
	}
	lines_write(t, &ls);
	expect_fault(t, key, AGENTID_AUDIT_CHAIN_BROKEN, 9, 8);
	lines_free(&ls);
	agentid_key_free(key);
	agentid_key_free(evil);
}

static void
test_tamper_truncate(void)
{
	struct agentid_key *key = ed25519_key();
	const char *copy = path_in_tmp("witness.log");
	const char *t = path_in_tmp("truncated.log");
	struct agentid_audit_summary sum;
	struct lines ls;
	size_t i, n;
	const char *files[1];

	unlink(copy);
	tamper_base(key, &ls, copy);
	files[0] = t;
	lines_write(t, &ls);
	CU_ASSERT_EQUAL(verify(files, 1, key, &copy, 1, &sum), 0);
	CU_ASSERT_EQUAL(sum.witness_checkpoints, 4);

	/* Cut the log after line 10 (seq 9): the checkpoints at seq 13, 20, 26 are gone from
	 * the log, but their witness copies say the stream had reached them. */
	n = ls.n;
	for (i = 10; i < n; i++) {
		free(ls.l[i]);
		ls.l[i] = NULL;
	}
	lines_write(t, &ls);
	/* On its own, the truncated log is a well-formed prefix... */
	CU_ASSERT_EQUAL(verify1(t, key, &sum), 0);
	/* ...which the witness copies expose: named at the last record left, first seq missing. */
	CU_ASSERT_EQUAL(verify(files, 1, key, &copy, 1, &sum), AGENTID_EREJECTED);
	CU_ASSERT_EQUAL(sum.fault, AGENTID_AUDIT_TRUNCATED);
	CU_ASSERT_EQUAL(sum.line, 10);
	CU_ASSERT_EQUAL(sum.seq, 10);
	CU_ASSERT_STRING_EQUAL(sum.file, t);
	lines_free(&ls);
	agentid_key_free(key);
}

struct thr_arg {
	struct agentid_audit *a;
	int base;
};

static void *
thr_main(void *p)
{
	struct thr_arg *ta = p;

	append_n(ta->a, ta->base, 2000);
	return NULL;
}

static void
test_threads(void)
{
	const char *path = path_in_tmp("threads.log");
	struct agentid_key *key = ed25519_key();
	struct agentid_audit_summary sum;
	struct agentid_audit *a = open_log(path, key, 100, NULL);
	struct thr_arg ta[4];
	pthread_t th[4];
	int i;

	for (i = 0; i < 4; i++) {
		ta[i].a = a;
		ta[i].base = i * 10000;
		pthread_create(&th[i], NULL, thr_main, &ta[i]);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CU_ASSERT_EQUAL(agentid_audit_close(a), 0);
	CU_ASSERT_EQUAL(verify1(path, key, &sum), 0);
	CU_ASSERT_EQUAL(sum.streams, 1);
	CU_ASSERT_EQUAL(sum.records, 1 + 8000 + sum.checkpoints + 1);
	agentid_key_free(key);
}

static void
test_fork(void)
{
	const char *path = path_in_tmp("fork.log");
	struct agentid_key *key = ed25519_key();
	struct agentid_audit_summary sum;
	struct agentid_audit *a = open_log(path, key, 4, NULL);
	struct lines ls;
	char parent[256];
	pid_t pid;
	int st;
	size_t i, child_start = 0;

	append_n(a, 0, 3);
	snprintf(parent, sizeof(parent), "%s", agentid_audit_stream_id(a));
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		append_n(a, 100, 10);
		/* A child that ends without closing leaves an open stream (like a crash). */
		_exit(strcmp(agentid_audit_stream_id(a), parent) == 0 ? 1 : 0);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	append_n(a, 3, 3);
	CU_ASSERT_STRING_EQUAL(agentid_audit_stream_id(a), parent);
	CU_ASSERT_EQUAL(agentid_audit_close(a), 0);
	CU_ASSERT_EQUAL(verify1(path, key, &sum), 0);
	CU_ASSERT_EQUAL(sum.streams, 2);
	CU_ASSERT_EQUAL(sum.streams_closed, 1);
	lines_read(path, &ls);
	for (i = 0; i < ls.n; i++)
		if (strstr(ls.l[i], "\"parent_stream\"") != NULL)
			child_start++;
	CU_ASSERT_EQUAL(child_start, 1);
	lines_free(&ls);
	{
		struct agentid_audit_verify_opts o;
		struct agentid_error err;

		memset(&o, 0, sizeof(o));
		o.key = key;
		o.require_checkpoint = 1;
		CU_ASSERT_EQUAL(agentid_audit_verify_files(&path, 1, &o, &sum, &err),
		    AGENTID_EREJECTED);
		CU_ASSERT_EQUAL(sum.fault, AGENTID_AUDIT_UNATTESTED);
	}
	agentid_key_free(key);
}

static void
test_torn_tail(void)
{
	const char *path = path_in_tmp("torn.log");
	struct agentid_audit_summary sum;
	struct agentid_audit_verify_opts o;
	struct agentid_error err;
	struct agentid_audit *a = open_log(path, NULL, 0, NULL);
	int fd;

	append_n(a, 0, 5);
	/* The writer dies inside write(2): a fragment without its newline. */
	fd = open(path, O_WRONLY | O_APPEND);
	CU_ASSERT_EQUAL(write(fd, "{\"agent\":\"spiffe://exa", 22), 22);
	close(fd);
	CU_ASSERT_EQUAL(verify1(path, NULL, &sum), 0);
	CU_ASSERT_EQUAL(sum.torn, 1);
	CU_ASSERT_EQUAL(sum.torn_line, 7);
	memset(&o, 0, sizeof(o));
	o.strict = 1;
	CU_ASSERT_EQUAL(agentid_audit_verify_files(&path, 1, &o, &sum, &err), AGENTID_EREJECTED);
	CU_ASSERT_EQUAL(sum.fault, AGENTID_AUDIT_TORN);
	CU_ASSERT_EQUAL(sum.line, 7);
	/* A new writer starts a new stream on a line of its own. */
	agentid_audit_close(a);
	a = open_log(path, NULL, 0, NULL);
	append_n(a, 5, 2);
	agentid_audit_close(a);
	CU_ASSERT_EQUAL(verify1(path, NULL, &sum), 0);
	CU_ASSERT_EQUAL(sum.torn, 1);
	CU_ASSERT_EQUAL(sum.streams, 2);
	CU_ASSERT_EQUAL(sum.records, 1 + 5 + 1 + 1 + 2 + 1);
}

static void
test_rotation(void)
{
	char pattern[600];
	const char *path = path_in_tmp("rot/audit.log");
	struct agentid_audit_config cfg;
	struct agentid_audit_summary sum;
	struct agentid_key *key = ed25519_key();
	struct agentid_audit *a = NULL;
	struct agentid_error err;
	const char **files;
	glob_t g;
	size_t i;

	snprintf(pattern, sizeof(pattern), "%s/rot", tu_tmpdir());
	mkdir(pattern, 0700);
	agentid_audit_config_init(&cfg);
	cfg.path = path;
	cfg.signing_key = key;
	cfg.checkpoint_records = 10;
	cfg.rotate_bytes = 4000;
	CU_ASSERT_EQUAL_FATAL(agentid_audit_open(&cfg, &a, &err), 0);
	append_n(a, 0, 60);
	agentid_audit_close(a);
	snprintf(pattern, sizeof(pattern), "%s.*", path);
	CU_ASSERT_EQUAL_FATAL(glob(pattern, 0, NULL, &g), 0);
	CU_ASSERT(g.gl_pathc >= 3);
	files = calloc(g.gl_pathc + 1, sizeof(*files));
	for (i = 0; i < g.gl_pathc; i++)
		files[i] = g.gl_pathv[i];
	files[g.gl_pathc] = path;
	CU_ASSERT_EQUAL(verify(files, g.gl_pathc + 1, key, NULL, 0, &sum), 0);
	CU_ASSERT_EQUAL(sum.files, g.gl_pathc + 1);
	CU_ASSERT_EQUAL(sum.streams, 1);
	CU_ASSERT_EQUAL(sum.records, 1 + 60 + sum.checkpoints + 1);
	/* Only the live file: its stream's beginning is elsewhere. */
	CU_ASSERT_EQUAL(verify(&path, 1, key, NULL, 0, &sum), AGENTID_EREJECTED);
	CU_ASSERT_EQUAL(sum.fault, AGENTID_AUDIT_NO_HEADER);
	/* A rotated file left out in the middle: the chain is broken across the gap. */
	if (g.gl_pathc >= 3) {
		files[1] = files[0];
		CU_ASSERT_EQUAL(verify(files + 1, g.gl_pathc, key, NULL, 0, &sum),
		    AGENTID_EREJECTED);
		CU_ASSERT_EQUAL(sum.fault, AGENTID_AUDIT_MISSING);
	}
	free(files);
	globfree(&g);
	agentid_key_free(key);
}

static void
test_config_errors(void)
{
	struct agentid_audit_config cfg;
	struct agentid_audit *a = NULL;
	struct agentid_error err;
	struct agentid_key *ec = NULL;
	char *pub = NULL;

	agentid_audit_config_init(&cfg);
	CU_ASSERT_EQUAL(agentid_audit_open(&cfg, &a, &err), AGENTID_EINVAL);
	cfg.path = path_in_tmp("cfg.log");
	CU_ASSERT_EQUAL_FATAL(agentid_key_generate(AGENTID_ALG_ES256, &ec), 0);
	cfg.signing_key = ec;
	CU_ASSERT_EQUAL(agentid_audit_open(&cfg, &a, &err), AGENTID_EUNSUPPORTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_key");
	CU_ASSERT_PTR_NULL(a);
	agentid_key_free(ec);
	cfg.signing_key = ed25519_key();
	cfg.origin = "has space";
	CU_ASSERT_EQUAL(agentid_audit_open(&cfg, &a, &err), AGENTID_EINVAL);
	/* A public key cannot sign checkpoints. */
	cfg.origin = NULL;
	CU_ASSERT_EQUAL_FATAL(agentid_key_to_pem(cfg.signing_key, 1, &pub), 0);
	agentid_key_free(cfg.signing_key);
	cfg.signing_key = NULL;
	CU_ASSERT_EQUAL_FATAL(agentid_key_from_pem(pub, strlen(pub), &cfg.signing_key, &err), 0);
	CU_ASSERT_EQUAL(agentid_audit_open(&cfg, &a, &err), AGENTID_EINVAL);
	agentid_key_free(cfg.signing_key);
	agentid_free(pub);
	CU_ASSERT_EQUAL(agentid_audit_close(NULL), 0);
}

int
main(void)
{
	static const struct tu_test tests[] = {
		{ "signed notes match Go's note package", test_note_go_interop },
		{ "canonical bytes match jansson", test_canonical_matches_jansson },
		{ "intact log: exact counts, trusted key", test_intact_counts },
		{ "tamper: edit, delete, reorder", test_tamper_edit_delete_reorder },
		{ "tamper: inserted copies and forgeries", test_tamper_insert },
		{ "tamper: re-hashed and re-signed", test_tamper_rehash_and_resign },
		{ "tamper: truncation under witness checkpoints", test_tamper_truncate },
		{ "threads share one stream", test_threads },
		{ "a forked child starts its own stream", test_fork },
		{ "torn final line; restart continues", test_torn_tail },
		{ "rotation continues the chain", test_rotation },
		{ "configuration errors", test_config_errors },
		TU_END
	};

	return tu_run("audit", tests);
}
