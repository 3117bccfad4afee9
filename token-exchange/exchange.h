/*
 * agentid-exchange: private declarations shared by the server's sources.
 *
 * Process layout: the main thread owns configuration and signals; N worker
 * threads each run one event loop with their own evhttp instances bound to
 * SO_REUSEPORT listeners.  Everything a request needs that SIGHUP may
 * replace (configuration, trust bundles, verifiers, issuer keys, policy) is
 * one reference-counted struct xc_runtime; workers pick up a new one between
 * requests, so the hot path takes no lock for it.  The store, metrics and
 * the audit writer live for the whole process.
 */
#ifndef AGENTID_EXCHANGE_H
#define AGENTID_EXCHANGE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include <agentid/agentid.h>

struct evhttp_request;
struct evbuffer;

#define XC_TOKEN_EXCHANGE_GRANT "urn:ietf:params:oauth:grant-type:token-exchange"
#define XC_TT_JWT "urn:ietf:params:oauth:token-type:jwt"
#define XC_TT_ACCESS "urn:ietf:params:oauth:token-type:access_token"
#define XC_ASSERTION_JWT_SPIFFE "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"

/* ------------------------------------------------------------ configuration (config.c) */

enum xc_client_cert { XC_CLIENT_CERT_NONE = 0, XC_CLIENT_CERT_OPTIONAL, XC_CLIENT_CERT_REQUIRED };

struct xc_listen {
	char *addr; /* numeric address, e.g. "127.0.0.1" or "::1"; NULL for unix */
	int port;
	int tls;
	char *unix_path; /* unix-domain socket (plain HTTP behind a local proxy) */
	int unix_mode; /* permissions of the socket file; -1 = umask default */
};

struct xc_trust_domain {
	char *name;
	char *bundle_file;
	char *bundle_url; /* https_web bundle endpoint, refreshed per spiffe_refresh_hint */
	char *bundle_ca; /* PEM CAs for bundle_url's certificate; NULL: system store */
};

struct xc_external_issuer {
	char *issuer;
	char *jwks_file;
	char *jwks_url;
	char *jwks_ca; /* PEM CAs for jwks_url's certificate; NULL: system store */
	char **audiences;
	size_t n_audiences;
	char *subject_claim; /* default "sub" */
};

struct xc_rule {
	char *name;
	int line;
	char **agents; /* SPIFFE ID patterns of the acting agent */
	size_t n_agents;
	char **subjects; /* SPIFFE ID patterns, or external subjects ("*" = any) */
	size_t n_subjects;
	char *subject_issuer; /* set: the rule matches user tokens of this external issuer */
	char **scopes; /* allowed scopes */
	size_t n_scopes;
	char **audiences; /* allowed audiences / resources */
	size_t n_audiences;
	char **delegate_to; /* agents this agent may delegate to (patterns) */
	size_t n_delegate_to;
	char **clients; /* further clients allowed to request for this agent */
	size_t n_clients;
	long max_lifetime; /* seconds; 0 = global maximum */
	int max_depth; /* act hops; -1 = global maximum */
	int require_binding;

	/* compiled */
	struct agentid_spiffe_patterns *agent_pats;
	struct agentid_spiffe_patterns *subject_pats; /* NULL for external subjects */
	struct agentid_spiffe_patterns *delegate_pats;
	struct agentid_spiffe_patterns *client_pats;
	struct agentid_scopes *scope_set;
};

struct xc_config {
	char *path;

	struct xc_listen *listens;
	size_t n_listens;
	char *tls_cert;
	char *tls_key;
	enum xc_client_cert client_cert;
	int threads;
	size_t max_body;
	size_t max_headers;
	int timeout; /* read/write/idle seconds */
	int request_timeout; /* seconds from a request's first byte to its end; 0 = off */
	int max_connections; /* open connections of the process; 0 = unlimited */

	char *issuer; /* "https://host:port" (no trailing slash) */
	char *token_endpoint; /* issuer + "/token" unless configured */
	char **audiences; /* what incoming JWT-SVIDs must be addressed to */
	size_t n_audiences;

	char *key_current;
	char *key_next;
	char **keys_retired;
	size_t n_keys_retired;
	char *alg; /* ES256 by default */
	long default_lifetime;
	long max_lifetime;
	int max_depth;
	long leeway;
	int bind_mtls; /* bind tokens of mTLS clients even when policy does not require */

	struct xc_trust_domain *tds;
	size_t n_tds;
	struct xc_external_issuer *ext;
	size_t n_ext;
	long refresh_min; /* key_refresh: floor for spiffe_refresh_hint, seconds */
	long refresh_interval; /* key_refresh: without a hint, seconds */

