/*
 * agentid bundle-sync: keeps local copies of trust bundles, JWK Sets and
 * status lists fresh for hosts whose verifiers (nginx, PAM) read files.
 *
 * Each source is fetched with libagentid's fetcher (ETag / If-None-Match),
 * validated as what it claims to be, and written with an atomic replace
 * (temporary file next to the target, fsync, rename) only when its content
 * changed, so readers never see a partial file and nginx does not re-read
 * an unchanged one.  A failed fetch or a body that does not validate keeps
 * the old file: stale-if-error, never empty-if-error.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define SYNC_MAX_SOURCES 64
#define SYNC_MIN_INTERVAL 5
#define SYNC_DEFAULT_INTERVAL 300

enum sync_kind { SYNC_BUNDLE, SYNC_JWKS, SYNC_STATUS };

struct sync_source {
	enum sync_kind kind;
	char *url;
	char *file;
	const char *td; /* bundles: trust domain, or NULL for unbound keys */
	char *etag;
	time_t due;
	unsigned failures;
};

struct sync_opts {
	struct sync_source src[SYNC_MAX_SOURCES];
	size_t n;
	long interval;
	long timeout_ms;
	const char *cafile;
	const char *status_keys;
	int allow_http;
	int once;
	unsigned mode;
};

static volatile sig_atomic_t sync_stop;
static volatile sig_atomic_t sync_hup;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		sync_hup = 1;
	else
		sync_stop = 1;
}

static void
sync_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid bundle-sync [options] SOURCE...\n"
	    "\n"
	    "Keeps local files fresh from bundle endpoints, JWKS URLs and status-list URLs,\n"
	    "for nginx and PAM hosts that verify from files.  Each file is replaced\n"
	    "atomically and only when its content changed; a failed fetch or an invalid\n"
	    "body keeps the old file.  Runs until SIGTERM/SIGINT (SIGHUP: refresh now)\n"
	    "unless --once is given.\n"
	    "\n"
	    "sources (repeatable, at least one):\n"
	    "  --bundle URL=FILE        SPIFFE bundle (e.g. a SPIRE bundle endpoint, https_web);\n"
	    "                           refreshed per its spiffe_refresh_hint (at most "
	    "--interval)\n"
	    "  --jwks URL=FILE          JWK Set (e.g. agentid-exchange's /jwks)\n"
	    "  --status-list URL=FILE   status list token (agentid-exchange's /statuslists/N)\n"
	    "\n"
	    "options:\n"
	    "  --trust-domain TD        trust domain of the --bundle sources that follow\n"
	    "  --status-keys FILE       JWKS/bundle whose keys must have signed the status lists\n"
	    "                           (without it lists are only checked structurally)\n"
	    "  --interval SECS          refresh period (default %d, minimum %d)\n"
	    "  --timeout MS             per-fetch timeout (default %d)\n"
	    "  --cacert FILE            CA certificates for the servers (default: system store)\n"
	    "  --mode OCTAL             mode of the written files (default 0644)\n"
	    "  --allow-http             accept http:// URLs (loopback tests only)\n"
	    "  --once                   fetch every source once; exit 0 if all succeeded, else 1\n"
	    "  -h, --help               this text\n",
	    SYNC_DEFAULT_INTERVAL, SYNC_MIN_INTERVAL, AGENTID_FETCH_DEFAULT_TIMEOUT_MS);
}

enum {
	OPT_BUNDLE = 256,
	OPT_JWKS,
	OPT_STATUS,
	OPT_TD,
	OPT_STATUS_KEYS,
	OPT_INTERVAL,
	OPT_TIMEOUT,
	OPT_CACERT,
	OPT_MODE,
	OPT_ALLOW_HTTP,
	OPT_ONCE,
};

