/*
 * Revocation: POST /revoke (RFC 7009), POST /introspect (RFC 7662), the
 * admin API (POST /admin/revoke, mTLS with an admin SPIFFE ID) and the
 * signed status lists at GET /statuslists/{n}.
 *
 * The ledger in the store is the truth; status lists are views of it.  A
 * list is rebuilt when the store's revocation epoch moved (any node's
 * revocation bumps it) or when the signed copy is older than its ttl, so a
 * revocation on one node shows in every node's lists at the next request.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "exchange.h"

#define LIST_CACHE 16
#define LIST_MAX_NUMBER 1000000
#define LIST_EXP 3600

struct list_cache {
	int64_t list;
	int64_t epoch;
	time_t built;
	char *jwt;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list_cache cache[LIST_CACHE];
static unsigned cache_gen; /* runtime generation the cache was built with (keys may change) */

int
xc_status_uri(const struct xc_runtime *rt, int64_t list, char **out)
{
	size_t n = strlen(rt->cfg->issuer) + 40;

	if ((*out = malloc(n)) == NULL)
		return AGENTID_ENOMEM;
	snprintf(*out, n, "%s/statuslists/%lld", rt->cfg->issuer, (long long)list);
	return 0;
}

/* Builds and signs list number `list` from the ledger (libagentid encodes and signs); *out to
 * free(). */
static int
build_list(struct xc_req *r, int64_t list, char **out)
{
	const struct xc_config *c = r->rt->cfg;
	struct agentid_status_list *l = NULL;
	struct agentid_status_list_claims cl;
	unsigned char *bits = NULL;
	char *uri = NULL, *jwt = NULL;
	int64_t i, size = c->status_list_size;
	int rc = -1;

	*out = NULL;
	if ((bits = calloc((size_t)(size + 7) / 8, 1)) == NULL
	    || xc_store_status_bits(r->store, list * size, size, bits) != 0
	    || agentid_status_list_new((size_t)size, 1, &l) != 0
	    || xc_status_uri(r->rt, list, &uri) != 0)
		goto out;
	for (i = 0; i < size; i++)
		if ((bits[i / 8] & (1u << (i % 8))) != 0
		    && agentid_status_list_set(l, (size_t)i, AGENTID_STATUS_INVALID) != 0)
			goto out;
	memset(&cl, 0, sizeof(cl));
	cl.uri = uri;
	cl.iss = c->issuer;
	cl.iat = (int64_t)time(NULL);
	cl.exp = cl.iat + LIST_EXP;
	cl.ttl = c->status_list_ttl;
	if (agentid_status_list_sign(l, r->rt->issuer->current, r->rt->issuer->alg, &cl, &jwt) != 0)
		goto out;
	if ((*out = strdup(jwt)) == NULL)
		goto out;
	rc = 0;
out:
	agentid_free(jwt);
	agentid_status_list_free(l);
	free(bits);
	free(uri);
	return rc;
}

void
xc_handle_statuslist(struct xc_req *r, const char *n)
{
	struct list_cache *slot = NULL, *oldest = NULL;
	char *end, *jwt = NULL, ttl[64];
	long long list;
	int64_t epoch = 0;
	time_t now = time(NULL);
	size_t i;

	if (evhttp_request_get_command(r->req) != EVHTTP_REQ_GET) {
		xc_send_plain_error(r, 405, "method_not_allowed");
		return;
	}
	list = strtoll(n, &end, 10);
	if (n[0] < '0' || n[0] > '9' || *end != '\0' || (n[0] == '0' && n[1] != '\0') || list < 0
	    || list > LIST_MAX_NUMBER) {
		xc_send_plain_error(r, 404, "not_found");
		return;
	}
	if (xc_store_revocation_epoch(r->store, &epoch) != 0) {
		xc_send_plain_error(r, 503, "store unavailable");
		return;
	}
	pthread_mutex_lock(&cache_lock);
	if (cache_gen != r->rt->generation) {
		for (i = 0; i < LIST_CACHE; i++) {
			free(cache[i].jwt);
			memset(&cache[i], 0, sizeof(cache[i]));
		}
		cache_gen = r->rt->generation;
	}
	for (i = 0; i < LIST_CACHE; i++) {
		if (cache[i].jwt != NULL && cache[i].list == list) {
			slot = &cache[i];
			break;
		}
		if (oldest == NULL || cache[i].built < oldest->built)
			oldest = &cache[i];
	}
	if (slot == NULL || slot->epoch != epoch
	    || now - slot->built >= r->rt->cfg->status_list_ttl) {
		if (slot == NULL)
			slot = oldest;
		free(slot->jwt);
		memset(slot, 0, sizeof(*slot));
		if (build_list(r, list, &slot->jwt) == 0) {
			slot->list = list;
			slot->epoch = epoch;
			slot->built = now;
		}
	}
	if (slot->jwt != NULL)
		jwt = strdup(slot->jwt);
	pthread_mutex_unlock(&cache_lock);
	if (jwt == NULL) {
		xc_send_plain_error(r, 503, "status list unavailable");
		return;
	}
	/* Shared caches may keep it as long as verifiers would. */
	snprintf(ttl, sizeof(ttl), "max-age=%ld", r->rt->cfg->status_list_ttl);
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Cache-Control", ttl);
	xc_send_json_text(r, 200, jwt, "application/statuslist+jwt", 1);
	free(jwt);
}

