/*
 * Shared helpers for the CUnit unit tests.
 */
#ifndef AGENTID_TESTUTIL_H
#define AGENTID_TESTUTIL_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include <agentid/agentid.h>

/* One test case of a suite. */
struct tu_test {
	const char *name;
	void (*fn)(void);
};

#define TU_END { NULL, NULL }

/*
 * Runs one suite of tests with the CUnit basic runner (verbose) and
 * returns the process exit status: 0 when every test passed.
 */
int tu_run(const char *suite, const struct tu_test *tests);

/* Absolute path of a file under tests/vectors/; static buffer. */
const char *tu_vector(const char *name);
/* Reads a vector file into a NUL-terminated malloc'd string (trailing newline trimmed). */
char *tu_read_vector(const char *name, size_t *len);
/* Creates a fresh private directory under $TMPDIR; static buffer; removed at exit. */
const char *tu_tmpdir(void);
/* Writes data to dir/name; returns the full path (static buffer). */
const char *tu_write_file(const char *dir, const char *name, const void *data, size_t len);

/* Builds a compact JWS from raw header and payload JSON text with a signature made by key
 * (or, with key NULL, the raw bytes sig/sig_len).  The header is taken as is. */
char *tu_make_jws(const char *header_json, const char *payload_json,
    const struct agentid_key *key, enum agentid_alg alg);
char *tu_make_jws_rawsig(const char *header_json, const char *payload_json,
    const unsigned char *sig, size_t sig_len);
/* base64url of a string. */
char *tu_b64(const char *s);

#endif
