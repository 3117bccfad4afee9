/*
 * agentid-exchange: the RFC 8693 token-exchange server for agent
 * delegation.  This file holds the process: options, logging, building the
 * runtime (configuration, trust bundles, verifiers, keys, policy), signals
 * and housekeeping timers.  The main thread runs only its own small event
 * loop; requests are served by the worker threads (server.c).
 *
 *   SIGHUP   re-read configuration, keys and bundles; workers switch over
 *            between requests, connections stay open
 *   SIGTERM  stop accepting, let queued responses drain, exit
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "exchange.h"

struct xc_store *xc_global_store;

static int log_syslog;
static int log_max = AGENTID_LOG_INFO;
static unsigned generation;
static const char *config_path;
static int opt_threads = -1;
static struct event_base *main_base;
static struct event *ev_refresh;
static long refresh_every;
static int rebuild_pending;
/* --check-config: a bundle_url or jwks_url that cannot be fetched is an error. */
static int remote_strict;

/* ---------------------------------------------------------------- logging */

void
xc_log(int level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[1024];
	va_list ap;

	if (level > log_max || level < 0 || level > AGENTID_LOG_DEBUG)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_syslog)
		syslog(prio[level], "%s", msg);
	else
		fprintf(stderr, "agentid-exchange: %s: %s\n", names[level], msg);
}

static void
lib_log(void *arg, enum agentid_log_level level, const char *msg)
{
	xc_log((int)level, "%s", msg);
}

static void
apply_log_config(const struct xc_config *c)
{
	if (c->log_level != NULL) {
		if (strcmp(c->log_level, "error") == 0)
			log_max = AGENTID_LOG_ERROR;
		else if (strcmp(c->log_level, "warn") == 0)
			log_max = AGENTID_LOG_WARN;
		else if (strcmp(c->log_level, "debug") == 0)
			log_max = AGENTID_LOG_DEBUG;
		else
			log_max = AGENTID_LOG_INFO;
	}
	if (c->log_target != NULL && strcmp(c->log_target, "syslog") == 0 && !log_syslog) {
		openlog("agentid-exchange", LOG_PID, LOG_DAEMON);
		log_syslog = 1;
	}
	agentid_set_log(lib_log, NULL, (enum agentid_log_level)log_max);
}

/* ---------------------------------------------------------------- runtime */

