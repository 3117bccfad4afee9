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
};

struct agentid_chain {
	struct chain_hop *hops;
	size_t n;
};

AGENTID_EXPORT void
agentid_chain_free(struct agentid_chain *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		agentid_free((void *)c->hops[i].id);
	agentid_free(c->hops);
	agentid_free(c);
}

/* Counts the act objects so the hop array is allocated once; stops past limit. */
static size_t
chain_count(const json_t *act, size_t limit)
{
	size_t n = 0;

	while (act != NULL && n <= limit) {
		n++;
		act = json_is_object(act) ? json_object_get(act, "act") : NULL;
	}
	return n;
}

/* Checks one hop against the rules; the chain so far is c->hops[0..c->n). */
static int
chain_check_hop(const struct agentid_chain *c, const char *id, size_t len, size_t depth,
    const struct agentid_chain_rules *rules, struct agentid_error *err)
{
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
	size_t n, len, max;
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
	n = chain_count(act, max);
	if ((c = agentid_calloc(1, sizeof(*c))) == NULL)
		return AGENTID_ENOMEM;
	if (n != 0 && (c->hops = agentid_calloc(n, sizeof(*c->hops))) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
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
		if ((r = chain_check_hop(c, id, len, c->n + 1, rules, err)) != 0)
			goto out;
		if ((c->hops[c->n].id = agentid_strndup(id, len)) == NULL) {
			r = AGENTID_ENOMEM;
			goto out;
		}
		c->hops[c->n].len = len;
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