static const struct option sync_options[] = {
	{ "bundle", required_argument, NULL, OPT_BUNDLE },
	{ "jwks", required_argument, NULL, OPT_JWKS },
	{ "status-list", required_argument, NULL, OPT_STATUS },
	{ "trust-domain", required_argument, NULL, OPT_TD },
	{ "status-keys", required_argument, NULL, OPT_STATUS_KEYS },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "cacert", required_argument, NULL, OPT_CACERT },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "allow-http", no_argument, NULL, OPT_ALLOW_HTTP },
	{ "once", no_argument, NULL, OPT_ONCE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const char *
kind_name(enum sync_kind k)
{
	switch (k) {
	case SYNC_BUNDLE:
		return "bundle";
	case SYNC_JWKS:
		return "jwks";
	default:
		return "status-list";
	}
}

/* Splits "URL=FILE" at the last '=' (URLs may carry '=' in a query, file names rarely do). */
static int
add_source(struct sync_opts *o, enum sync_kind kind, const char *arg, const char *td)
{
	const char *eq = strrchr(arg, '=');
	struct sync_source *s;

	if (eq == NULL || eq == arg || eq[1] == '\0') {
		cli_err("bundle-sync: --%s wants URL=FILE, not '%s'", kind_name(kind), arg);
		return -1;
	}
	if (o->n == SYNC_MAX_SOURCES) {
		cli_err("bundle-sync: at most %d sources", SYNC_MAX_SOURCES);
		return -1;
	}
	s = &o->src[o->n];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->td = kind == SYNC_BUNDLE ? td : NULL;
	if ((s->url = strndup(arg, (size_t)(eq - arg))) == NULL
	    || (s->file = strdup(eq + 1)) == NULL) {
		free(s->url);
		cli_err("out of memory");
		return -1;
	}
	o->n++;
	return 0;
}

static void
free_sources(struct sync_opts *o)
{
	size_t i;

	for (i = 0; i < o->n; i++) {
		free(o->src[i].url);
		free(o->src[i].file);
		free(o->src[i].etag);
	}
	o->n = 0;
}

/* Keys for checking status-list signatures: a JWK Set or a SPIFFE bundle file. */
static int
load_status_keys(const char *path, struct agentid_keyset **out)
{
	struct agentid_bundle *b = NULL;
	struct agentid_error err;

	*out = NULL;
	agentid_error_clear(&err);
	if (agentid_bundle_load_file(NULL, path, &b, &err) != 0) {
		cli_err("bundle-sync: --status-keys %s: %s", path, err.detail);
		return -1;
	}
	if (agentid_bundle_jwt_keys(b) == NULL
	    || agentid_keyset_count(agentid_bundle_jwt_keys(b)) == 0) {
		cli_err("bundle-sync: --status-keys %s holds no JWT keys", path);
		agentid_bundle_free(b);
		return -1;
	}
	*out = agentid_keyset_ref((struct agentid_keyset *)agentid_bundle_jwt_keys(b));
	agentid_bundle_free(b);
	return 0;
}

/*
 * Checks that body is what the source claims to be.  For bundles, *hint
 * receives the spiffe_refresh_hint (or -1).  0, or -1 with a message.
 */
static int
validate(const struct sync_source *s, const char *body, size_t len,
    const struct agentid_keyset *status_keys, int64_t *hint)
{
	struct agentid_bundle *b = NULL;
	struct agentid_keyset *ks = NULL;
	struct agentid_jws *jws = NULL;
	struct agentid_status_list_token *tok = NULL;
	struct agentid_error err;
	int r;

	*hint = -1;
	agentid_error_clear(&err);
	switch (s->kind) {
	case SYNC_BUNDLE:
		if ((r = agentid_bundle_parse(s->td, body, len, &b, &err)) == 0)
			*hint = agentid_bundle_refresh_hint(b);
		agentid_bundle_free(b);
		break;
	case SYNC_JWKS:
		r = agentid_keyset_parse(body, len, &ks, &err);
		agentid_keyset_free(ks);
		break;
	default:
		/* A status list token is a compact JWS; tolerate one trailing newline. */
		while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r'))
			len--;
		if (status_keys != NULL) {
			r = agentid_status_list_verify_jwt(body, len, status_keys, 0, s->url, NULL,
			    time(NULL), AGENTID_DEFAULT_LEEWAY, 0, &tok, &err);
			agentid_status_list_token_free(tok);
		} else if ((r = agentid_jws_parse(body, len, NULL, &jws, &err)) == 0
		    && (jws->typ == NULL || strcmp(jws->typ, AGENTID_STATUS_LIST_TYP) != 0)) {
			snprintf(err.detail, sizeof(err.detail), "typ is not %s",
			    AGENTID_STATUS_LIST_TYP);
			r = AGENTID_EREJECTED;
		}
		agentid_jws_free(jws);
		break;
	}
	if (r != 0) {
		cli_err("bundle-sync: %s: not a valid %s: %s", s->url, kind_name(s->kind),
		    err.detail[0] != '\0' ? err.detail : agentid_strerror(r));
		return -1;
	}
	return 0;
}

/* 1 when path already holds exactly data (so it need not be replaced). */
static int
same_content(const char *path, const char *data, size_t len)
{
	FILE *f;
	char buf[4096];
	size_t off = 0, n;
	int same = 1;

	if ((f = fopen(path, "rbe")) == NULL)
		return 0;
	while (same && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (off + n > len || memcmp(buf, data + off, n) != 0)
			same = 0;
		off += n;
	}
	if (ferror(f) || off != len)
		same = 0;
	fclose(f);
	return same;
}

/* Fetches one source; on success schedules its next refresh.  0 or -1. */
static int
sync_one(struct sync_opts *o, struct sync_source *s, const struct agentid_keyset *status_keys,
    time_t now)
{
	struct agentid_fetch_opts fo;
	struct agentid_fetch_result res;
	struct agentid_error err;
	int64_t hint = -1;
	long next = o->interval, backoff;
	int r, ret = -1;

	agentid_fetch_opts_init(&fo);
	fo.timeout_ms = o->timeout_ms;
	fo.cafile = o->cafile;
	fo.allow_http = o->allow_http;
	/* Send the ETag only while the file is still there: a deleted file is re-fetched. */
	fo.etag = access(s->file, F_OK) == 0 ? s->etag : NULL;
	if (s->kind == SYNC_STATUS)
		fo.accept = "application/statuslist+jwt";
	else
		fo.accept = "application/json";
	memset(&res, 0, sizeof(res));
	agentid_error_clear(&err);
	if ((r = agentid_fetch(s->url, &fo, &res, &err)) != 0) {
		cli_err("bundle-sync: %s: %s%s%s", s->url, agentid_strerror(r),
		    err.detail[0] != '\0' ? ": " : "", err.detail);
		goto out;
	}
	if (res.not_modified) {
		ret = 0;
		goto out;
	}
	if (validate(s, res.body, res.len, status_keys, &hint) != 0)
		goto out;
	if (!same_content(s->file, res.body, res.len)) {
		if (cli_write_file(s->file, res.body, res.len, o->mode, 1) != 0)
			goto out;
		fprintf(stderr, "agentid: bundle-sync: updated %s from %s (%zu bytes)\n", s->file,
		    s->url, res.len);
	}
	free(s->etag);
	s->etag = res.etag != NULL ? strdup(res.etag) : NULL;
	if (s->kind == SYNC_BUNDLE && hint > 0 && hint < next)
		next = (long)hint;
	ret = 0;
out:
	agentid_fetch_result_free(&res);
	if (ret == 0) {
		s->failures = 0;
		if (next < SYNC_MIN_INTERVAL)
			next = SYNC_MIN_INTERVAL;
		s->due = now + next;
	} else {
		/* Exponential backoff from the minimum, capped at the interval. */
		backoff = SYNC_MIN_INTERVAL;
		if (s->failures < 16)
			s->failures++;
		for (unsigned i = 1; i < s->failures && backoff < o->interval; i++)
			backoff *= 2;
		s->due = now + (backoff < o->interval ? backoff : o->interval);
	}
	return ret;
}

static int
parse_args(int argc, char **argv, struct sync_opts *o)
{
	const char *td = NULL;
	long long v;
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->interval = SYNC_DEFAULT_INTERVAL;
	o->timeout_ms = AGENTID_FETCH_DEFAULT_TIMEOUT_MS;
	o->mode = 0644;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", sync_options, NULL)) != -1) {
		switch (c) {
		case OPT_BUNDLE:
			if (add_source(o, SYNC_BUNDLE, optarg, td) != 0)
				return -1;
			break;
		case OPT_JWKS:
			if (add_source(o, SYNC_JWKS, optarg, NULL) != 0)
				return -1;
			break;
		case OPT_STATUS:
			if (add_source(o, SYNC_STATUS, optarg, NULL) != 0)
				return -1;
			break;
		case OPT_TD:
			td = optarg;
			break;
		case OPT_STATUS_KEYS:
			o->status_keys = optarg;
			break;
		case OPT_INTERVAL:
			if (cli_parse_long(optarg, SYNC_MIN_INTERVAL, 86400, &v) != 0) {
				cli_err(
				    "bundle-sync: --interval wants %d to 86400 seconds, not '%s'",
				    SYNC_MIN_INTERVAL, optarg);
				return -1;
			}
			o->interval = (long)v;
			break;
		case OPT_TIMEOUT:
			if (cli_parse_long(optarg, 100, 600000, &v) != 0) {
				cli_err("bundle-sync: --timeout wants 100 to 600000 ms, not '%s'",
				    optarg);
				return -1;
			}
			o->timeout_ms = (long)v;
			break;
		case OPT_CACERT:
			o->cafile = optarg;
			break;
		case OPT_MODE:
			errno = 0;
			v = strtoll(optarg, &end, 8);
			if (errno != 0 || *optarg == '\0' || *end != '\0' || v < 0 || v > 0777
			    || (v & 0022) != 0) {
				cli_err("bundle-sync: --mode wants an octal mode without group or "
				        "other write permission, not '%s'",
				    optarg);
				return -1;
			}
			o->mode = (unsigned)v;
			break;
		case OPT_ALLOW_HTTP:
			o->allow_http = 1;
			break;
		case OPT_ONCE:
			o->once = 1;
			break;
		case 'h':
			sync_usage(stdout);
			return 1;
		default:
			sync_usage(stderr);
			return -1;
		}
	}
	if (optind != argc || o->n == 0) {
		if (o->n == 0)
			cli_err("bundle-sync: at least one --bundle, --jwks or --status-list is "
			        "needed");
		else
			cli_err("bundle-sync: unexpected argument '%s'", argv[optind]);
		sync_usage(stderr);
		return -1;
	}
	return 0;
}