void
xc_runtime_unref(struct xc_runtime *rt)
{
	size_t i;

	if (rt == NULL || atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (i = 0; i < rt->n_ext; i++)
		agentid_keyset_free(rt->ext[i].keys);
	free(rt->ext);
	agentid_verifier_free(rt->svid_verifier);
	agentid_trust_free(rt->trust);
	xc_issuer_free(rt->issuer);
	agentid_spiffe_patterns_free(rt->admin_pats);
	agentid_spiffe_patterns_free(rt->introspect_pats);
	free(rt->metadata_json);
	SSL_CTX_free(rt->ssl_ctx);
	xc_config_free(rt->cfg);
	free(rt);
}

static int
load_trust(const struct xc_config *c, struct agentid_trust **out, char *errbuf, size_t errlen)
{
	struct agentid_trust *t = NULL;
	struct agentid_bundle *b = NULL;
	struct agentid_error err;
	char *body = NULL, why[256];
	size_t i, len = 0;
	int r;

	if (agentid_trust_new(&t) != 0)
		return -1;
	for (i = 0; i < c->n_tds; i++) {
		const struct xc_trust_domain *td = &c->tds[i];

		agentid_error_clear(&err);
		if (td->bundle_file != NULL)
			r = agentid_bundle_load_file(td->name, td->bundle_file, &b, &err);
		else if (xc_remote_body(XC_REMOTE_BUNDLE, td->name, td->bundle_url, td->bundle_ca,
		             &body, &len, why, sizeof(why))
		    == 0) {
			r = agentid_bundle_parse(td->name, body, len, &b, &err);
			free(body);
			body = NULL;
		} else if (remote_strict) {
			snprintf(errbuf, errlen, "trust domain %s: %s", td->name, why);
			goto fail;
		} else {
			/*
			 * Fail closed but keep serving the other trust domains: an
			 * empty bundle trusts nothing, and the refresh timer keeps
			 * trying.
			 */
			xc_log(AGENTID_LOG_ERROR,
			    "trust domain %s: no keys, its SVIDs are refused: %s", td->name, why);
			r = agentid_bundle_new(td->name, &b);
		}
		if (r != 0) {
			snprintf(errbuf, errlen, "trust domain %s: bundle %s: %s%s%s", td->name,
			    td->bundle_file != NULL ? td->bundle_file : td->bundle_url,
			    r == AGENTID_EREJECTED ? agentid_reason_text(err.reason)
			                           : agentid_strerror(r),
			    err.detail[0] ? ": " : "", err.detail);
			goto fail;
		}
		if (agentid_trust_add_bundle(t, b) != 0)
			goto fail;
		agentid_bundle_free(b);
		b = NULL;
	}
	*out = t;
	return 0;
fail:
	agentid_bundle_free(b);
	agentid_trust_free(t);
	return -1;
}

static int
load_externals(struct xc_runtime *rt, char *errbuf, size_t errlen)
{
	const struct xc_config *c = rt->cfg;
	struct agentid_error err;
	char *body = NULL, why[256];
	size_t i, len = 0;
	int r;

	if (c->n_ext == 0)
		return 0;
	if ((rt->ext = calloc(c->n_ext, sizeof(*rt->ext))) == NULL)
		return -1;
	rt->n_ext = c->n_ext;
	for (i = 0; i < c->n_ext; i++) {
		const struct xc_external_issuer *e = &c->ext[i];

		rt->ext[i].cfg = e;
		if (e->jwks_file != NULL) {
			if (agentid_read_file(e->jwks_file, (1 << 20) - 1, &body, &len) != 0) {
				snprintf(errbuf, errlen, "%s: cannot read JWKS", e->jwks_file);
				return -1;
			}
			agentid_error_clear(&err);
			r = agentid_keyset_parse(body, len, &rt->ext[i].keys, &err);
			agentid_free(body);
		} else if (xc_remote_body(XC_REMOTE_JWKS, e->issuer, e->jwks_url, e->jwks_ca, &body,
		               &len, why, sizeof(why))
		    == 0) {
			agentid_error_clear(&err);
			r = agentid_keyset_parse(body, len, &rt->ext[i].keys, &err);
			free(body);
		} else if (remote_strict) {
			snprintf(errbuf, errlen, "external issuer %s: %s", e->issuer, why);
			return -1;
		} else {
			/* No keys: this issuer's tokens are refused (no_keys) until jwks_url
			 * answers. */
			xc_log(AGENTID_LOG_ERROR,
			    "external issuer %s: no keys, its tokens are "
			    "refused: %s",
			    e->issuer, why);
			continue;
		}
		body = NULL;
		if (r != 0) {
			snprintf(errbuf, errlen, "external issuer %s: bad JWKS: %s", e->issuer,
			    err.detail);
			return -1;
		}
	}
	return 0;
}

static int
build_metadata(struct xc_runtime *rt)
{
	const struct xc_config *c = rt->cfg;
	char url[4][512];
	json_t *m;

	snprintf(url[0], sizeof(url[0]), "%s/jwks", c->issuer);
	snprintf(url[1], sizeof(url[1]), "%s/revoke", c->issuer);
	snprintf(url[2], sizeof(url[2]), "%s/introspect", c->issuer);
	m = json_pack("{s:s,s:s,s:s,s:s,s:s,s:[s],s:[s,s],s:[s,s],s:[s,s],s:[s,s,s,s,s,s,s,s],"
	              "s:b,s:[s,s],s:[s]}",
	    "issuer", c->issuer, "token_endpoint", c->token_endpoint, "jwks_uri", url[0],
	    "revocation_endpoint", url[1], "introspection_endpoint", url[2],
	    "grant_types_supported", XC_TOKEN_EXCHANGE_GRANT,
	    "token_endpoint_auth_methods_supported", "tls_client_auth", "spiffe_jwt",
	    "revocation_endpoint_auth_methods_supported", "tls_client_auth", "spiffe_jwt",
	    "introspection_endpoint_auth_methods_supported", "tls_client_auth", "spiffe_jwt",
	    "dpop_signing_alg_values_supported", "ES256", "ES384", "ES512", "RS256", "PS256",
	    "PS384", "EdDSA", "Ed25519", "tls_client_certificate_bound_access_tokens", 1,
	    "token_types_supported", XC_TT_ACCESS, XC_TT_JWT, "response_types_supported", "token");
	if (m == NULL)
		return -1;
	rt->metadata_json = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	return rt->metadata_json != NULL ? 0 : -1;
}

int
xc_runtime_build(
    struct xc_config *cfg, unsigned gen, struct xc_runtime **out, char *errbuf, size_t errlen)
{
	struct agentid_verifier_config vc;
	struct xc_runtime *rt;
	struct agentid_error err;
	size_t i;

	*out = NULL;
	if ((rt = calloc(1, sizeof(*rt))) == NULL) {
		xc_config_free(cfg);
		return -1;
	}
	atomic_init(&rt->refs, 1);
	rt->generation = gen;
	rt->cfg = cfg;
	if (load_trust(cfg, &rt->trust, errbuf, errlen) != 0)
		goto fail;
	rt->bundles_loaded = time(NULL);
	agentid_verifier_config_init(&vc);
	vc.profile = AGENTID_PROFILE_JWT_SVID;
	vc.trust = rt->trust;
	vc.audiences = (const char *const *)cfg->audiences;
	vc.n_audiences = cfg->n_audiences;
	vc.leeway = cfg->leeway;
	agentid_error_clear(&err);
	if (agentid_verifier_new(&vc, &rt->svid_verifier, &err) != 0) {
		snprintf(errbuf, errlen, "cannot build the JWT-SVID verifier: %s", err.detail);
		goto fail;
	}
	if (xc_issuer_load(cfg, &rt->issuer, errbuf, errlen) != 0)
		goto fail;
	if (load_externals(rt, errbuf, errlen) != 0)
		goto fail;
	if (cfg->n_admin_ids > 0
	    && agentid_spiffe_patterns_parse(
	           (const char *const *)cfg->admin_ids, cfg->n_admin_ids, &rt->admin_pats, &err)
	        != 0) {
		snprintf(errbuf, errlen, "%s: admin ids: %s", cfg->path, err.detail);
		goto fail;
	}
	if (cfg->n_introspect_ids > 0
	    && agentid_spiffe_patterns_parse((const char *const *)cfg->introspect_ids,
	           cfg->n_introspect_ids, &rt->introspect_pats, &err)
	        != 0) {
		snprintf(errbuf, errlen, "%s: introspection ids: %s", cfg->path, err.detail);
		goto fail;
	}
	if (build_metadata(rt) != 0)
		goto fail;
	for (i = 0; i < cfg->n_listens; i++)
		if (cfg->listens[i].tls) {
			if (xc_tls_ctx_new(cfg, &rt->ssl_ctx, errbuf, errlen) != 0)
				goto fail;
			break;
		}
	*out = rt;
	return 0;
fail:
	if (errbuf[0] == '\0')
		snprintf(errbuf, errlen, "cannot build the runtime");
	xc_runtime_unref(rt);
	return -1;
}

/*
 * Loads FILE and builds a runtime from it.  With fetch, every bundle_url and
 * jwks_url is fetched anew first; without, the last good keys are used
 * (sources not seen before are fetched either way).
 */
static int
load(const char *path, int fetch, struct xc_runtime **out, char *errbuf, size_t errlen)
{
	struct xc_config *cfg = NULL;

	errbuf[0] = '\0';
	if (xc_config_load(path, &cfg, errbuf, errlen) != 0)
		return -1;
	if (fetch)
		(void)xc_remote_refresh(cfg);
	return xc_runtime_build(cfg, ++generation, out, errbuf, errlen);
}

/* Arms the one-shot refresh timer for the sources of c (none: no timer). */
static void
schedule_refresh(const struct xc_config *c)
{
	struct timeval tv;
	int raised = 0;
	long n;

	if (ev_refresh == NULL)
		return;
	event_del(ev_refresh);
	if ((n = xc_remote_interval(c, &raised)) <= 0) {
		refresh_every = 0;
		return;
	}
	if (n != refresh_every)
		xc_log(AGENTID_LOG_INFO, "refreshing bundle_url/jwks_url keys every %ld s%s", n,
		    raised ? " (a spiffe_refresh_hint below key_refresh.min_interval was raised "
		             "to it)"
		           : "");
	refresh_every = n;
	tv.tv_sec = n;
	tv.tv_usec = 0;
	event_add(ev_refresh, &tv);
}

/* The newest runtime went live: forget unused sources, update the gauge, re-arm. */
static void
runtime_live(const struct xc_runtime *rt)
{
	xc_remote_retain(rt->cfg);
	xc_metrics_set_bundle_time(xc_remote_oldest(rt->cfg, rt->bundles_loaded));
	schedule_refresh(rt->cfg);
}

/* ---------------------------------------------------------------- signals and timers */

/*
 * systemd's readiness protocol (sd_notify(3)): one datagram of
 * newline-separated assignments to the unix socket named by $NOTIFY_SOCKET
 * ("@" at the start means the abstract namespace).  Written here rather
 * than linking libsystemd: it is a stable, documented interface and the
 * server needs nothing else from that library.
 */
void
xc_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	size_t n;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return;
	n = strlen(path);
	if (n < 2 || n >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0)
		xc_log(AGENTID_LOG_DEBUG, "sd_notify: %s: %s", path, strerror(errno));
	close(fd);
}

