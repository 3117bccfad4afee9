/*
 * agentid: token verification -- the verifier, verified tokens, delegation
 * chains and scopes.
 *
 * A verifier is built once from a configuration and is then immutable: it
 * may be used from many threads at once without locks.  Verification runs
 * in a fixed order and stops at the first failure:
 *
 *   size -> structure -> alg allowlist -> forbidden headers -> key by kid
 *   (within the right trust domain) -> signature -> exp/nbf/iat -> iss ->
 *   aud -> typ -> required claims -> profile rules (SPIFFE sub, act chain)
 *   -> agent/subject patterns -> scopes -> required claim values
 *
 * Binding (DPoP / mTLS) and revocation are checked by the caller after a
 * successful verify, with the token's cnf and status claims.
 */
#ifndef AGENTID_VERIFY_H
#define AGENTID_VERIFY_H

#include <agentid/common.h>
#include <agentid/jose.h>
#include <agentid/spiffe.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- scopes (RFC 6749 section 3.3) ---- */

/* A set of scope tokens, deduplicated, in first-seen order. */
struct agentid_scopes;

/*
 * Parses a space-delimited scope string.  Each token is one or more of
 * %x21 / %x23-5B / %x5D-7E; tokens are separated by exactly one space, with
 * no leading or trailing space.  An empty string is an empty set.
 * Rejections: BAD_CLAIM (syntax), TOO_LARGE (more than 256 distinct scopes
 * or 4096 bytes).  agentid_scopes_add() ignores a duplicate and returns
 * AGENTID_EINVAL for a malformed token, AGENTID_ERANGE past the limits.
 */
int agentid_scopes_parse(
    const char *s, size_t len, struct agentid_scopes **out, struct agentid_error *err);
int agentid_scopes_new(struct agentid_scopes **out);
int agentid_scopes_add(struct agentid_scopes *s, const char *scope, size_t len);
size_t agentid_scopes_count(const struct agentid_scopes *s);
const char *agentid_scopes_get(const struct agentid_scopes *s, size_t i);
int agentid_scopes_has(const struct agentid_scopes *s, const char *scope, size_t len);
/* 1 when every one of req[0..n) is present (all-of); 1 for n == 0. */
int agentid_scopes_has_all(const struct agentid_scopes *s, const char *const *req, size_t n);
/* 1 when at least one of req[0..n) is present (any-of); 1 for n == 0. */
int agentid_scopes_has_any(const struct agentid_scopes *s, const char *const *req, size_t n);
/* 1 when a is a subset of b (every scope of a is in b). */
int agentid_scopes_subset(const struct agentid_scopes *a, const struct agentid_scopes *b);
/* New set: the scopes of a that are also in b, in a's order. */
int agentid_scopes_intersect(
    const struct agentid_scopes *a, const struct agentid_scopes *b, struct agentid_scopes **out);
/* "a b c"; free with agentid_free(). */
int agentid_scopes_to_string(const struct agentid_scopes *s, char **out);
void agentid_scopes_free(struct agentid_scopes *s);

/* ---- delegation chains (RFC 8693 act) ---- */

struct agentid_chain_rules {
	int max_depth; /* maximum number of act hops; 0 forbids act */
	int require_spiffe; /* every hop's sub must be a valid SPIFFE ID */
	const struct agentid_trust *trust; /* when set, every hop's trust domain must be in it */
	const struct agentid_spiffe_patterns *allow_actors; /* when set, every hop must match */
};

/* The chain of actors: index 0 is the current actor (outermost act). */
struct agentid_chain;

/*
 * Parses claims["act"] (absent -> empty chain) into an ordered chain.
 * Each act must be an object with a string "sub"; nested "act" continues
 * the chain.  Rejections: CHAIN_INVALID, CHAIN_TOO_DEEP, CHAIN_CYCLE (a
 * sub appears twice), BAD_SPIFFE_ID, UNTRUSTED_DOMAIN, AGENT_NOT_ALLOWED.
 */
int agentid_chain_parse(const json_t *claims, const struct agentid_chain_rules *rules,
    struct agentid_chain **out, struct agentid_error *err);
