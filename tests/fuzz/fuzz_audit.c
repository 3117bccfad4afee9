/*
 * Fuzz target: audit logs as `agentid audit verify` and `audit trace` read
 * them (core/audit_verify.c: agentid_audit_verify_files and
 * agentid_audit_read_files).  The verifier takes paths, so the input is
 * written to in-memory files.
 *
 * Input: one flags byte, then the log, then optionally a NUL byte and a
 * witness file (checkpoint copies).  Flags:
 *   0x01 strict, 0x02 require_checkpoint, 0x04 trust the fixed Ed25519 key,
 *   0x08 witness file present,
 *   0x10 "fix up" the log before verifying: every JSON record gets prev =
 *        the hash of the previous record of its stream and a correct hash;
 *        a checkpoint gets size = seq and root = prev, and a note "auto" is
 *        replaced by a note signed with the fixed key.  Without this,
 *        nearly every mutation stops at hash_mismatch; with it, mutations
 *        reach the chain, sequence, header and checkpoint logic.
 * The result must be consistent: 0 with no fault, or AGENTID_EREJECTED with
 * one.  Seeds are written by the real writer (see gen_seeds.c).
 */
#include "fuzz_util.h"

#include "audit_int.h"

#define FZ_ORIGIN "agentid-audit/fuzz"
#define MAX_STREAMS 8

static struct agentid_key *key;
static struct audit_note_key nkey;
static struct fz_memfile logf, witf;

struct chain_head {
	char *id;
	unsigned char head[AUDIT_HASH_LEN];
};

static void
setup(void)
{
	key = fz_key(FZ_ED_JWK_PRIVATE);
	if (audit_note_key_from_key(key, FZ_ORIGIN, &nkey) != 0)
		abort();
	fz_memfile_init(&logf, "audit.log");
	fz_memfile_init(&witf, "audit.checkpoints");
}

static unsigned char *
stream_head(struct chain_head *heads, size_t *n, const char *id)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp(heads[i].id, id) == 0)
			return heads[i].head;
	if (*n == MAX_STREAMS)
		return NULL;
	if ((heads[*n].id = strdup(id)) == NULL)
		abort();
	memset(heads[*n].head, 0, AUDIT_HASH_LEN);
	return heads[(*n)++].head;
}

/* Re-chains one record in place; 0 when root was rewritten. */
static int
fixup_record(json_t *root, unsigned char *head, struct agentid_buf *out)
{
	unsigned char md[AUDIT_HASH_LEN];
	char hex[AUDIT_HEX_LEN + 1];
	struct agentid_buf b64, note;
	const char *ev = json_string_value(json_object_get(root, "event"));
	json_t *seq = json_object_get(root, "seq");
	char *canon;
	int r = -1;

	agentid_buf_init(&b64, 0);
	agentid_buf_init(&note, 0);
	audit_hex(head, AUDIT_HASH_LEN, hex);
	json_object_set_new(root, "prev", json_string(hex));
	if (ev != NULL && strcmp(ev, "checkpoint") == 0 && json_is_integer(seq)) {
		if (audit_b64_encode(head, AUDIT_HASH_LEN, &b64) != 0)
			goto out;
		json_object_set_new(root, "size", json_integer(json_integer_value(seq)));
		json_object_set_new(root, "root", json_string(b64.data));
		if (json_is_string(json_object_get(root, "note"))
		    && strcmp(json_string_value(json_object_get(root, "note")), "auto") == 0) {
			if (agentid_buf_printf(&note, "%s/%s\n%lld\n%s\n", FZ_ORIGIN,
			        json_string_value(json_object_get(root, "stream")),
			        (long long)json_integer_value(seq), b64.data)
			        != 0
			    || audit_note_sign(&nkey, note.data, note.len, &note) != 0)
				goto out;
			json_object_set_new(root, "note", json_string(note.data));
		}
	}
	json_object_del(root, "hash");
	if ((canon = json_dumps(root, AUDIT_CANON_FLAGS)) == NULL)
		goto out;
	{
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		unsigned int mdlen = 0;

		if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1
		    || EVP_DigestUpdate(ctx, head, AUDIT_HASH_LEN) != 1
		    || EVP_DigestUpdate(ctx, canon, strlen(canon)) != 1
		    || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
			abort();
		EVP_MD_CTX_free(ctx);
	}
	free(canon);
	audit_hex(md, AUDIT_HASH_LEN, hex);
	json_object_set_new(root, "hash", json_string(hex));
	if ((canon = json_dumps(root, AUDIT_CANON_FLAGS)) == NULL)
		goto out;
	if (agentid_buf_append(out, canon, strlen(canon)) != 0)
		abort();
	free(canon);
	memcpy(head, md, AUDIT_HASH_LEN);
	r = 0;
out:
	agentid_buf_free(&b64);
	agentid_buf_free(&note);
	return r;
}

