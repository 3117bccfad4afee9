/*
 * agentid: tamper-evident audit log.
 *
 * The log is a file of JSON Lines shared by several writers.  Every
 * writer (one per process and audit handle) is a *stream*: a hash chain
 * that starts with a "stream.start" header record.  Each record carries
 * ts, stream, seq, prev and hash; hash = SHA-256(prev || canonical bytes of
 * the record without "hash").  Every N records and every T seconds a
 * "checkpoint" record holds a C2SP signed note (tlog-checkpoint body,
 * Ed25519 signed-note signature) over the stream's head.  The exact format
 * is in doc/audit-format.md.
 *
 * Appends are thread-safe (a mutex per handle) and process-safe: each
 * record is one write(2) of a whole line to a file opened with O_APPEND,
 * and a child process that inherits a handle starts a stream of its own.
 */
#ifndef AGENTID_AUDIT_H
#define AGENTID_AUDIT_H

#include <jansson.h>

#include <agentid/common.h>
#include <agentid/jose.h>
#include <agentid/verify.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- writer ---- */

enum agentid_audit_fsync {
	AGENTID_AUDIT_FSYNC_CHECKPOINT
	= 0, /* fdatasync after each checkpoint and at close (default) */
	AGENTID_AUDIT_FSYNC_RECORD, /* fdatasync after every record */
	AGENTID_AUDIT_FSYNC_NEVER /* leave it to the kernel */
};

/* "checkpoint", "record", "never" -> enum; AGENTID_EINVAL otherwise. */
int agentid_audit_fsync_from_name(const char *name, enum agentid_audit_fsync *out);

struct agentid_audit_config {
	const char *path; /* the log file (created 0640 when absent); required */
	const char *component; /* "exchange", "nginx", "pam", "cli", ...; default "agentid" */
	const char
	    *signing_key_path; /* Ed25519 private key for checkpoints; NULL: no checkpoints */
	struct agentid_key *signing_key; /* alternative to signing_key_path; a reference is taken */
	const char *origin; /* checkpoint origin prefix and note key name;
	                     * default "agentid-audit/<host>" */
	unsigned
	    checkpoint_records; /* checkpoint after this many records; default 1000, 0 = never */
	unsigned
	    checkpoint_seconds; /* ... or when the last one is this old; default 60, 0 = never */
	enum agentid_audit_fsync fsync;
	uint64_t rotate_bytes; /* rename the file to <path>.<UTC time> past this size; 0 = never */
	const char *checkpoint_copy_path; /* also append every checkpoint record here (a witness
	                                   * copy kept apart from the log); NULL = none */
	int file_mode; /* mode for a new file; default 0640 */
};

/* Fills the defaults above (path NULL). */
void agentid_audit_config_init(struct agentid_audit_config *cfg);

struct agentid_audit;

/*
 * Opens (creating) the log, loads the checkpoint key and writes the stream
 * header.  Errors: AGENTID_EINVAL (bad configuration, err->detail says
 * what), AGENTID_EIO (cannot open or write), AGENTID_EUNSUPPORTED (the
 * checkpoint key is not Ed25519).
 */
int agentid_audit_open(
    const struct agentid_audit_config *cfg, struct agentid_audit **out, struct agentid_error *err);

/*
 * One audit event.  Every member is optional except event; NULL / 0
 * members are left out of the record.  Strings are copied into the record
 * (invalid UTF-8 is replaced by U+FFFD).
 */
struct agentid_audit_event {
	const char *event; /* "exchange.granted", "access.denied", "login.allowed", ... */
	const char *agent; /* acting SPIFFE ID */
	const char *subject; /* on whose behalf (sub) */
	const struct agentid_chain *chain; /* full act chain, current actor first */
	const char *task;
	const char *jti; /* the token this event is about / was performed with */
	const char *parent_jti; /* for exchanges: the jti of the subject token */
	const char *iss;
	const char *const *aud;
	size_t n_aud;
	const char *scope; /* granted scopes */
	const char *scope_requested;
	const char *resource; /* "GET /path", "sshd user" */
	const char *decision; /* "allow" / "deny" */
	const char *reason; /* stable reason code (agentid_reason_code) */
	const char *client; /* peer address or certificate SPIFFE ID */
	const json_t *extra; /* an object, recorded under "extra" */
};

/*
 * Fills agent, subject, chain, task, jti, parent_jti, iss and scope of ev
 * from a verified token (pointers into t: keep t alive until the append).
 */
void agentid_audit_event_set_token(struct agentid_audit_event *ev, const struct agentid_token *t);

/* Appends one record (and a checkpoint when one is due).  AGENTID_EIO when the write failed:
 * the next append then starts a new stream. */
int agentid_audit_append(struct agentid_audit *a, const struct agentid_audit_event *ev);

/*
 * Appends fields (a JSON object with a string "event"; the writer's own
 * members ts, stream, seq, prev and hash may not appear) as one record.
 */
int agentid_audit_append_json(struct agentid_audit *a, const json_t *fields);

/* Writes a checkpoint now (when a key is set and records were added since the last one). */
int agentid_audit_checkpoint(struct agentid_audit *a);

/* Writes a checkpoint when checkpoint_seconds have passed; for hosts that run a timer. */
int agentid_audit_tick(struct agentid_audit *a);

/* The stream id of the calling process's stream (valid until the next call on a). */
const char *agentid_audit_stream_id(struct agentid_audit *a);

/*
 * Writes "stream.end" and a final checkpoint (when a key is set), syncs
 * and frees.  NULL is fine.  Returns the first write error, if any.
 */
