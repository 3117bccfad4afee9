/*
 * Policy: an ordered list of rules, first match wins.  A rule matches an
 * (acting agent, subject) pair: the agent by SPIFFE ID pattern, the subject
 * either by SPIFFE ID pattern (an agent acting for itself or for another
 * agent) or, with subject_issuer set, as a user of that external issuer
 * (exact subject or "*").  The rule then bounds what may be granted; the
 * token endpoint enforces those bounds together with the parent token's.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"

static int
compile_patterns(char **l, size_t n, struct agentid_spiffe_patterns **out, const char *what,
    const struct xc_rule *r, char *errbuf, size_t errlen)
{
	struct agentid_error err;

	agentid_error_clear(&err);
	if (n == 0)
		return 0;
	if (agentid_spiffe_patterns_parse((const char *const *)l, n, out, &err) != 0) {
		snprintf(errbuf, errlen, "policy rule at line %d: bad %s pattern: %s%s%s", r->line,
		    what, agentid_reason_text(err.reason), err.detail[0] ? ": " : "", err.detail);
		return -1;
	}
	return 0;
}

int
xc_policy_compile(struct xc_config *c, char *errbuf, size_t errlen)
{
	struct agentid_error err;
	size_t i, j;

	for (i = 0; i < c->n_rules; i++) {
		struct xc_rule *r = &c->rules[i];
		char prefix[64];

		snprintf(prefix, sizeof(prefix), "%s: ", c->path);
		if (compile_patterns(
		        r->agents, r->n_agents, &r->agent_pats, "agent", r, errbuf, errlen)
		    != 0)
			return -1;
		if (r->subject_issuer == NULL
		    && compile_patterns(r->subjects, r->n_subjects, &r->subject_pats, "subject", r,
		           errbuf, errlen)
		        != 0)
			return -1;
		if (compile_patterns(r->delegate_to, r->n_delegate_to, &r->delegate_pats,
		        "delegate_to", r, errbuf, errlen)
		    != 0)
			return -1;
		if (compile_patterns(
		        r->clients, r->n_clients, &r->client_pats, "clients", r, errbuf, errlen)
		    != 0)
			return -1;
		if (r->subject_issuer != NULL) {
			for (j = 0; j < c->n_ext; j++)
				if (strcmp(c->ext[j].issuer, r->subject_issuer) == 0)
					break;
			if (j == c->n_ext) {
				snprintf(errbuf, errlen,
				    "%s: policy rule at line %d: subject_issuer '%s' is not one of "
				    "the external_issuers",
				    c->path, r->line, r->subject_issuer);
				return -1;
			}
		}
		if (agentid_scopes_new(&r->scope_set) != 0) {
			snprintf(errbuf, errlen, "out of memory");
			return -1;
		}
		for (j = 0; j < r->n_scopes; j++) {
			agentid_error_clear(&err);
			if (agentid_scopes_add(r->scope_set, r->scopes[j], strlen(r->scopes[j]))
			    != 0) {
				snprintf(errbuf, errlen,
				    "%s: policy rule at line %d: '%s' is not a valid scope",
				    c->path, r->line, r->scopes[j]);
				return -1;
			}
		}
	}
	return 0;
}

void
xc_policy_free(struct xc_config *c)
{
	size_t i;

	for (i = 0; i < c->n_rules; i++) {
		struct xc_rule *r = &c->rules[i];

		agentid_spiffe_patterns_free(r->agent_pats);
		agentid_spiffe_patterns_free(r->subject_pats);
		agentid_spiffe_patterns_free(r->delegate_pats);
		agentid_spiffe_patterns_free(r->client_pats);
		agentid_scopes_free(r->scope_set);
		r->agent_pats = r->subject_pats = r->delegate_pats = r->client_pats = NULL;
		r->scope_set = NULL;
	}
}

static int
external_subject_match(const struct xc_rule *r, const char *subject)
{
	size_t i;

	for (i = 0; i < r->n_subjects; i++)
		if (strcmp(r->subjects[i], "*") == 0 || strcmp(r->subjects[i], subject) == 0)
			return 1;
	return 0;
}

const struct xc_rule *
xc_policy_match(
    const struct xc_config *c, const char *agent, const char *subject, const char *ext_issuer)
{
	size_t i;

	for (i = 0; i < c->n_rules; i++) {
		const struct xc_rule *r = &c->rules[i];

		if (!agentid_spiffe_patterns_match(r->agent_pats, agent, strlen(agent)))
			continue;
		if (ext_issuer != NULL) {
			if (r->subject_issuer == NULL || strcmp(r->subject_issuer, ext_issuer) != 0)
				continue;
			if (!external_subject_match(r, subject))
				continue;
		} else {
			if (r->subject_issuer != NULL)
				continue;
			if (!agentid_spiffe_patterns_match(
			        r->subject_pats, subject, strlen(subject)))
				continue;
		}
		return r;
	}
	return NULL;
}