/* Rewrites the log line by line; lines that are not records are copied as they are. */
static void
fixup(const uint8_t *p, size_t len, struct agentid_buf *out)
{
	struct chain_head heads[MAX_STREAMS];
	const uint8_t *end = p + len, *line;
	size_t n = 0, llen, i;
	unsigned char *head;
	const char *sid;
	json_t *root;

	while (fz_next_part(&p, end, '\n', &line, &llen)) {
		root = json_loadb(
		    (const char *)line, llen, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
		sid = json_string_value(json_object_get(root, "stream"));
		if (!json_is_object(root) || sid == NULL
		    || (head = stream_head(heads, &n, sid)) == NULL
		    || fixup_record(root, head, out) != 0) {
			if (agentid_buf_append(out, line, llen) != 0)
				abort();
		}
		json_decref(root);
		if (p != NULL && agentid_buf_append(out, "\n", 1) != 0)
			abort();
	}
	for (i = 0; i < n; i++)
		free(heads[i].id);
}

static int
count_record(void *arg, const json_t *rec, const char *file, size_t line)
{
	(void)rec;
	(void)file;
	if (line == 0)
		abort();
	++*(size_t *)arg;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agentid_audit_verify_opts opts;
	struct agentid_audit_summary sum;
	struct agentid_error err;
	struct agentid_buf fixed;
	const char *paths[1], *cps[1];
	const uint8_t *p, *end = data + size, *log, *wit;
	size_t loglen, witlen = 0, nrec = 0;
	unsigned flags;
	int r;

	if (key == NULL)
		setup();
	if (size < 1)
		return 0;
	flags = data[0];
	p = data + 1;
	wit = NULL;
	if (flags & 0x08) {
		fz_next_part(&p, end, 0, &log, &loglen);
		if (!fz_next_part(&p, end, 0, &wit, &witlen))
			wit = NULL;
	} else {
		log = p;
		loglen = size - 1;
	}

	agentid_buf_init(&fixed, 0);
	if (flags & 0x10) {
		fixup(log, loglen, &fixed);
		fz_memfile_set(&logf, fixed.data != NULL ? fixed.data : "", fixed.len);
	} else
		fz_memfile_set(&logf, log, loglen);
	agentid_buf_free(&fixed);
	if (wit != NULL)
		fz_memfile_set(&witf, wit, witlen);

	memset(&opts, 0, sizeof(opts));
	opts.strict = (flags & 0x01) != 0;
	opts.require_checkpoint = (flags & 0x02) != 0;
	if (flags & 0x04)
		opts.key = key;
	if (wit != NULL) {
		cps[0] = witf.path;
		opts.checkpoint_files = cps;
		opts.n_checkpoint_files = 1;
	}
	paths[0] = logf.path;
	memset(&err, 0, sizeof(err));
	r = agentid_audit_verify_files(paths, 1, &opts, &sum, &err);
	if (r == 0 && sum.fault != AGENTID_AUDIT_OK)
		abort();
	if (r == AGENTID_EREJECTED && sum.fault == AGENTID_AUDIT_OK)
		abort();
	if (r != 0 && r != AGENTID_EREJECTED)
		abort();
	if (r == 0 && sum.files != 1)
		abort();
	if (agentid_audit_read_files(paths, 1, count_record, &nrec, &err) != 0)
		abort();
	return 0;
}