static void
audit_revocation(const char *by, const char *value, long n, const char *client)
{
	struct xc_audit_event ev = {
		.event = "token.revoked",
		.decision = "revoke",
		.reason = by,
		.client = client,
	};

	if (strcmp(by, "jti") == 0)
		ev.jti = value;
	else if (strcmp(by, "agent") == 0)
		ev.agent = value;
	else if (strcmp(by, "subject") == 0)
		ev.subject = value;
	else
		ev.task = value;
	xc_audit_record(&ev);
	xc_metrics_revoked(n);
	xc_log(AGENTID_LOG_INFO, "revoked by %s=%s: %ld token(s) (client %s)", by, value, n,
	    client != NULL ? client : "-");
}

static int
is_admin(const struct xc_req *r, const char *id)
{
	return id != NULL && r->rt->admin_pats != NULL
	    && agentid_spiffe_patterns_match(r->rt->admin_pats, id, strlen(id));
}

void
xc_handle_revoke(struct xc_req *r)
{
	struct xc_form *f = NULL;
	struct xc_client client;
	struct agentid_error err;
	json_t *claims = NULL;
	const char *tok, *cid, *jti;
	const json_t *act;
	long n = 0;

	memset(&client, 0, sizeof(client));
	if (xc_read_form(r, &f) != 0)
		return;
	if (xc_client_authenticate(r, f, &client) != 0)
		goto out;
	if ((tok = xc_form_get(f, "token")) == NULL) {
		xc_send_oauth_error(r, 400, "invalid_request", "token is required");
		goto out;
	}
	agentid_error_clear(&err);
	/* RFC 7009 section 2.2: an invalid or unknown token is not an error. */
	if (xc_own_token_verify(r->rt, tok, time(NULL), 1, &claims, &err) != 0) {
		xc_send_json_text(r, 200, "{}", NULL, 0);
		goto out;
	}
	cid = json_string_value(json_object_get(claims, "client_id"));
	jti = json_string_value(json_object_get(claims, "jti"));
	act = json_object_get(claims, "act");
	/* The client the token was issued to, its current actor, or an admin may revoke it. */
	if (!(cid != NULL && strcmp(cid, client.id) == 0)
	    && !(json_is_object(act) && json_is_string(json_object_get(act, "sub"))
	        && strcmp(json_string_value(json_object_get(act, "sub")), client.id) == 0)
	    && !is_admin(r, client.id)) {
		xc_send_oauth_error(
		    r, 400, "unauthorized_client", "the token was not issued to this client");
		goto out;
	}
	if (xc_store_revoke(r->store, XC_REVOKE_JTI, jti, &n) != 0) {
		xc_send_plain_error(r, 503, "store unavailable");
		goto out;
	}
	audit_revocation("jti", jti, n, client.id);
	xc_send_json_text(r, 200, "{}", NULL, 0);
out:
	json_decref(claims);
	xc_client_clear(&client);
	xc_form_free(f);
}

