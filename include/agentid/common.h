/*
 * agentid: common definitions shared by every part of libagentid.
 *
 * Functions return 0 on success or a negative AGENTID_E* code.  When a
 * token, key or certificate is rejected the function returns
 * AGENTID_EREJECTED and fills a struct agentid_error with a stable reason
 * code from one table (agentid_reason_code()): logs, HTTP error
 * descriptions, PAM messages and tests all use the same words.
 */
#ifndef AGENTID_COMMON_H
#define AGENTID_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AGENTID_OK 0
#define AGENTID_EINVAL (-1) /* bad argument or malformed input */
#define AGENTID_ENOMEM (-2) /* out of memory */
#define AGENTID_EIO (-3) /* file or network I/O failed */
#define AGENTID_ECRYPTO (-4) /* OpenSSL failed unexpectedly */
#define AGENTID_ENOTFOUND (-5) /* no such key, file or entry */
#define AGENTID_EREJECTED (-6) /* input was rejected; see the reason */
#define AGENTID_ERANGE (-7) /* too large, or an output buffer too small */
#define AGENTID_EUNSUPPORTED (-8) /* valid but not supported by this build */
#define AGENTID_ESTALE (-9) /* cached data is too old to be trusted */

/* Returns a short English description of an AGENTID_E* code. */
const char *agentid_strerror(int err);

/*
 * Stable reason codes.  The numeric values may change between releases;
 * the strings returned by agentid_reason_code() never do.  New codes are
 * only ever added.
 */
enum agentid_reason {
	AGENTID_R_OK = 0,
	AGENTID_R_MALFORMED, /* "malformed" */
	AGENTID_R_TOO_LARGE, /* "too_large" */
	AGENTID_R_BAD_ENCODING, /* "bad_encoding": not strict base64url */
	AGENTID_R_BAD_JSON, /* "bad_json" */
	AGENTID_R_DUPLICATE_MEMBER, /* "duplicate_member" */
	AGENTID_R_TOO_DEEP, /* "too_deep": JSON nesting limit */
	AGENTID_R_ALG_NOT_ALLOWED, /* "alg_not_allowed" */
	AGENTID_R_CRIT_UNSUPPORTED, /* "crit_unsupported" */
	AGENTID_R_HEADER_NOT_ALLOWED, /* "header_not_allowed": jwk, jku, x5u, x5c */
	AGENTID_R_UNKNOWN_KID, /* "unknown_kid" */
	AGENTID_R_KEY_MISMATCH, /* "key_mismatch": key type/curve/alg vs alg */
	AGENTID_R_BAD_SIGNATURE, /* "bad_signature" */
	AGENTID_R_EXPIRED, /* "expired" */
	AGENTID_R_NOT_YET_VALID, /* "not_yet_valid": nbf in the future */
	AGENTID_R_IAT_IN_FUTURE, /* "iat_in_future" */
	AGENTID_R_BAD_CLAIM, /* "bad_claim": a claim of the wrong type */
	AGENTID_R_MISSING_CLAIM, /* "missing_claim" */
	AGENTID_R_ISS_MISMATCH, /* "iss_mismatch" */
	AGENTID_R_AUD_MISMATCH, /* "aud_mismatch" */
	AGENTID_R_TYP_MISMATCH, /* "typ_mismatch" */
	AGENTID_R_BAD_SPIFFE_ID, /* "bad_spiffe_id" */
	AGENTID_R_UNTRUSTED_DOMAIN, /* "untrusted_domain" */
	AGENTID_R_CHAIN_INVALID, /* "chain_invalid": act is not well formed */
	AGENTID_R_CHAIN_TOO_DEEP, /* "chain_too_deep" */
	AGENTID_R_CHAIN_CYCLE, /* "chain_cycle": an agent appears twice */
	AGENTID_R_AGENT_NOT_ALLOWED, /* "agent_not_allowed" */
	AGENTID_R_SUBJECT_NOT_ALLOWED, /* "subject_not_allowed" */
	AGENTID_R_INSUFFICIENT_SCOPE, /* "insufficient_scope" */
	AGENTID_R_CLAIM_MISMATCH, /* "claim_mismatch" */
	AGENTID_R_BINDING_REQUIRED, /* "binding_required" */
	AGENTID_R_BINDING_MISMATCH, /* "binding_mismatch" */
	AGENTID_R_REVOKED, /* "revoked" */
	AGENTID_R_SUSPENDED, /* "suspended" */
	AGENTID_R_STATUS_UNAVAILABLE, /* "status_unavailable" */
	AGENTID_R_NO_KEYS, /* "no_keys" */
	AGENTID_R_CERT_INVALID, /* "cert_invalid": not a well-formed SVID */
	AGENTID_R_CERT_EXPIRED, /* "cert_expired" */
	AGENTID_R_CERT_UNTRUSTED, /* "cert_untrusted": chain does not verify */
	AGENTID_R_LEAF_IS_CA, /* "leaf_is_ca" */
	AGENTID_R_BAD_KEY_USAGE, /* "bad_key_usage" */
	AGENTID_R_BAD_KEY, /* "bad_key": unusable or weak key */
	AGENTID_R_DPOP_INVALID, /* "dpop_invalid" */
	AGENTID_R_DPOP_REPLAY, /* "dpop_replay" */
	AGENTID_R_INTERNAL, /* "internal": allocation or library failure */
	AGENTID_R_AUDIT_INVALID, /* "audit_invalid": an audit log failed verification */
	AGENTID_R__COUNT
};

