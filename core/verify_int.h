/*
 * Private parts of the verifier shared by verifier.c, claims.c and token.c.
 */
#ifndef AGENTID_VERIFY_INT_H
#define AGENTID_VERIFY_INT_H

#include <agentid/verify.h>

/*
 * A verified token.  The string members point into jws->header or
 * jws->payload (jansson keeps string values in place), so they live exactly
 * as long as the token; trust_domain is the only copy.
 */
struct agentid_token {
	enum agentid_profile profile; /* JWT_SVID or ACCESS */
	struct agentid_jws *jws;
	struct agentid_key *key; /* a reference to the key that verified it */
	struct agentid_chain *chain;
	struct agentid_scopes *scopes;
	const char *iss;
	const char *sub;
	const char *jti;
	const char *client_id;
	const char *task;
	const char *agent; /* chain[0] or sub */
	char *trust_domain; /* of agent, when it is a SPIFFE ID */
	int64_t exp;
	int64_t iat; /* -1 when absent */
	int64_t nbf; /* -1 when absent */
};

/* A list of configured strings with their lengths. */
struct agentid_strv {
	char **v;
	size_t *len;
	size_t n;
};

struct agentid_verifier {
	enum agentid_profile profile;
	struct agentid_trust *trust;
	struct agentid_strv issuers;
	struct agentid_strv audiences;
	unsigned algs;
	int64_t leeway;
	struct agentid_limits limits;
	struct agentid_strv required_scopes;
	int scope_any;
	int max_chain_depth;
	int chain_require_spiffe;
	int chain_require_trusted;
	struct agentid_spiffe_patterns *allow_actors;
	struct agentid_spiffe_patterns *allow_agents;
	struct agentid_spiffe_patterns *allow_subjects; /* the entries that are SPIFFE patterns */
	struct agentid_strv subjects; /* every allow_subjects entry, verbatim */
	int subjects_any; /* "*" was listed */
	struct agentid_strv required_claims;
	struct agentid_strv claim_names;
	struct agentid_strv claim_values;
};

/* State of one verification; lives on the caller's stack. */
struct agentid_vctx {
	const struct agentid_verifier *v;
	const struct agentid_trust *trust;
	int64_t now;
	enum agentid_profile profile;
	struct agentid_jws *jws;
	const json_t *claims;
	const struct agentid_key *key;
	const char *sub;
	size_t sub_len;
	struct agentid_spiffe_id sub_id;
	int sub_is_spiffe;
	const char *iss;
	const char *jti;
	const char *client_id;
	int64_t exp, iat, nbf;
	struct agentid_chain *chain;
	struct agentid_scopes *scopes;
};

/* 1 when p[0..len) equals one of the strings of s. */
int agentid_strv_find(const struct agentid_strv *s, const char *p, size_t len);
/* typ "at+jwt" or "application/at+jwt" (RFC 9068 section 4), case-insensitively. */
int agentid_typ_is_access(const char *typ);
/* A claim that must be a string when present: *s NULL when absent, BAD_CLAIM otherwise. */
int agentid_claim_string(
    const json_t *claims, const char *name, const char **s, size_t *len, struct agentid_error *err);

/* The claim steps of agentid_verify(), in their order.  0 or AGENTID_EREJECTED with err set. */
int agentid_claims_check_time(struct agentid_vctx *c, struct agentid_error *err);
int agentid_claims_check_iss(struct agentid_vctx *c, struct agentid_error *err);
int agentid_claims_check_aud(struct agentid_vctx *c, struct agentid_error *err);
int agentid_claims_check_typ(struct agentid_vctx *c, struct agentid_error *err);
int agentid_claims_check_required(struct agentid_vctx *c, struct agentid_error *err);
/* Sets c->scopes from the scope claim (an empty set without one). */
int agentid_claims_parse_scopes(struct agentid_vctx *c, struct agentid_error *err);
int agentid_claims_check_scopes(struct agentid_vctx *c, struct agentid_error *err);
int agentid_claims_check_values(struct agentid_vctx *c, struct agentid_error *err);

#endif
