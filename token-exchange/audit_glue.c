/*
 * The server's audit records (exchange.granted, exchange.denied,
 * token.revoked) written through libagentid's hash-chained audit writer.
 * Without an audit file in the configuration, records are dropped: the
 * ledger still holds every issued token.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"

static struct agentid_audit *audit;

int
xc_audit_open(const struct xc_config *c, char *errbuf, size_t errlen)
{
	struct agentid_audit_config ac;
	struct agentid_error err;
	int r;

	if (c->audit_file == NULL)
		return 0;
	agentid_audit_config_init(&ac);
	ac.path = c->audit_file;
	ac.component = "exchange";
	ac.signing_key_path = c->audit_key;
	agentid_error_clear(&err);
	if ((r = agentid_audit_open(&ac, &audit, &err)) != 0) {
		snprintf(errbuf, errlen, "%s: cannot open audit log: %s%s%s", c->audit_file,
		    agentid_strerror(r), err.detail[0] ? ": " : "", err.detail);
		return -1;
	}
	return 0;
}

void
xc_audit_record(const struct xc_audit_event *ev)
{
	struct agentid_audit_event ae;
	struct agentid_chain_rules rules;
	struct agentid_chain *chain = NULL;
	struct agentid_error err;
	const char *aud[16];
	json_t *wrap = NULL;
	size_t i;

	if (audit == NULL)
		return;
	memset(&ae, 0, sizeof(ae));
	ae.event = ev->event;
	ae.agent = ev->agent;
	ae.subject = ev->subject;
	ae.task = ev->task;
	ae.jti = ev->jti;
	ae.parent_jti = ev->parent_jti;
	ae.iss = ev->iss;
	ae.scope = ev->scope;
	ae.scope_requested = ev->scope_requested;
	ae.decision = ev->decision;
	ae.reason = ev->reason;
	ae.client = ev->client;
	if (ev->act != NULL && (wrap = json_pack("{s:O}", "act", ev->act)) != NULL) {
		memset(&rules, 0, sizeof(rules));
		rules.max_depth = 64;
		agentid_error_clear(&err);
		if (agentid_chain_parse(wrap, &rules, &chain, &err) == 0)
			ae.chain = chain;
	}
	if (json_is_array(ev->aud)) {
		for (i = 0; i < json_array_size(ev->aud) && i < 16; i++)
			aud[i] = json_string_value(json_array_get(ev->aud, i));
		ae.aud = aud;
		ae.n_aud = i;
	}
	if (agentid_audit_append(audit, &ae) != 0)
		xc_log(AGENTID_LOG_ERROR, "audit: cannot append %s record", ev->event);
	agentid_chain_free(chain);
	json_decref(wrap);
}

void
xc_audit_tick(void)
{
	if (audit != NULL)
		agentid_audit_tick(audit);
}

void
xc_audit_close(void)
{
	agentid_audit_close(audit);
	audit = NULL;
}