size_t agentid_chain_len(const struct agentid_chain *c);
const char *agentid_chain_get(const struct agentid_chain *c, size_t i);
/* 1 when id appears in the chain. */
int agentid_chain_contains(const struct agentid_chain *c, const char *id, size_t len);
/* "a,b,c" (current actor first); free with agentid_free(). */
int agentid_chain_to_string(const struct agentid_chain *c, const char *sep, char **out);
/* JSON array of the hops, current actor first. */
int agentid_chain_to_json(const struct agentid_chain *c, json_t **out);
void agentid_chain_free(struct agentid_chain *c);

/* ---- verifier ---- */

enum agentid_profile {
	AGENTID_PROFILE_ANY = 0, /* typ "at+jwt" -> access rules, otherwise jwt-svid rules */
	AGENTID_PROFILE_JWT_SVID, /* SPIFFE JWT-SVID */
	AGENTID_PROFILE_ACCESS /* RFC 9068 access token issued by agentid-exchange */
};

/* "jwt-svid", "access", "any" */
int agentid_profile_from_name(const char *name, enum agentid_profile *out);
const char *agentid_profile_name(enum agentid_profile p);

struct agentid_verifier_config {
	enum agentid_profile profile;
	struct agentid_trust *trust; /* required; the verifier takes a reference */
	const char *const *issuers; /* iss must equal one (access: required); when set,
	                             * tokens of both profiles must carry iss */
	size_t n_issuers;
	const char *const *audiences; /* aud must contain one of these (required) */
	size_t n_audiences;
	unsigned algs; /* AGENTID_ALG_BIT mask; 0 = profile default */
	long leeway; /* seconds for exp/nbf/iat */
	struct agentid_limits limits;
	const char *const *required_scopes; /* all-of, or any-of with scope_any */
	size_t n_required_scopes;
	int scope_any;
	int max_chain_depth; /* act hops */
	int chain_require_spiffe; /* default 1 */
	int chain_require_trusted; /* each hop's trust domain in trust; default 0 */
	const char *const *allow_actors; /* every hop of act must match (patterns) */
	size_t n_allow_actors;
	const char *const *allow_agents; /* the current actor must match (patterns) */
	size_t n_allow_agents;
	const char *const *allow_subjects; /* sub must match: SPIFFE patterns; an entry not
	                                    * starting with "spiffe:" is an exact literal for
	                                    * non-SPIFFE subjects, which also match "*" */
	size_t n_allow_subjects;
	const char *const *required_claims; /* must be present */
	size_t n_required_claims;
	const char *const *claim_names; /* claim_names[i] must equal claim_values[i] */
	const char *const *claim_values; /* (string claims; or membership in an array) */
	size_t n_claim_values;
};

/* Defaults: profile ANY, algs by profile, leeway AGENTID_DEFAULT_LEEWAY, default limits,
 * max_chain_depth AGENTID_DEFAULT_MAX_CHAIN_DEPTH, chain_require_spiffe 1. */
void agentid_verifier_config_init(struct agentid_verifier_config *cfg);

struct agentid_verifier;

/*
 * Copies everything out of cfg; compiles patterns.  Errors: AGENTID_EINVAL
 * with err detail and reason MALFORMED (BAD_SPIFFE_ID for a bad pattern):
 * trust and audiences are required, issuers too for the access profile,
 * and algs must be a subset of the profile's algorithms (never EdDSA for
 * JWT-SVIDs).
 */
int agentid_verifier_new(const struct agentid_verifier_config *cfg, struct agentid_verifier **out,
    struct agentid_error *err);
void agentid_verifier_free(struct agentid_verifier *v);

struct agentid_token;

