/*
 * Delegation chains: the nested RFC 8693 "act" claim flattened into an
 * ordered list of actors, current actor first.
 *
 * RFC 8693 treats nested act claims as informational only.  This project
 * checks every hop instead (a valid SPIFFE ID from a trusted trust domain,
 * allowed by policy, bounded depth, nobody twice), because a delegated
 * token is only as trustworthy as the weakest agent that handled it.
 */
#include "config.h"

#include <string.h>

#include <agentid/verify.h>

#include "internal.h"

struct chain_hop {
	const char *id; /* NUL-terminated copy */
	size_t len;
	int spiffe; /* 1 a SPIFFE ID, 0 not one, -1 not looked at (no rule needed it) */
	size_t td_off, td_len; /* its trust domain, when spiffe is 1 */
};

/*
 * One allocation holds the chain, its hops and the copies of their IDs,
 * sized by a first walk over the act claims; agentid_chain_free releases it
 * as one.
 */
struct agentid_chain {
	struct chain_hop *hops;
	size_t n;
};

AGENTID_EXPORT void
agentid_chain_free(struct agentid_chain *c)
{
	agentid_free(c);
}

/*
 * Counts the act objects so that everything is allocated at once, and adds
 * up the lengths of their string subs; stops past limit.
 */
static size_t
chain_count(const json_t *act, size_t limit, size_t *bytes)
{
	const json_t *sub;
	size_t n = 0;

	*bytes = 0;
	while (act != NULL && n <= limit) {
		n++;
		if (!json_is_object(act))
			break;
		if ((sub = json_object_get(act, "sub")) != NULL && json_is_string(sub))
			*bytes += json_string_length(sub) + 1;
		act = json_object_get(act, "act");
	}
	return n;
}

/* Checks one hop against the rules; the chain so far is c->hops[0..c->n). */
static int
chain_check_hop(struct agentid_chain *c, const char *id, size_t len, size_t depth,
    const struct agentid_chain_rules *rules, struct agentid_error *err)
{
	struct chain_hop *hop = &c->hops[c->n];
	struct agentid_spiffe_id sid;
	int is_spiffe = 0, r;
	size_t i;

	for (i = 0; i < c->n; i++)
		if (c->hops[i].len == len && memcmp(c->hops[i].id, id, len) == 0)
			return agentid_error_set(err, AGENTID_R_CHAIN_CYCLE,
			    "act hop %zu repeats hop %zu", depth, i + 1);
	if (rules->require_spiffe || rules->trust != NULL || rules->allow_actors != NULL) {
		r = agentid_spiffe_id_parse(id, len, &sid, NULL);
		if (r == 0)
			is_spiffe = 1;
		else if (r != AGENTID_EREJECTED)
			return r;
		/* Kept so that the verifier need not parse the agent's ID again. */
		hop->spiffe = is_spiffe;
		if (is_spiffe) {
			hop->td_off = (size_t)(sid.td - id);
			hop->td_len = sid.td_len;
		}
	}
	if ((rules->require_spiffe || rules->trust != NULL) && !is_spiffe)
		return agentid_error_set(
		    err, AGENTID_R_BAD_SPIFFE_ID, "act hop %zu: sub is not a SPIFFE ID", depth);
	if (rules->trust != NULL && agentid_trust_find(rules->trust, sid.td, sid.td_len) == NULL)
		return agentid_error_set(err, AGENTID_R_UNTRUSTED_DOMAIN,
		    "act hop %zu: trust domain is not trusted", depth);
	/* Patterns only describe SPIFFE IDs, so an actor of another form never matches. */
	if (rules->allow_actors != NULL
	    && (!is_spiffe || !agentid_spiffe_patterns_match(rules->allow_actors, id, len)))
		return agentid_error_set(
		    err, AGENTID_R_AGENT_NOT_ALLOWED, "act hop %zu is not an allowed actor", depth);
	return 0;
}

AGENTID_EXPORT int
agentid_chain_parse(const json_t *claims, const struct agentid_chain_rules *rules,
    struct agentid_chain **out, struct agentid_error *err)
{
	struct agentid_chain *c = NULL;
	const json_t *act, *sub;
	const char *id;
	char *ids;
	size_t n, len, max, bytes;
	int r;

