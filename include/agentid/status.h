/*
 * agentid: revocation with Token Status Lists (draft-ietf-oauth-status-list).
 *
 * A status list holds one status of `bits` bits (1, 2, 4 or 8) per token,
 * packed least significant bits first into a byte array, compressed with
 * zlib (RFC 1950, DEFLATE) and base64url-encoded without padding:
 * {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}.  It travels as a JWT with header
 * typ "statuslist+jwt" and claims sub (the list's URI), iat, exp, ttl and
 * status_list.  A token points at its entry with
 * "status": {"status_list": {"idx": N, "uri": "https://..."}}.
 *
 * Issuers build and sign lists (struct agentid_status_list).  Verifiers
 * keep a struct agentid_status_checker: refreshing it does the I/O and
 * swaps in the new lists; checking a token is O(1), never does I/O and
 * never allocates.
 */
#ifndef AGENTID_STATUS_H
#define AGENTID_STATUS_H

#include <jansson.h>

#include <agentid/common.h>
#include <agentid/fetch.h>
#include <agentid/jose.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status values (draft section "Status Types"). */
#define AGENTID_STATUS_VALID 0x00
#define AGENTID_STATUS_INVALID 0x01 /* revoked, irreversible */
#define AGENTID_STATUS_SUSPENDED 0x02 /* reversible */

#define AGENTID_STATUS_LIST_TYP "statuslist+jwt"
#define AGENTID_STATUS_DEFAULT_MAX_LIST_BYTES (16u * 1024 * 1024) /* decompressed */

/* ---- the list ---- */

struct agentid_status_list;

/* size entries of bits (1, 2, 4 or 8) bits, all VALID.  The byte array is rounded up. */
int agentid_status_list_new(size_t size, unsigned bits, struct agentid_status_list **out);
/* A list over a copy of len raw (uncompressed) bytes. */
int agentid_status_list_from_bytes(
    const unsigned char *bytes, size_t len, unsigned bits, struct agentid_status_list **out);
size_t agentid_status_list_size(const struct agentid_status_list *l); /* entries */
unsigned agentid_status_list_bits(const struct agentid_status_list *l);
const unsigned char *agentid_status_list_bytes(const struct agentid_status_list *l, size_t *len);
/* AGENTID_ERANGE for idx >= size or a value that does not fit in bits. */
int agentid_status_list_set(struct agentid_status_list *l, size_t idx, unsigned value);
int agentid_status_list_get(const struct agentid_status_list *l, size_t idx, unsigned *value);
void agentid_status_list_free(struct agentid_status_list *l);

/* {"bits": N, "lst": base64url(zlib level 9 (bytes))} -- byte-exact with the draft's examples. */
int agentid_status_list_encode(const struct agentid_status_list *l, json_t **out);
/*
 * Parses a status_list object.  Rejections (reason MALFORMED / BAD_ENCODING /
 * TOO_LARGE): bits not 1/2/4/8, lst not strict base64url, not a complete
 * zlib stream, trailing data, or more than max_bytes once decompressed
 * (0: AGENTID_STATUS_DEFAULT_MAX_LIST_BYTES).
 */
int agentid_status_list_decode(const json_t *obj, size_t max_bytes,
    struct agentid_status_list **out, struct agentid_error *err);

/* ---- the Status List Token (JWT) ---- */

struct agentid_status_list_claims {
	const char *uri; /* sub: where the list is served; required */
	const char *iss; /* optional */
	int64_t iat; /* required */
	int64_t exp; /* 0: none */
	int64_t ttl; /* seconds; 0: none */
};

/* Signs l as a statuslist+jwt.  *out is freed with agentid_free. */
int agentid_status_list_sign(const struct agentid_status_list *l, const struct agentid_key *key,
    enum agentid_alg alg, const struct agentid_status_list_claims *claims, char **out);

struct agentid_status_list_token {
	struct agentid_status_list *list;
	char *sub;
	char *iss; /* NULL when absent */
	int64_t iat;
	int64_t exp; /* 0 when absent */
	int64_t ttl; /* 0 when absent */
};