/*
 * Verifies token at time now.  0 and *out on success; AGENTID_EREJECTED
 * with err->reason on rejection; AGENTID_ENOMEM etc. on failure (reason
 * INTERNAL).  Never logs the token.  out may be NULL.
 *
 * Details of the order: the profile (for PROFILE_ANY: typ "at+jwt" or
 * "application/at+jwt" -> access, else jwt-svid) is decided from the
 * header before the algorithm check; a token without kid is UNKNOWN_KID;
 * a JWT-SVID's sub (not yet verified) selects the trust domain whose
 * bundle holds the key (BAD_SPIFFE_ID, UNTRUSTED_DOMAIN), access-token
 * keys are found with agentid_trust_find_jwt_key(td NULL).  exp, nbf and
 * iat are JSON numbers; a token is expired when now >= exp + leeway;
 * fractional times round towards rejection.
 */
int agentid_verify(const struct agentid_verifier *v, const char *token, size_t len, time_t now,
    struct agentid_token **out, struct agentid_error *err);
/* The same, with trust (a newer key set) in place of the verifier's own. */
int agentid_verify_with_trust(const struct agentid_verifier *v, const struct agentid_trust *trust,
    const char *token, size_t len, time_t now, struct agentid_token **out,
    struct agentid_error *err);
/*
 * The same again (trust may be NULL), and when the token is authentic and in
 * force but a rule of authorization refuses it (allow_agents,
 * allow_subjects, required_scopes, claim values: AGENT_NOT_ALLOWED,
 * SUBJECT_NOT_ALLOWED, INSUFFICIENT_SCOPE, CLAIM_MISMATCH), the call still
 * returns AGENTID_EREJECTED with that reason and sets *refused (when
 * refused is not NULL) to the token, so that the caller can record who was
 * refused; the caller frees it with agentid_token_free.  In every other
 * case *refused is NULL; *out and *refused are never both set.
 */
int agentid_verify_ex(const struct agentid_verifier *v, const struct agentid_trust *trust,
    const char *token, size_t len, time_t now, struct agentid_token **out,
    struct agentid_token **refused, struct agentid_error *err);
/*
 * The lifetime rules agentid_verify applies, alone, for a caller that has
 * the claims of a token whose signature it checked itself: exp (when
 * present: a missing exp is not an error here), nbf and iat against now
 * with leeway seconds.  0, or AGENTID_EREJECTED with reason EXPIRED,
 * NOT_YET_VALID, IAT_IN_FUTURE or BAD_CLAIM (not a NumericDate).
 */
int agentid_claims_check_lifetime(
    const json_t *claims, time_t now, long leeway, struct agentid_error *err);

/* ---- verified tokens ---- */

enum agentid_profile agentid_token_profile(const struct agentid_token *t); /* JWT_SVID or ACCESS */
const json_t *agentid_token_header(const struct agentid_token *t);
const json_t *agentid_token_claims(const struct agentid_token *t);
enum agentid_alg agentid_token_alg(const struct agentid_token *t);
const char *agentid_token_kid(const struct agentid_token *t); /* may be NULL */
const char *agentid_token_claim_string(const struct agentid_token *t, const char *name);
const char *agentid_token_iss(const struct agentid_token *t); /* may be NULL */
const char *agentid_token_sub(const struct agentid_token *t);
const char *agentid_token_jti(const struct agentid_token *t); /* may be NULL */
const char *agentid_token_client_id(const struct agentid_token *t); /* may be NULL */
/* The acting agent: chain[0] when act is present, otherwise sub. */
const char *agentid_token_agent(const struct agentid_token *t);
/* Trust domain of the acting agent's SPIFFE ID (NUL-terminated copy), or NULL. */
const char *agentid_token_trust_domain(const struct agentid_token *t);
/* "task" claim (string) or NULL. */
const char *agentid_token_task(const struct agentid_token *t);
int64_t agentid_token_exp(const struct agentid_token *t);
int64_t agentid_token_iat(const struct agentid_token *t); /* -1 when absent */
int64_t agentid_token_nbf(const struct agentid_token *t); /* -1 when absent */
const struct agentid_chain *agentid_token_chain(const struct agentid_token *t);
const struct agentid_scopes *agentid_token_scopes(const struct agentid_token *t);
/* Compact serialization of the token header.payload part is not kept; the key that verified it is:
 */
const struct agentid_key *agentid_token_key(const struct agentid_token *t);
void agentid_token_free(struct agentid_token *t);

#ifdef __cplusplus
}
#endif
#endif