	if (out == NULL || rules == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	if (claims != NULL && !json_is_object(claims))
		return agentid_error_set(err, AGENTID_R_MALFORMED, "claims are not a JSON object");
	if (rules->max_depth < 0)
		return AGENTID_EINVAL;
	max = (size_t)rules->max_depth;
	act = claims != NULL ? json_object_get(claims, "act") : NULL;
	n = chain_count(act, max, &bytes);
	if ((c = agentid_calloc(1, sizeof(*c) + n * sizeof(*c->hops) + bytes)) == NULL)
		return AGENTID_ENOMEM;
	c->hops = (struct chain_hop *)(c + 1);
	ids = (char *)(c->hops + n);
	while (act != NULL) {
		if (!json_is_object(act)) {
			r = agentid_error_set(err, AGENTID_R_CHAIN_INVALID,
			    "act hop %zu is not a JSON object", c->n + 1);
			goto out;
		}
		sub = json_object_get(act, "sub");
		if (sub == NULL || !json_is_string(sub)) {
			r = agentid_error_set(err, AGENTID_R_CHAIN_INVALID,
			    "act hop %zu has no string sub", c->n + 1);
			goto out;
		}
		id = json_string_value(sub);
		len = json_string_length(sub);
		if (len == 0 || memchr(id, '\0', len) != NULL) {
			r = agentid_error_set(err, AGENTID_R_CHAIN_INVALID,
			    "act hop %zu has an empty or invalid sub", c->n + 1);
			goto out;
		}
		if (c->n >= max) {
			r = agentid_error_set(err, AGENTID_R_CHAIN_TOO_DEEP,
			    "delegation chain is deeper than %d", rules->max_depth);
			goto out;
		}
		c->hops[c->n].spiffe = -1;
		if ((r = chain_check_hop(c, id, len, c->n + 1, rules, err)) != 0)
			goto out;
		/* The first walk counted this sub, so its copy fits. */
		memcpy(ids, id, len);
		ids[len] = '\0';
		c->hops[c->n].id = ids;
		c->hops[c->n].len = len;
		ids += len + 1;
		c->n++;
		act = json_object_get(act, "act");
	}
	*out = c;
	c = NULL;
	r = 0;
out:
	agentid_chain_free(c);
	return r;
}

AGENTID_EXPORT size_t
agentid_chain_len(const struct agentid_chain *c)
{
	return c != NULL ? c->n : 0;
}

AGENTID_EXPORT const char *
agentid_chain_get(const struct agentid_chain *c, size_t i)
{
	if (c == NULL || i >= c->n)
		return NULL;
	return c->hops[i].id;
}

int
agentid_chain_hop_td(const struct agentid_chain *c, size_t i, const char **td, size_t *td_len)
{
	*td = NULL;
	*td_len = 0;
	if (c == NULL || i >= c->n)
		return -1;
	if (c->hops[i].spiffe == 1) {
		*td = c->hops[i].id + c->hops[i].td_off;
		*td_len = c->hops[i].td_len;
	}
	return c->hops[i].spiffe;
}

AGENTID_EXPORT int
agentid_chain_contains(const struct agentid_chain *c, const char *id, size_t len)
{
	size_t i;

	if (c == NULL || id == NULL)
		return 0;
	for (i = 0; i < c->n; i++)
		if (c->hops[i].len == len && memcmp(c->hops[i].id, id, len) == 0)
			return 1;
	return 0;
}

AGENTID_EXPORT int
agentid_chain_to_string(const struct agentid_chain *c, const char *sep, char **out)
{
	struct agentid_buf b;
	size_t i;
	int r;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	if (sep == NULL)
		sep = ",";
	agentid_buf_init(&b, 0);
	for (i = 0; c != NULL && i < c->n; i++) {
		if ((i != 0 && (r = agentid_buf_append_str(&b, sep)) != 0)
		    || (r = agentid_buf_append(&b, c->hops[i].id, c->hops[i].len)) != 0) {
			agentid_buf_free(&b);
			return r;
		}
	}
	/* An empty append leaves a terminated buffer even when nothing was added. */
	if ((r = agentid_buf_append(&b, "", 0)) != 0) {
		agentid_buf_free(&b);
		return r;
	}
	if ((*out = agentid_buf_steal(&b, NULL)) == NULL)
		return AGENTID_ENOMEM;
	return 0;
}

AGENTID_EXPORT int
agentid_chain_to_json(const struct agentid_chain *c, json_t **out)
{
	json_t *a, *s;
	size_t i;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	if ((a = json_array()) == NULL)
		return AGENTID_ENOMEM;
	for (i = 0; c != NULL && i < c->n; i++) {
		if ((s = json_stringn(c->hops[i].id, c->hops[i].len)) == NULL
		    || json_array_append_new(a, s) != 0) {
			json_decref(a);
			return AGENTID_ENOMEM;
		}
	}
	*out = a;
	return 0;
}