static int
reload(int fetch)
{
	struct xc_runtime *rt = NULL;
	char errbuf[512];

	if (load(config_path, fetch, &rt, errbuf, sizeof(errbuf)) != 0) {
		xc_log(AGENTID_LOG_ERROR, "reload failed, keeping the running configuration: %s",
		    errbuf);
		return -1;
	}
	apply_log_config(rt->cfg);
	xc_runtime_publish(rt);
	runtime_live(rt);
	xc_runtime_unref(rt);
	return 0;
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct timespec ts;
	char msg[64];

	/* MONOTONIC_USEC lets systemd (Type=notify-reload) match this reload to its request. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	xc_notify(msg);
	if (reload(1) == 0) {
		rebuild_pending = 0;
		xc_log(AGENTID_LOG_INFO, "configuration reloaded (generation %u)", generation);
	}
	/* Ready again either way: a failed reload keeps the running configuration. */
	xc_notify("READY=1");
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	xc_log(AGENTID_LOG_INFO, "signal %d: draining and stopping", (int)sig);
	xc_notify("STOPPING=1");
	event_base_loopbreak(main_base);
}

static void
on_prune(evutil_socket_t fd, short what, void *arg)
{
	if (xc_store_prune(xc_global_store) != 0)
		xc_log(AGENTID_LOG_WARN, "pruning expired rows failed");
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	xc_audit_tick();
	if (xc_global_store != NULL) {
		xc_store_checkpoint(xc_global_store);
		xc_store_probe(xc_global_store);
	}
}

