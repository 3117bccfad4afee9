/*
 * Prometheus text exposition (format 0.0.4) at GET /metrics.  Counters are
 * relaxed atomics bumped by the workers; rendering reads them without
 * stopping anyone, which is what Prometheus' counter semantics allow.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "exchange.h"

static const char *const ep_names[XC_EP__COUNT] = {
	[XC_EP_TOKEN] = "token",
	[XC_EP_REVOKE] = "revoke",
	[XC_EP_INTROSPECT] = "introspect",
	[XC_EP_ADMIN] = "admin_revoke",
	[XC_EP_STATUSLIST] = "statuslists",
	[XC_EP_JWKS] = "jwks",
	[XC_EP_METADATA] = "metadata",
	[XC_EP_HEALTH] = "healthz",
	[XC_EP_METRICS] = "metrics",
	[XC_EP_OTHER] = "other",
};

static const int codes[] = { 200, 400, 401, 403, 404, 405, 413, 503, 0 };
#define N_CODES (sizeof(codes) / sizeof(codes[0]))

static const double buckets[]
    = { 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0 };
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static atomic_ulong requests[XC_EP__COUNT][N_CODES];
static atomic_ulong lat_buckets[N_BUCKETS + 1];
static atomic_ulong lat_sum_us;
static atomic_ulong issued;
static atomic_ulong revoked;
static atomic_long bundle_time;

void
xc_metrics_request(enum xc_endpoint ep, int status)
{
	size_t i;

	if ((int)ep < 0 || ep >= XC_EP__COUNT)
		ep = XC_EP_OTHER;
	for (i = 0; i < N_CODES - 1; i++)
		if (codes[i] == status)
			break;
	atomic_fetch_add_explicit(&requests[ep][i], 1, memory_order_relaxed);
}

void
xc_metrics_exchange_latency(double s)
{
	size_t i;

	for (i = 0; i < N_BUCKETS; i++)
		if (s <= buckets[i])
			break;
	atomic_fetch_add_explicit(&lat_buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&lat_sum_us, (unsigned long)(s * 1e6), memory_order_relaxed);
}

void
xc_metrics_issued(void)
{
	atomic_fetch_add_explicit(&issued, 1, memory_order_relaxed);
}

void
xc_metrics_revoked(long n)
{
	if (n > 0)
		atomic_fetch_add_explicit(&revoked, (unsigned long)n, memory_order_relaxed);
}

void
xc_metrics_set_bundle_time(time_t t)
{
	atomic_store(&bundle_time, (long)t);
}

int
xc_metrics_render(struct evbuffer *b)
{
	unsigned long cum = 0, v;
	size_t e, i;
	long bt;

	evbuffer_add_printf(b,
	    "# HELP agentid_exchange_requests_total HTTP requests by endpoint "
	    "and status code.\n"
	    "# TYPE agentid_exchange_requests_total counter\n");
	for (e = 0; e < XC_EP__COUNT; e++)
		for (i = 0; i < N_CODES; i++) {
			v = atomic_load_explicit(&requests[e][i], memory_order_relaxed);
			if (v == 0)
				continue;
			if (codes[i] != 0)
				evbuffer_add_printf(b,
				    "agentid_exchange_requests_total{endpoint=\"%s\",code=\"%d\"} "
				    "%lu\n",
				    ep_names[e], codes[i], v);
			else
				evbuffer_add_printf(b,
				    "agentid_exchange_requests_total{endpoint=\"%s\",code="
				    "\"other\"} "
				    "%lu\n",
				    ep_names[e], v);
		}
	evbuffer_add_printf(b,
	    "# HELP agentid_exchange_token_seconds Latency of POST /token.\n"
	    "# TYPE agentid_exchange_token_seconds histogram\n");
	for (i = 0; i < N_BUCKETS; i++) {
		cum += atomic_load_explicit(&lat_buckets[i], memory_order_relaxed);
		evbuffer_add_printf(
		    b, "agentid_exchange_token_seconds_bucket{le=\"%g\"} %lu\n", buckets[i], cum);
	}
	cum += atomic_load_explicit(&lat_buckets[N_BUCKETS], memory_order_relaxed);
	evbuffer_add_printf(b, "agentid_exchange_token_seconds_bucket{le=\"+Inf\"} %lu\n", cum);
	evbuffer_add_printf(
	    b, "agentid_exchange_token_seconds_sum %.6f\n", (double)atomic_load(&lat_sum_us) / 1e6);
	evbuffer_add_printf(b, "agentid_exchange_token_seconds_count %lu\n", cum);
	evbuffer_add_printf(b,
	    "# HELP agentid_exchange_tokens_issued_total Access tokens issued.\n"
	    "# TYPE agentid_exchange_tokens_issued_total counter\n"
	    "agentid_exchange_tokens_issued_total %lu\n",
	    atomic_load(&issued));
	evbuffer_add_printf(b,
	    "# HELP agentid_exchange_tokens_revoked_total Tokens revoked (cascades included).\n"
	    "# TYPE agentid_exchange_tokens_revoked_total counter\n"
	    "agentid_exchange_tokens_revoked_total %lu\n",
	    atomic_load(&revoked));
	bt = atomic_load(&bundle_time);
	evbuffer_add_printf(b,
	    "# HELP agentid_exchange_bundle_age_seconds Age of the loaded trust bundles.\n"
	    "# TYPE agentid_exchange_bundle_age_seconds gauge\n"
	    "agentid_exchange_bundle_age_seconds %ld\n",
	    bt > 0 ? (long)time(NULL) - bt : -1L);
	xc_remote_metrics(b);
	return 0;
}