/*
 * Verifies a Status List Token: JWS structure, alg in algs (0: all
 * asymmetric), key by kid in keys (without kid, each key that supports the
 * alg is tried), signature, typ "statuslist+jwt" (TYP_MISMATCH), sub equal
 * to uri (CLAIM_MISMATCH; uri NULL skips), iss equal to iss when given
 * (ISS_MISMATCH), iat present (MISSING_CLAIM), exp not passed (EXPIRED),
 * ttl a positive integer when present (BAD_CLAIM), then decodes the list.
 */
int agentid_status_list_verify_jwt(const char *jwt, size_t len, const struct agentid_keyset *keys,
    unsigned algs, const char *uri, const char *iss, time_t now, long leeway, size_t max_bytes,
    struct agentid_status_list_token **out, struct agentid_error *err);
void agentid_status_list_token_free(struct agentid_status_list_token *t);

/* ---- verifier side: the checker ---- */

struct agentid_status_checker_config {
	const struct agentid_keyset *keys; /* keys that sign status lists (required; referenced) */
	const char *issuer; /* when set, lists must carry this iss */
	unsigned algs; /* 0: all asymmetric algorithms */
	long leeway; /* seconds for exp; default AGENTID_DEFAULT_LEEWAY */
	long max_age; /* a list last refreshed longer ago than this is stale; default 3600 */
	long min_refresh; /* the list's ttl is clamped into [min_refresh, max_refresh] */
	long max_refresh; /* to schedule the next refresh; defaults 10 and 300 seconds */
	long retry_seconds; /* after a failed refresh; default 10 */
	int fail_closed; /* stale or unknown list -> STATUS_UNAVAILABLE; default 1 */
	int require_status; /* tokens without status.status_list are rejected; default 0 */
	size_t max_list_bytes; /* decompressed; 0: AGENTID_STATUS_DEFAULT_MAX_LIST_BYTES */
	struct agentid_fetch_opts fetch; /* timeouts, CA file, size limit, allow_http */
};

void agentid_status_checker_config_init(struct agentid_status_checker_config *cfg);

struct agentid_status_checker;

int agentid_status_checker_new(const struct agentid_status_checker_config *cfg,
    struct agentid_status_checker **out, struct agentid_error *err);
/*
 * Serves the list named uri from file (re-read on refresh when it changed)
 * or, with file NULL, from uri itself over HTTPS (ETag / If-None-Match).
 */
int agentid_status_checker_add_source(
    struct agentid_status_checker *chk, const char *uri, const char *file);
/*
 * Refreshes every source that is due at now (every source with force).
 * Does the I/O without holding any lock the check takes, then swaps the new
 * list in.  A failed refresh keeps the previous list (until it goes stale)
 * and schedules a retry.  Returns 0 or the first failure (err says which
 * list and why: EXPIRED, BAD_SIGNATURE, UNKNOWN_KID, TYP_MISMATCH, ...).
 */
int agentid_status_checker_refresh(
    struct agentid_status_checker *chk, time_t now, int force, struct agentid_error *err);
/* When the next refresh is due (the earliest over all sources). */
time_t agentid_status_checker_next_refresh(struct agentid_status_checker *chk);
/* Runs refreshes in a background thread until stop (or free). */
int agentid_status_checker_start(struct agentid_status_checker *chk);
void agentid_status_checker_stop(struct agentid_status_checker *chk);

/*
 * The status of entry idx of list uri at time now, in O(1): 0 when VALID;
 * AGENTID_EREJECTED with REVOKED (status 1, or any value other than 0 and
 * 2), SUSPENDED (2), BAD_CLAIM (idx beyond the list), STATUS_UNAVAILABLE
 * (unknown list, never fetched, or stale past max_age or exp, when
 * fail_closed).  Never blocks on I/O, never allocates.
 */
int agentid_status_check(struct agentid_status_checker *chk, const char *uri, size_t uri_len,
    uint64_t idx, time_t now, struct agentid_error *err);
/* The same for a token's claims (status.status_list {idx, uri}); 0 when the token has no
 * status claim unless require_status (MISSING_CLAIM); BAD_CLAIM when it is malformed. */
int agentid_status_check_claims(struct agentid_status_checker *chk, const json_t *claims,
    time_t now, struct agentid_error *err);
void agentid_status_checker_free(struct agentid_status_checker *chk);

#ifdef __cplusplus
}
#endif
#endif