	char *store_driver; /* "sqlite" or "postgres" */
	char *store_path; /* sqlite file */
	char *store_conninfo; /* libpq connection string */

	char *audit_file;
	char *audit_key;

	long status_list_size; /* entries per list */
	long status_list_ttl; /* seconds */

	long dpop_window; /* seconds of iat skew accepted */

	char **admin_ids; /* SPIFFE ID patterns allowed to use the admin API */
	size_t n_admin_ids;
	char **introspect_ids; /* allowed to introspect; empty = any authenticated client */
	size_t n_introspect_ids;

	char *log_target; /* "stderr" or "syslog" */
	char *log_level;

	struct xc_rule *rules;
	size_t n_rules;
};

/* Loads and validates FILE; on error writes "FILE:LINE: message" into errbuf and returns -1. */
int xc_config_load(const char *path, struct xc_config **out, char *errbuf, size_t errlen);
void xc_config_free(struct xc_config *c);

/* ------------------------------------------------------------ issuer keys (issuer.c) */

struct xc_issuer {
	struct agentid_key *current; /* signs */
	enum agentid_alg alg;
	struct agentid_keyset *verify; /* current + next + retired: verifies our own tokens */
	char *jwks_json; /* the published JWK Set */
};

int xc_issuer_load(const struct xc_config *c, struct xc_issuer **out, char *errbuf, size_t errlen);
void xc_issuer_free(struct xc_issuer *is);
/* Signs claims with the current key and header typ; *out to free(). */
int xc_issuer_sign(const struct xc_issuer *is, const char *typ, const json_t *claims, char **out);
/* The same from claims already serialised as compact JSON text (payload[0..len)). */
int xc_issuer_sign_text(
    const struct xc_issuer *is, const char *typ, const char *payload, size_t len, char **out);

/* ------------------------------------------------------------ runtime (main.c) */

struct xc_external {
	const struct xc_external_issuer *cfg;
	struct agentid_keyset *keys;
};

struct xc_runtime {
	atomic_uint refs;
	unsigned generation;
	struct xc_config *cfg;
	struct agentid_trust *trust;
	struct agentid_verifier *svid_verifier; /* JWT-SVIDs addressed to us */
	struct xc_issuer *issuer;
	struct xc_external *ext;
	size_t n_ext;
	struct agentid_spiffe_patterns *admin_pats;
	struct agentid_spiffe_patterns *introspect_pats;
	char *metadata_json; /* RFC 8414 document */
	SSL_CTX *ssl_ctx; /* NULL without TLS listeners */
	time_t bundles_loaded;
};

int xc_runtime_build(struct xc_config *cfg, unsigned generation, struct xc_runtime **out,
    char *errbuf, size_t errlen);
struct xc_runtime *xc_runtime_ref(struct xc_runtime *rt);
void xc_runtime_unref(struct xc_runtime *rt);
/* The newest runtime (a new reference).  Cheap: one mutex only when the generation moved. */
struct xc_runtime *xc_runtime_current(void);

/* ------------------------------------------------------------ store (store*.c) */

struct xc_ledger_entry {
	char jti[64];
	char *parent_jti;
	char *root_jti;
	char *subject;
	char *subject_iss; /* external issuer of a user subject; NULL for SPIFFE subjects */
	char *actor;
	char *client_id;
	char *task;
	char *scope;
	char *aud; /* JSON array text */
	char *act; /* JSON text of the act claim */
	char *cnf; /* JSON text of cnf, or NULL */
	int64_t iat;
	int64_t exp;
	int64_t status_idx; /* global index: list = idx / size, bit = idx % size */
	int revoked;
};

enum xc_revoke_by { XC_REVOKE_JTI, XC_REVOKE_AGENT, XC_REVOKE_SUBJECT, XC_REVOKE_TASK };