int agentid_audit_close(struct agentid_audit *a);

/* ---- verification ---- */

enum agentid_audit_fault {
	AGENTID_AUDIT_OK = 0,
	AGENTID_AUDIT_BAD_RECORD, /* "bad_record": not a record (members missing or mistyped) */
	AGENTID_AUDIT_HASH_MISMATCH, /* "hash_mismatch": the record was altered */
	AGENTID_AUDIT_CHAIN_BROKEN, /* "chain_broken": prev is not the previous record's hash */
	AGENTID_AUDIT_MISSING, /* "missing": records of the stream were deleted */
	AGENTID_AUDIT_REORDERED, /* "reordered": a record appears before its predecessor */
	AGENTID_AUDIT_INSERTED, /* "inserted": a record that is not part of the chain */
	AGENTID_AUDIT_NO_HEADER, /* "no_header": stream does not begin with stream.start */
	AGENTID_AUDIT_TRUNCATED, /* "truncated": records covered by a checkpoint are gone */
	AGENTID_AUDIT_BAD_CHECKPOINT, /* "bad_checkpoint": note does not match the stream head */
	AGENTID_AUDIT_BAD_SIGNATURE, /* "bad_signature": checkpoint signature does not verify */
	AGENTID_AUDIT_UNTRUSTED_KEY, /* "untrusted_key": not signed by the trusted key */
	AGENTID_AUDIT_AFTER_END, /* "after_end": records after stream.end */
	AGENTID_AUDIT_TORN, /* "torn": an unparsable line (only with strict) */
	AGENTID_AUDIT_UNATTESTED, /* "unattested": no trusted checkpoint covers the stream's end
	                           * (only with require_checkpoint) */
	AGENTID_AUDIT__COUNT
};

const char *agentid_audit_fault_name(enum agentid_audit_fault f);

struct agentid_audit_verify_opts {
	/* The trusted checkpoint key (public or private; Ed25519).  NULL: checkpoint signatures
	 * are checked against the key each stream header names, which proves nothing against
	 * someone who rewrote the whole stream. */
	const struct agentid_key *key;
	const char *key_name; /* when set, signatures must carry this key name */
	const char *const *checkpoint_files; /* witness copies (checkpoint_copy_path files) */
	size_t n_checkpoint_files;
	int strict; /* unparsable lines are errors rather than torn records */
	int require_checkpoint; /* every stream must end with a trusted checkpoint */
};

#define AGENTID_AUDIT_NAME_MAX 256

struct agentid_audit_summary {
	size_t files, lines, streams, records, checkpoints;
	size_t checkpoints_trusted; /* verified against opts->key */
	size_t streams_closed; /* ended with stream.end */
	size_t streams_unattested; /* no checkpoint verified against a trusted key */
	size_t witness_checkpoints; /* checkpoints from opts->checkpoint_files matched */
	size_t torn; /* unparsable lines that were skipped */
	char torn_file[AGENTID_AUDIT_NAME_MAX];
	size_t torn_line; /* first one */
	/* The first problem (fault != OK when verification failed). */
	enum agentid_audit_fault fault;
	char file[AGENTID_AUDIT_NAME_MAX];
	size_t line; /* 1-based */
	char stream[AGENTID_AUDIT_NAME_MAX];
	int64_t seq; /* -1 when unknown */
	char what[AGENTID_AUDIT_NAME_MAX];
};

/*
 * Verifies the files in the order given (rotated files oldest first, then
 * the live file).  0 when intact; AGENTID_EREJECTED (reason AUDIT_INVALID)
 * with sum->fault, file, line, stream, seq and what describing the first
 * bad record; AGENTID_EIO when a file cannot be read.
 */
int agentid_audit_verify_files(const char *const *paths, size_t n,
    const struct agentid_audit_verify_opts *opts, struct agentid_audit_summary *sum,
    struct agentid_error *err);

/*
 * Reads every record of the files in order, without verifying, calling fn
 * for each (unparsable lines are skipped).  fn returns 0 to go on, or a
 * value that stops the walk and is returned.
 */
typedef int (*agentid_audit_record_fn)(void *arg, const json_t *rec, const char *file, size_t line);
int agentid_audit_read_files(const char *const *paths, size_t n, agentid_audit_record_fn fn,
    void *arg, struct agentid_error *err);

/*
 * The signed-note verifier key of an Ed25519 checkpoint key:
 * "<name>+<8 hex key id>+<base64(0x01 || public key)>" (the format of
 * golang.org/x/mod/sumdb/note).  *out is freed with agentid_free.
 */
int agentid_audit_note_vkey(const struct agentid_key *key, const char *name, char **out);

/*
 * Signs text (which must end in a newline) as a C2SP signed note with an
 * Ed25519 key under name: text, an empty line, "— <name> <base64(key ID ||
 * signature)>".  *out is freed with agentid_free.
 */
int agentid_audit_note_sign(
    const struct agentid_key *key, const char *name, const char *text, char **out);

/*
 * Checks a signed note against a verifier key ("name+hexid+base64(0x01||pub)").
 * 0 when a signature by that key verifies (*text_len: the length of the
 * text); AGENTID_EREJECTED with BAD_SIGNATURE (a signature by the key does
 * not verify), UNKNOWN_KID (no signature by the key) or MALFORMED.
 */
int agentid_audit_note_open(
    const char *note, size_t len, const char *vkey, size_t *text_len, struct agentid_error *err);

#ifdef __cplusplus
}
#endif
#endif