int
cmd_bundle_sync(int argc, char **argv)
{
	struct sync_opts o;
	struct agentid_keyset *status_keys = NULL;
	struct sigaction sa;
	struct timespec ts;
	time_t now, wake;
	size_t i;
	int r, failed = 0, ret = EXIT_USAGE;

	if ((r = parse_args(argc, argv, &o)) != 0) {
		ret = r > 0 ? 0 : EXIT_USAGE;
		goto out;
	}
	if (o.status_keys != NULL && load_status_keys(o.status_keys, &status_keys) != 0)
		goto out;
	if (o.once) {
		now = time(NULL);
		for (i = 0; i < o.n; i++)
			if (sync_one(&o, &o.src[i], status_keys, now) != 0)
				failed = 1;
		ret = failed ? EXIT_INVALID : 0;
		goto out;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	fprintf(stderr, "agentid: bundle-sync: keeping %zu file(s) fresh (interval %ld s)\n", o.n,
	    o.interval);
	while (!sync_stop) {
		now = time(NULL);
		if (sync_hup) {
			sync_hup = 0;
			for (i = 0; i < o.n; i++)
				o.src[i].due = 0;
		}
		wake = now + o.interval;
		for (i = 0; i < o.n && !sync_stop; i++) {
			if (o.src[i].due <= now)
				(void)sync_one(&o, &o.src[i], status_keys, now);
			if (o.src[i].due < wake)
				wake = o.src[i].due;
		}
		/* Sleep in short steps so that signals are handled promptly. */
		while (!sync_stop && !sync_hup && time(NULL) < wake) {
			ts.tv_sec = 0;
			ts.tv_nsec = 200 * 1000 * 1000;
			nanosleep(&ts, NULL);
		}
	}
	fprintf(stderr, "agentid: bundle-sync: stopping\n");
	ret = 0;
out:
	agentid_keyset_free(status_keys);
	free_sources(&o);
	return ret;
}