struct xc_store_ops {
	const char *name;
	int (*migrate)(void *db);
	/*
	 * 0 written; AGENTID_EREJECTED when the backend refuses the row because
	 * its parent is revoked (checked atomically with the insert); other errors.
	 */
	int (*ledger_insert)(void *db, const struct xc_ledger_entry *e);
	/*
	 * Optional: inserts n rows in one transaction, res[i] = the result for
	 * row i.  Without it the store inserts them one by one.
	 */
	int (*ledger_insert_many)(void *db, const struct xc_ledger_entry *e, size_t n, int *res);
	/* 0 found, AGENTID_ENOTFOUND, or another error */
	int (*ledger_get)(void *db, const char *jti, struct xc_ledger_entry *e);
	/* Revokes the matching tokens and all their descendants; *n = number newly revoked. */
	int (*revoke)(void *db, enum xc_revoke_by by, const char *value, int64_t now, long *n);
	/* Fills bits of list `list` (size entries) with revoked, unexpired tokens. */
	int (*status_bits)(void *db, int64_t first, int64_t count, unsigned char *bits);
	/* Reserves count consecutive status indexes; *first = first one. */
	int (*status_reserve)(void *db, int64_t count, int64_t *first);
	/* A counter bumped by every revocation (to invalidate cached lists). */
	int (*revocation_epoch)(void *db, int64_t *epoch);
	/* 0 stored, AGENTID_EREJECTED when jti was already seen. */
	int (*replay_check)(void *db, const char *jti, int64_t exp);
	/* Deletes expired rows: 0 done, 1 when called again it would delete more. */
	int (*prune)(void *db, int64_t now);
	/* Optional: moves committed pages from the log into the database (SQLite WAL). */
	int (*checkpoint)(void *db);
	/* Optional: 0 while the database is known to be unreachable; lock-free. */
	int (*available)(void *db);
	/* Optional: off the request path, tries to reconnect an unreachable database. */
	void (*probe)(void *db);
	void (*close)(void *db);
};

struct xc_store {
	const struct xc_store_ops *ops;
	void *db;
	pthread_mutex_t lock;
	pthread_mutex_t alloc_lock;
	int64_t alloc_next; /* status indexes reserved in memory */
	int64_t alloc_end;
};

int xc_store_open(const struct xc_config *c, struct xc_store **out, char *errbuf, size_t errlen);
void xc_store_close(struct xc_store *s);
void xc_ledger_entry_clear(struct xc_ledger_entry *e);
int xc_store_ledger_insert(struct xc_store *s, const struct xc_ledger_entry *e);
/* Checkpoints the log (SQLite WAL) off the request path; called by the main thread's tick. */
int xc_store_checkpoint(struct xc_store *s);
/* 1 unless the database is known to be unreachable (for /healthz; never blocks). */
int xc_store_available(struct xc_store *s);
/* Reconnects an unreachable database; called by the main thread's tick, skipped when busy. */
void xc_store_probe(struct xc_store *s);

/*
 * Group commit of ledger rows, one batch per worker thread.  A request
 * that issues a token queues its row with xc_batch_add; at the end of the
 * event-loop pass that handled it (when the requests that arrived
 * together have all been handled) the batch writes every queued row in one
 * transaction and then calls each done(0 or error, arg), which sends the
 * response.  No token leaves the server before its row is committed, and
 * one commit (one WAL append) serves many exchanges.
 */
struct xc_batch;
struct event_base;
typedef void (*xc_batch_done_fn)(int rc, void *arg);
struct xc_batch *xc_batch_new(struct event_base *base, struct xc_store *store);
/* Commits what is queued, then frees. */
void xc_batch_free(struct xc_batch *b);
/* Copies e; on success done(rc, arg) is called exactly once, later, from the batch's loop. */
int xc_batch_add(
    struct xc_batch *b, const struct xc_ledger_entry *e, xc_batch_done_fn done, void *arg);
int xc_store_ledger_get(struct xc_store *s, const char *jti, struct xc_ledger_entry *e);
int xc_store_revoke(struct xc_store *s, enum xc_revoke_by by, const char *value, long *n);
int xc_store_status_bits(struct xc_store *s, int64_t first, int64_t count, unsigned char *bits);
int xc_store_status_alloc(struct xc_store *s, int64_t *idx);
int xc_store_revocation_epoch(struct xc_store *s, int64_t *epoch);
int xc_store_replay_check(struct xc_store *s, const char *jti, int64_t exp);
int xc_store_prune(struct xc_store *s);

int xc_store_sqlite_open(const char *path, void **db, char *errbuf, size_t errlen);
extern const struct xc_store_ops xc_store_sqlite_ops;
int xc_store_pg_open(const char *conninfo, void **db, char *errbuf, size_t errlen);
extern const struct xc_store_ops xc_store_pg_ops;

/* ------------------------------------------------------------ HTTP helpers (http.c) */

/* The request context handed to endpoint handlers. */
struct xc_req {
	struct evhttp_request *req;
	struct xc_runtime *rt;
	struct xc_store *store;
	int tls;
	const char *peer_addr;
	/* mTLS client: the verified X.509-SVID's SPIFFE ID and certificate, when presented. */
	X509 *peer_cert; /* borrowed from the connection */
	const char *peer_id; /* NULL when no valid X.509-SVID */
	int peer_cert_bad; /* a certificate was presented and did not validate */
	struct agentid_error peer_err;
	int status; /* HTTP status sent, for metrics */
	struct xc_batch *batch; /* the worker's ledger batch (NULL: insert at once) */
	struct timespec t0; /* when dispatch started, for the latency histogram */
	int deferred; /* the response is sent later, by the batch */
};