/*
 * Re-fetches the running configuration's bundle_url and jwks_url.  Only when
 * some keys changed is the runtime rebuilt (re-reading the configuration
 * file, as SIGHUP does), which swaps everything atomically.
 */
static void
on_refresh(evutil_socket_t fd, short what, void *arg)
{
	struct xc_runtime *cur = xc_runtime_current();

	if (cur == NULL)
		return;
	/* A rebuild that failed (say, the file is being edited) is retried at the next refresh. */
	if (xc_remote_refresh(cur->cfg) || rebuild_pending) {
		if (reload(0) == 0) {
			rebuild_pending = 0;
			xc_log(AGENTID_LOG_INFO,
			    "new keys from bundle_url/jwks_url in use "
			    "(generation %u)",
			    generation);
		} else {
			rebuild_pending = 1;
			schedule_refresh(cur->cfg);
		}
	} else {
		xc_metrics_set_bundle_time(xc_remote_oldest(cur->cfg, cur->bundles_loaded));
		schedule_refresh(cur->cfg);
	}
	xc_runtime_unref(cur);
}

/* ---------------------------------------------------------------- main */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid-exchange [-c FILE] [--threads N] [--log-level LEVEL]\n"
	    "       agentid-exchange --check-config FILE\n"
	    "       agentid-exchange --version | --help\n"
	    "\n"
	    "  -c, --config FILE     configuration (YAML); default /etc/agentid/exchange.yaml\n"
	    "  -t, --threads N       worker threads (default: configuration, then cores)\n"
	    "  --check-config FILE   validate FILE (and load its keys and bundles), then exit\n"
	    "  --log-level LEVEL     error, warn, info or debug\n"
	    "\nSee agentid-exchange(8).\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", required_argument, NULL, 'C' },
		{ "threads", required_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct xc_runtime *rt = NULL;
	struct event *ev_hup = NULL, *ev_term = NULL, *ev_int = NULL, *ev_prune = NULL;
	struct event *ev_tick = NULL;
	struct timeval tv;
	char errbuf[512], *end;
	const char *level = NULL;
	int ch, check = 0, threads, ret = 2;
	long n;

	config_path = "/etc/agentid/exchange.yaml";
	while ((ch = getopt_long(argc, argv, "c:t:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config_path = optarg;
			break;
		case 'C':
			config_path = optarg;
			check = 1;
			break;
		case 't':
			n = strtol(optarg, &end, 10);
			if (*end != '\0' || n < 1 || n > 256) {
				fprintf(stderr, "agentid-exchange: --threads must be 1-256\n");
				return 2;
			}
			opt_threads = (int)n;
			break;
		case 'l':
			level = optarg;
			break;
		case 'V':
			printf("agentid-exchange %s (libagentid %s)\n", PACKAGE_VERSION,
			    agentid_version());
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	agentid_set_log(lib_log, NULL, AGENTID_LOG_INFO);
	remote_strict = check;
	if (load(config_path, 0, &rt, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "agentid-exchange: %s\n", errbuf);
		xc_remote_free();
		return check ? 1 : 2;
	}
	if (check) {
		printf("%s: OK (%zu listener(s), %zu trust domain(s), %zu external issuer(s), "
		       "%zu policy rule(s), %zu signing key(s))\n",
		    config_path, rt->cfg->n_listens, rt->cfg->n_tds, rt->cfg->n_ext,
		    rt->cfg->n_rules, agentid_keyset_count(rt->issuer->verify));
		xc_runtime_unref(rt);
		xc_remote_free();
		return 0;
	}
	apply_log_config(rt->cfg);
	if (level != NULL) {
		free(rt->cfg->log_level);
		rt->cfg->log_level = strdup(level);
		apply_log_config(rt->cfg);
	}
	signal(SIGPIPE, SIG_IGN);
	if (xc_store_open(rt->cfg, &xc_global_store, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "agentid-exchange: %s\n", errbuf);
		goto out;
	}
	if (xc_audit_open(rt->cfg, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "agentid-exchange: %s\n", errbuf);
		goto out;
	}
	threads = opt_threads > 0 ? opt_threads : rt->cfg->threads;
	if (threads <= 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (int)n : 1;
	}
	{
		/* Workers must not take the signals the main loop handles. */
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGHUP);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		errbuf[0] = '\0';
		if (xc_server_start(rt, xc_global_store, threads, errbuf, sizeof(errbuf)) != 0) {
			fprintf(stderr, "agentid-exchange: %s\n", errbuf);
			pthread_sigmask(SIG_UNBLOCK, &set, NULL);
			goto out;
		}
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	}
	if ((main_base = event_base_new()) == NULL)
		goto out;
	ev_hup = evsignal_new(main_base, SIGHUP, on_hup, NULL);
	ev_term = evsignal_new(main_base, SIGTERM, on_term, NULL);
	ev_int = evsignal_new(main_base, SIGINT, on_term, NULL);
	ev_prune = event_new(main_base, -1, EV_PERSIST, on_prune, NULL);
	ev_tick = event_new(main_base, -1, EV_PERSIST, on_tick, NULL);
	ev_refresh = event_new(main_base, -1, 0, on_refresh, NULL);
	if (ev_hup == NULL || ev_term == NULL || ev_int == NULL || ev_prune == NULL
	    || ev_tick == NULL || ev_refresh == NULL)
		goto stop;
	evsignal_add(ev_hup, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	tv.tv_sec = 60;
	tv.tv_usec = 0;
	event_add(ev_prune, &tv);
	tv.tv_sec = 1;
	event_add(ev_tick, &tv);
	runtime_live(rt);
	xc_log(AGENTID_LOG_INFO, "agentid-exchange %s ready: issuer %s, %d worker(s), %s store",
	    PACKAGE_VERSION, rt->cfg->issuer, threads, rt->cfg->store_driver);
	xc_notify("READY=1\nSTATUS=serving");
	event_base_dispatch(main_base);
	ret = 0;
stop:
	xc_server_stop();
out:
	if (ev_refresh != NULL)
		event_free(ev_refresh);
	if (ev_tick != NULL)
		event_free(ev_tick);
	if (ev_prune != NULL)
		event_free(ev_prune);
	if (ev_int != NULL)
		event_free(ev_int);
	if (ev_term != NULL)
		event_free(ev_term);
	if (ev_hup != NULL)
		event_free(ev_hup);
	if (main_base != NULL)
		event_base_free(main_base);
	xc_audit_close();
	xc_store_close(xc_global_store);
	xc_runtime_unref(rt);
	xc_remote_free();
	libevent_global_shutdown();
	return ret;
}
