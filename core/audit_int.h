/*
 * Private parts of the audit log shared by audit.c (writer),
 * audit_verify.c (verifier, reader) and checkpoint.c (signed notes).
 */
#ifndef AGENTID_AUDIT_INT_H
#define AGENTID_AUDIT_INT_H

#include <string.h>

#include <openssl/evp.h>

#include <agentid/audit.h>

#include "internal.h"

#define AUDIT_HASH_LEN 32
#define AUDIT_HEX_LEN (2 * AUDIT_HASH_LEN)
#define AUDIT_KEYID_LEN 4
#define AUDIT_ED25519_LEN 32
#define AUDIT_NOTE_ED25519 0x01 /* signed-note signature type byte for Ed25519 */
#define AUDIT_MAX_LINE (1024 * 1024)
#define AUDIT_MAX_NOTE_SIGS 16

/*
 * The jansson flags that define the canonical bytes of a record: compact,
 * members sorted by name (byte order), UTF-8 output.  The writer emits the
 * same bytes itself; audit_verify.c re-serializes with these flags.
 */
#define AUDIT_CANON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)

#define AUDIT_MAX_FIELDS 32

/* ---- canonical records (audit_canon.c) ---- */

enum audit_field_kind {
	AF_STR,
	AF_INT,
	AF_SEQ, /* the record's seq, known only when it is written */
	AF_STRS,
	AF_CHAIN,
	AF_JSON
};

struct audit_field {
	const char *key;
	enum audit_field_kind kind;
	const char *s;
	int64_t i;
	const char *const *strs;
	size_t n;
	const struct agentid_chain *chain;
	const json_t *json;
	int plain; /* AF_STR whose key and value are ASCII that needs no escaping */
};

/* A record's members; add* silently skip NULL values and set overflow when full. */
struct audit_fields {
	struct audit_field f[AUDIT_MAX_FIELDS];
	size_t n;
	int overflow;
};

void audit_fields_str(struct audit_fields *fs, const char *key, const char *s);
/* A member the writer itself makes (ts, stream, prev, ...): printable ASCII, no '"' or '\\'. */
void audit_fields_plain(struct audit_fields *fs, const char *key, const char *s);
void audit_fields_int(struct audit_fields *fs, const char *key, int64_t i);
void audit_fields_seq(struct audit_fields *fs);
void audit_fields_strs(struct audit_fields *fs, const char *key, const char *const *strs, size_t n);
void audit_fields_chain(struct audit_fields *fs, const char *key, const struct agentid_chain *c);
void audit_fields_json(struct audit_fields *fs, const char *key, const json_t *j);
/* Sorts by name (strcmp, as jansson does); AGENTID_EINVAL on a duplicate name. */
int audit_fields_sort(struct audit_fields *fs);

/* The line buffer of a writer: no terminator, grows up to AUDIT_MAX_LINE. */
struct audit_lbuf {
	char *p;
	size_t len, cap;
};

int audit_lbuf_grow(struct audit_lbuf *b, size_t n);
void audit_lbuf_free(struct audit_lbuf *b);

static inline int
audit_put(struct audit_lbuf *b, const void *p, size_t n)
{
	int r;

	if (b->cap - b->len < n && (r = audit_lbuf_grow(b, n)) != 0)
		return r;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

/* Appends the canonical bytes of the (sorted) members; AF_SEQ members print seq. */
int audit_emit_canonical(struct audit_lbuf *b, const struct audit_fields *fs, uint64_t seq);

/* An Ed25519 signed-note key: name, raw public key, and the EVP key (private to sign). */
struct audit_note_key {
	char *name;
	unsigned char pub[AUDIT_ED25519_LEN];
	unsigned char id[AUDIT_KEYID_LEN]; /* for name */
	EVP_PKEY *pkey;
};

/* key ID = SHA-256(name || 0x0A || 0x01 || pub)[:4] (C2SP signed-note). */
int audit_note_keyid(
    const char *name, size_t name_len, const unsigned char *pub, unsigned char *id);
/* From an agentid key (Ed25519 only, else AGENTID_EUNSUPPORTED); name may be NULL for a key
 * that accepts any name when verifying. */
int audit_note_key_from_key(
    const struct agentid_key *key, const char *name, struct audit_note_key *out);
/* From a verifier key "name+hexid+base64(0x01||pub)". */
int audit_note_key_from_vkey(const char *vkey, size_t len, struct audit_note_key *out);
void audit_note_key_clear(struct audit_note_key *k);
/* "name+hexid+base64(0x01||pub)" into out. */
int audit_note_vkey(const struct audit_note_key *k, struct agentid_buf *out);
/* Appends "\n— <name> <base64(id||sig)>\n" for text (which ends in a newline). */
int audit_note_sign(
    const struct audit_note_key *k, const char *text, size_t len, struct agentid_buf *out);

enum audit_note_result {
	AUDIT_NOTE_VERIFIED = 0, /* a signature by k verifies */
	AUDIT_NOTE_NO_SIG, /* no signature line carries k's name and id */
	AUDIT_NOTE_BAD_SIG, /* a signature by k does not verify */
	AUDIT_NOTE_MALFORMED /* not a signed note */
};
/*
 * Splits note into text and signature lines and checks the signatures by
 * k.  When k->name is NULL any name is accepted (the id is then computed
 * for the name on the line).  *text_len is the length of the text.
 */
enum audit_note_result audit_note_verify(
    const char *note, size_t len, const struct audit_note_key *k, size_t *text_len);

/* Standard base64 (RFC 4648 section 4, padded). */
int audit_b64_encode(const unsigned char *in, size_t n, struct agentid_buf *out);
/* Strict: padding required, no whitespace.  Fails with AGENTID_ERANGE past outsz. */
int audit_b64_decode(const char *in, size_t n, unsigned char *out, size_t outsz, size_t *outlen);

void audit_hex(const unsigned char *in, size_t n, char *out); /* writes 2n chars + NUL */
/* Lower-case hex only; 0 on success. */
int audit_unhex(const char *s, size_t slen, unsigned char *out, size_t n);

#endif