enum xc_endpoint {
	XC_EP_TOKEN = 0,
	XC_EP_REVOKE,
	XC_EP_INTROSPECT,
	XC_EP_ADMIN,
	XC_EP_STATUSLIST,
	XC_EP_JWKS,
	XC_EP_METADATA,
	XC_EP_HEALTH,
	XC_EP_METRICS,
	XC_EP_OTHER,
	XC_EP__COUNT
};

/* Sends body as application/json with Cache-Control: no-store and Pragma: no-cache. */
void xc_send_json(struct xc_req *r, int code, const json_t *body);
void xc_send_json_text(
    struct xc_req *r, int code, const char *text, const char *ctype, int cacheable);
/* RFC 6749 section 5.2 error; code 400 or 401 (invalid_client). */
void xc_send_oauth_error(struct xc_req *r, int code, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void xc_send_plain_error(struct xc_req *r, int code, const char *text);
/*
 * Checks method POST and content type application/x-www-form-urlencoded and
 * extracts the body.  On failure the error response was sent and -1 returned.
 */
struct xc_form;
int xc_read_form(struct xc_req *r, struct xc_form **out);

/* ------------------------------------------------------------ forms (form.c) */

#define XC_FORM_MAX_PARAMS 64

/* Strict application/x-www-form-urlencoded parse; errbuf says why on -1. */
int xc_form_parse(const char *body, size_t len, struct xc_form **out, char *errbuf, size_t errlen);
/* The single value of name, or NULL. */
const char *xc_form_get(const struct xc_form *f, const char *name);
/* Number of values of name (repeatable parameters), and the i-th. */
size_t xc_form_count(const struct xc_form *f, const char *name);
const char *xc_form_get_nth(const struct xc_form *f, const char *name, size_t i);
void xc_form_free(struct xc_form *f);

/* ------------------------------------------------------------ client authentication (token.c) */

/*
 * Authenticates the client: JWT-SVID client assertion or mTLS X.509-SVID.
 * On success *client_id points into storage owned by ctx (valid for the
 * request).  On failure the invalid_client response is sent and -1 returned.
 */
struct xc_client {
	char *id;
	int via_mtls;
};
int xc_client_authenticate(struct xc_req *r, const struct xc_form *f, struct xc_client *out);
void xc_client_clear(struct xc_client *c);

/* ------------------------------------------------------------ handlers */

void xc_handle_token(struct xc_req *r);
void xc_handle_revoke(struct xc_req *r);
void xc_handle_introspect(struct xc_req *r);
void xc_handle_admin_revoke(struct xc_req *r);
void xc_handle_statuslist(struct xc_req *r, const char *n);

/* ------------------------------------------------------------ policy (policy.c) */

int xc_policy_compile(struct xc_config *c, char *errbuf, size_t errlen);
void xc_policy_free(struct xc_config *c);
/*
 * First rule whose agent patterns match agent and whose subject matches:
 * SPIFFE subject (ext_issuer NULL) by pattern, or external subject of
 * ext_issuer by exact value or "*".  NULL when none.
 */
const struct xc_rule *xc_policy_match(
    const struct xc_config *c, const char *agent, const char *subject, const char *ext_issuer);

/* ------------------------------------------------------------ own tokens (token.c) */

/*
 * Verifies one of our own access tokens: signature with our keys, typ
 * at+jwt, iss, exp (unless allow_expired).  Ledger state is the caller's
 * business.  *claims is a new reference.
 */
int xc_own_token_verify(const struct xc_runtime *rt, const char *tok, time_t now, int allow_expired,
    json_t **claims, struct agentid_error *err);

/* ------------------------------------------------------------ DPoP (dpop.c) */

/*
 * Validates a DPoP proof (RFC 9449 section 4.3) for method htm and URI htu:
 * typ dpop+jwt, asymmetric alg, public jwk, signature, htm, htu, iat within
 * window, jti unique (replay cache in the store).  *jkt = RFC 7638
 * thumbprint of the proof key.
 */
int xc_dpop_verify(struct xc_store *store, const char *proof, const char *htm, const char *htu,
    time_t now, long window, char jkt[AGENTID_THUMBPRINT_LEN + 1], struct agentid_error *err);

/* ------------------------------------------------------------ status lists (revocation.c) */

/* "https://issuer/statuslists/N" */
int xc_status_uri(const struct xc_runtime *rt, int64_t list, char **out);

/* ------------------------------------------------------------ metrics (metrics.c) */

void xc_metrics_request(enum xc_endpoint ep, int status);
void xc_metrics_exchange_latency(double seconds);
void xc_metrics_issued(void);
void xc_metrics_revoked(long n);
void xc_metrics_set_bundle_time(time_t t);
/* Prometheus text exposition into buf. */
int xc_metrics_render(struct evbuffer *buf);

/* ------------------------------------------------------------ remote keys (remote.c) */

enum xc_remote_kind { XC_REMOTE_BUNDLE, XC_REMOTE_JWKS };

/*
 * Fetches every bundle_url and jwks_url of c now (main thread only; blocks
 * up to the fetch timeout per source).  1 when the keys of a source
 * changed, so the runtime should be rebuilt; 0 otherwise.  Failures are
 * logged and counted; the last good keys stay.
 */
int xc_remote_refresh(const struct xc_config *c);
/*
 * The last good body of a source (a copy, to free()); a source not seen
 * before is fetched first.  -1 when it has none: errbuf says why.
 */
int xc_remote_body(enum xc_remote_kind kind, const char *name, const char *url, const char *ca,
    char **body, size_t *len, char *errbuf, size_t errlen);
/* Forgets the sources c does not name (after c went live). */
void xc_remote_retain(const struct xc_config *c);
/*
 * Seconds until the next refresh of c's sources (0: none): the smallest
 * spiffe_refresh_hint, key_refresh.interval for sources without one, at
 * most 30 s while a source fails, never below key_refresh.min_interval
 * (*raised = 1 when a hint was raised to it).
 */
long xc_remote_interval(const struct xc_config *c, int *raised);
/* When the oldest keys in use were fetched; 0 when a source has none; dflt without sources. */
time_t xc_remote_oldest(const struct xc_config *c, time_t dflt);
/* Per-source gauges and counters for /metrics. */
void xc_remote_metrics(struct evbuffer *b);
void xc_remote_free(void);

/* ------------------------------------------------------------ audit (audit_glue.c) */

struct xc_audit_event {
	const char *event; /* exchange.granted, exchange.denied, token.revoked */
	const char *agent;
	const char *subject;
	const json_t *act; /* the act claim (nested), for the chain */
	const char *task;
	const char *jti;
	const char *parent_jti;
	const char *iss;
	const json_t *aud;
	const char *scope;
	const char *scope_requested;
	const char *decision; /* "allow" / "deny" */
	const char *reason; /* stable reason code or OAuth error */
	const char *client;
};

int xc_audit_open(const struct xc_config *c, char *errbuf, size_t errlen);
void xc_audit_record(const struct xc_audit_event *ev);
void xc_audit_tick(void);
void xc_audit_close(void);

/* ------------------------------------------------------------ server (server.c) */

int xc_tls_ctx_new(const struct xc_config *c, SSL_CTX **out, char *errbuf, size_t errlen);
/* Binds listeners and starts the worker threads; returns when they are running. */
int xc_server_start(
    struct xc_runtime *rt, struct xc_store *store, int threads, char *errbuf, size_t errlen);
/* Stops accepting, lets in-flight responses drain, joins the workers. */
void xc_server_stop(void);
/* Publishes a new runtime; workers switch to it before their next request. */
void xc_runtime_publish(struct xc_runtime *rt);

/* ------------------------------------------------------------ connections (conn.c) */

struct bufferevent;
/* Sizes the descriptor table; once, before the workers start.  -1 on failure. */
int xc_conn_init(void);
void xc_conn_fini(void);
/*
 * The bufferevent of a new connection (evhttp's bevcb), TLS when ssl is set
 * (ownership moves), with the request deadline and the connection cap.
 */
struct bufferevent *xc_conn_bev_new(
    struct event_base *base, SSL *ssl, int request_timeout, int max_connections);
/* Called by the request handler: the request arrived complete, stop its deadline. */
void xc_conn_request(struct evhttp_request *req);
/* Open connections; connections closed because a request missed its deadline. */
int xc_conn_live(void);
long xc_conn_deadline_closed(void);

/* ------------------------------------------------------------ sd_notify (main.c) */

/* Sends STATE to $NOTIFY_SOCKET (systemd's readiness protocol); no-op without it. */
void xc_notify(const char *state);

/* ------------------------------------------------------------ misc (main.c) */

void xc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern struct xc_store *xc_global_store;

#endif