/* "expired", "bad_signature", ...; "unknown" for out-of-range values. */
const char *agentid_reason_code(enum agentid_reason r);
/* One short English sentence fragment, e.g. "token has expired". */
const char *agentid_reason_text(enum agentid_reason r);

#define AGENTID_ERROR_DETAIL_MAX 160

/* Filled on rejection.  detail never contains a token or key material. */
struct agentid_error {
	enum agentid_reason reason;
	char detail[AGENTID_ERROR_DETAIL_MAX];
};

/* Sets reason and a printf-style detail; returns AGENTID_EREJECTED.  err may be NULL. */
int agentid_error_set(struct agentid_error *err, enum agentid_reason r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void agentid_error_clear(struct agentid_error *err);

/*
 * Logging.  The core never writes to stderr or syslog: hosts install a
 * sink (nginx: ngx_log_error, PAM: pam_syslog, CLI: stderr).  Without a
 * sink, messages are dropped.
 */
enum agentid_log_level {
	AGENTID_LOG_ERROR = 0,
	AGENTID_LOG_WARN,
	AGENTID_LOG_INFO,
	AGENTID_LOG_DEBUG
};
typedef void (*agentid_log_fn)(void *arg, enum agentid_log_level level, const char *msg);
void agentid_set_log(agentid_log_fn fn, void *arg, enum agentid_log_level max_level);
void agentid_log(enum agentid_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Allocator hooks.  Install before any other call (they are also handed
 * to jansson).  Tests use them to make allocations fail.
 */
void agentid_set_allocator(
    void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t), void (*free_fn)(void *));

/* Default size limits, overridable per verifier. */
#define AGENTID_DEFAULT_MAX_TOKEN_LEN 16384
#define AGENTID_DEFAULT_MAX_JSON_DEPTH 16
#define AGENTID_DEFAULT_MAX_CHAIN_DEPTH 8
#define AGENTID_DEFAULT_LEEWAY 30

struct agentid_limits {
	size_t max_token_len; /* bytes of the compact serialization */
	int max_json_depth; /* nesting of objects/arrays in header and payload */
};

/* Fills the defaults above. */
void agentid_limits_init(struct agentid_limits *lim);

/*
 * Frees memory that libagentid handed to the caller (strings and buffers
 * documented as "free with agentid_free").  NULL is fine.
 */
void agentid_free(void *p);

/*
 * Reads a whole file of at most max bytes (0 = no bound) into a
 * NUL-terminated buffer freed with agentid_free().  AGENTID_ENOTFOUND when
 * it does not exist, AGENTID_ERANGE when it is larger than max,
 * AGENTID_EIO on other errors.  The one bounded file reader hosts share.
 */
int agentid_read_file(const char *path, size_t max, char **out, size_t *len);

/* Library version string, e.g. "0.1.0". */
const char *agentid_version(void);

#ifdef __cplusplus
}
#endif
#endif