void
xc_handle_introspect(struct xc_req *r)
{
	struct xc_form *f = NULL;
	struct xc_client client;
	struct xc_ledger_entry led;
	struct agentid_error err;
	json_t *claims = NULL, *resp = NULL, *cnf;
	const char *tok, *key;
	json_t *val;
	int rc;

	memset(&client, 0, sizeof(client));
	memset(&led, 0, sizeof(led));
	if (xc_read_form(r, &f) != 0)
		return;
	if (xc_client_authenticate(r, f, &client) != 0)
		goto out;
	if (r->rt->introspect_pats != NULL
	    && !agentid_spiffe_patterns_match(r->rt->introspect_pats, client.id, strlen(client.id))
	    && !is_admin(r, client.id)) {
		xc_send_plain_error(r, 403, "access_denied");
		goto out;
	}
	if ((tok = xc_form_get(f, "token")) == NULL) {
		xc_send_oauth_error(r, 400, "invalid_request", "token is required");
		goto out;
	}
	agentid_error_clear(&err);
	if (xc_own_token_verify(r->rt, tok, time(NULL), 0, &claims, &err) != 0) {
		xc_send_json_text(r, 200, "{\"active\":false}", NULL, 0);
		goto out;
	}
	rc = xc_store_ledger_get(r->store, json_string_value(json_object_get(claims, "jti")), &led);
	if (rc != 0 && rc != AGENTID_ENOTFOUND) {
		xc_send_plain_error(r, 503, "store unavailable");
		goto out;
	}
	if (rc == AGENTID_ENOTFOUND || led.revoked) {
		xc_send_json_text(r, 200, "{\"active\":false}", NULL, 0);
		goto out;
	}
	/* RFC 7662 section 2.2: "active" first, then the token's claims. */
	if ((resp = json_pack("{s:b}", "active", 1)) == NULL)
		goto oom;
	json_object_foreach(claims, key, val) if (json_object_set(resp, key, val) != 0) goto oom;
	cnf = json_object_get(claims, "cnf");
	if (json_object_set_new(resp, "token_type",
	        json_string(
	            json_is_object(cnf) && json_object_get(cnf, "jkt") != NULL ? "DPoP" : "Bearer"))
	    != 0)
		goto oom;
	xc_send_json(r, 200, resp);
	goto out;
oom:
	xc_send_plain_error(r, 503, "out of memory");
out:
	xc_ledger_entry_clear(&led);
	json_decref(resp);
	json_decref(claims);
	xc_client_clear(&client);
	xc_form_free(f);
}

void
xc_handle_admin_revoke(struct xc_req *r)
{
	static const struct {
		const char *param;
		enum xc_revoke_by by;
	} kinds[] = {
		{ "jti", XC_REVOKE_JTI },
		{ "agent", XC_REVOKE_AGENT },
		{ "subject", XC_REVOKE_SUBJECT },
		{ "task", XC_REVOKE_TASK },
	};
	struct xc_form *f = NULL;
	const char *value = NULL, *param = NULL;
	enum xc_revoke_by by = XC_REVOKE_JTI;
	json_t *resp;
	size_t i;
	long n = 0;

	if (xc_read_form(r, &f) != 0)
		return;
	if (r->peer_id == NULL) {
		xc_send_oauth_error(
		    r, 401, "invalid_client", "the admin API needs mTLS with an admin X.509-SVID");
		goto out;
	}
	if (!is_admin(r, r->peer_id)) {
		xc_send_plain_error(r, 403, "access_denied");
		goto out;
	}
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const char *v = xc_form_get(f, kinds[i].param);

		if (v == NULL)
			continue;
		if (value != NULL) {
			xc_send_oauth_error(r, 400, "invalid_request",
			    "give exactly one of jti, agent, subject, task");
			goto out;
		}
		value = v;
		param = kinds[i].param;
		by = kinds[i].by;
	}
	if (value == NULL) {
		xc_send_oauth_error(
		    r, 400, "invalid_request", "give exactly one of jti, agent, subject, task");
		goto out;
	}
	if (xc_store_revoke(r->store, by, value, &n) != 0) {
		xc_send_plain_error(r, 503, "store unavailable");
		goto out;
	}
	audit_revocation(param, value, n, r->peer_id);
	resp = json_pack("{s:s,s:s,s:I}", "by", param, "value", value, "revoked", (json_int_t)n);
	if (resp == NULL)
		xc_send_plain_error(r, 503, "out of memory");
	else
		xc_send_json(r, 200, resp);
	json_decref(resp);
out:
	xc_form_free(f);
}
