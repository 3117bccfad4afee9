
/*
 * ngx_http_agentid_module: types and functions shared by the files of the
 * module (private; not an interface for other modules).
 */


#ifndef _NGX_HTTP_AGENTID_H_INCLUDED_
#define _NGX_HTTP_AGENTID_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <agentid/agentid.h>


#define NGX_HTTP_AGENTID_DPOP_OFF        0
#define NGX_HTTP_AGENTID_DPOP_OPTIONAL   1
#define NGX_HTTP_AGENTID_DPOP_REQUIRED   2

#define NGX_HTTP_AGENTID_FAIL_OPEN       0
#define NGX_HTTP_AGENTID_FAIL_CLOSED     1

#define NGX_HTTP_AGENTID_SCHEME_NONE     0
#define NGX_HTTP_AGENTID_SCHEME_BEARER   1
#define NGX_HTTP_AGENTID_SCHEME_DPOP     2

/* $agentid_cache_status */
#define NGX_HTTP_AGENTID_CACHE_NONE      0
#define NGX_HTTP_AGENTID_CACHE_BYPASS    1
#define NGX_HTTP_AGENTID_CACHE_MISS      2
#define NGX_HTTP_AGENTID_CACHE_HIT       3

#define NGX_HTTP_AGENTID_DIGEST_LEN      32
#define NGX_HTTP_AGENTID_ID_LEN          16
#define NGX_HTTP_AGENTID_MAX_FILE        (1024 * 1024)
#define NGX_HTTP_AGENTID_MAX_FIELD       4096
#define NGX_HTTP_AGENTID_ETAG_LEN        256

/*
 * The identity of a verified token, as the variables expose it.  The same
 * fields are what the verified-token cache stores, in this order.
 */
enum {
    NGX_HTTP_AGENTID_F_SUBJECT = 0,
    NGX_HTTP_AGENTID_F_AGENT,
    NGX_HTTP_AGENTID_F_CHAIN,
    NGX_HTTP_AGENTID_F_DEPTH,
    NGX_HTTP_AGENTID_F_SCOPE,
    NGX_HTTP_AGENTID_F_TASK,
    NGX_HTTP_AGENTID_F_JTI,
    NGX_HTTP_AGENTID_F_TRUST_DOMAIN,
    NGX_HTTP_AGENTID_F_ISSUER,
    NGX_HTTP_AGENTID_F_PROFILE,
    NGX_HTTP_AGENTID_F_CNF_JKT,
    NGX_HTTP_AGENTID_F_CNF_X5T,
    NGX_HTTP_AGENTID_F_STATUS_URI,
    NGX_HTTP_AGENTID_F_STATUS_IDX,
    NGX_HTTP_AGENTID_F_COUNT
};


typedef struct {
    ngx_str_t                      path;
    ngx_str_t                      trust_domain;

    /* per-worker state */
    ngx_file_uniq_t                uniq;
    time_t                         mtime;
    off_t                          size;
    ngx_uint_t                     seen;
    struct agentid_bundle         *bundle;
    u_char                         digest[NGX_HTTP_AGENTID_DIGEST_LEN];
} ngx_http_agentid_file_t;


typedef struct {
    ngx_str_t                      url;
    ngx_str_t                      trust_domain;
    ngx_uint_t                     jwks;
    uint32_t                       id;
    ngx_str_t                      cafile;

    /* per-worker state */
    ngx_uint_t                     slot;
    ngx_uint_t                     generation;
    ngx_uint_t                     busy;
#if (NGX_THREADS)
    ngx_thread_task_t             *task;
#endif
    struct agentid_bundle         *bundle;
    u_char                         digest[NGX_HTTP_AGENTID_DIGEST_LEN];
} ngx_http_agentid_url_t;


#define NGX_HTTP_AGENTID_URL_SLOTS       32

/* What worker 0 fetched for one URL, in the "agentid_fetch" zone. */
typedef struct {
    uint32_t                       id;
    volatile ngx_uint_t            generation;
    volatile ngx_uint_t            want_refresh;
    time_t                         fetched;
    time_t                         next;
    size_t                         len;
    u_char                        *data;
    u_char                         digest[NGX_HTTP_AGENTID_DIGEST_LEN];
} ngx_http_agentid_url_slot_t;


typedef struct {
    ngx_http_agentid_url_slot_t    slot[NGX_HTTP_AGENTID_URL_SLOTS];
    ngx_queue_t                    status;     /* status list slots */
    ngx_uint_t                     nstatus;
} ngx_http_agentid_fetch_sh_t;


typedef struct {
    ngx_http_agentid_fetch_sh_t   *sh;
    ngx_slab_pool_t               *shpool;
} ngx_http_agentid_fetch_t;


typedef struct {
    ngx_http_agentid_url_t        *url;
    int                            rc;
    struct agentid_fetch_result    res;
    struct agentid_error           err;
} ngx_http_agentid_url_task_t;


/*
 * One source of trust: the bundle files and URLs of a configuration level,
 * shared by every location that inherits them.  Each worker keeps its own
 * parsed, immutable agentid_trust and swaps it when a source changes; the
 * digest of the sources' bytes identifies it in the verified-token cache
 * in the same way in every worker.
 */
typedef struct {
    ngx_array_t                   *files;      /* ngx_http_agentid_file_t */
    ngx_array_t                   *urls;       /* ngx_http_agentid_url_t */
    struct agentid_trust          *trust;
    u_char                         digest[NGX_HTTP_AGENTID_DIGEST_LEN];
    time_t                         checked;
} ngx_http_agentid_trust_t;


/*
 * One status list in the "agentid_fetch" zone, shared by every worker:
 * whichever worker finds it due takes the lease, fetches it in its thread
 * pool, verifies it and publishes the token's bytes with a new generation
 * (or only a new confirmation time when it did not change); the others
 * re-parse the bytes when the generation moves.
 */
typedef struct {
    ngx_queue_t                    queue;
    uint32_t                       status;     /* id of the status state */
    volatile ngx_uint_t            generation;
    time_t                         fetched;    /* last confirmed */
    time_t                         next;       /* next fetch due */
    time_t                         lease;      /* a worker fetches until */
    time_t                         seen;       /* a worker still uses it */
    time_t                         backoff;
    time_t                         ttl;
    size_t                         len;
    u_char                        *data;       /* the Status List Token */
    u_char                         digest[NGX_HTTP_AGENTID_DIGEST_LEN];
    size_t                         etag_len;
    u_char                         etag[NGX_HTTP_AGENTID_ETAG_LEN];
    size_t                         uri_len;
    u_char                         uri[1];
} ngx_http_agentid_status_slot_t;


typedef struct ngx_http_agentid_status_s  ngx_http_agentid_status_t;

/*
 * One list of a status state as one worker sees it: where it comes from,
 * its zone slot and the worker's own parsed copy, verified with the
 * worker's keys.  The request path reads only the parsed copy.
 */
typedef struct {
    ngx_http_agentid_status_t     *status;
    ngx_str_t                      uri;        /* NUL-terminated */
    ngx_str_t                      file;       /* empty: fetched from uri */

    /* per-worker state */
    ngx_http_agentid_status_slot_t *slot;
    ngx_uint_t                     generation; /* of the bytes last judged */
    ngx_uint_t                     keys_gen;   /* of the keys they met */
    ngx_uint_t                     current;    /* list is those bytes */
    struct agentid_status_list    *list;
    time_t                         confirmed;
    int64_t                        exp;
    ngx_uint_t                     busy;
#if (NGX_THREADS)
    ngx_thread_task_t             *task;
#endif
} ngx_http_agentid_status_src_t;


/*
 * Revocation settings of one trust source: the lists its tokens name,
 * and per worker the keys that must have signed them.
 */
struct ngx_http_agentid_status_s {
    ngx_http_agentid_trust_t      *trust;
    time_t                         max_age;
    time_t                         refresh;
    ngx_array_t                   *files;      /* ngx_keyval_t: uri, file */
    ngx_str_t                      cafile;
    uint32_t                       id;

    /* per-worker state */
    ngx_array_t                   *known;  /* ngx_http_agentid_status_src_t * */
    struct agentid_keyset         *keys;
    struct agentid_trust          *keys_trust;
    ngx_uint_t                     keys_gen;
};


typedef struct {
    ngx_http_agentid_status_src_t *src;
    ngx_uint_t                     fetch;      /* 1: fetch; 0: parse data */
    ngx_uint_t                     publish;    /* fetched: to the zone */
    ngx_uint_t                     generation;
    ngx_uint_t                     keys_gen;
    struct agentid_keyset         *keys;
    time_t                         now;
    time_t                         fetched;
    u_char                        *data;       /* ngx_alloc() or agentid */
    size_t                         len;
    ngx_uint_t                     data_agentid;
    char                           etag[NGX_HTTP_AGENTID_ETAG_LEN + 1];
    u_char                         digest[NGX_HTTP_AGENTID_DIGEST_LEN];
    ngx_uint_t                     unchanged;
    int                            rc;
    struct agentid_status_list_token *tok;
    struct agentid_error           err;
} ngx_http_agentid_status_task_t;


typedef struct {
    ngx_str_t                      path;
    ngx_str_t                      key;
    struct agentid_audit          *audit;      /* per worker */
} ngx_http_agentid_audit_t;


typedef struct {
    ngx_array_t                    trusts;     /* ngx_http_agentid_trust_t * */
    ngx_array_t                    statuses;   /* ngx_http_agentid_status_t * */
    ngx_array_t                    audits;     /* ngx_http_agentid_audit_t * */
    ngx_array_t                    urls;       /* ngx_http_agentid_url_t * */
    ngx_str_t                      fetch_ca;
    ngx_shm_zone_t                *fetch_zone;
#if (NGX_THREADS)
    ngx_thread_pool_t             *thread_pool;
#endif
    ngx_uint_t                     caches;     /* zones of lower levels */
    ngx_shm_zone_t                *replay_zone;
    size_t                         replay_size;
    ngx_uint_t                     dpop_used;
    ngx_uint_t                     status_used;
    ngx_uint_t                     urls_used;
    ngx_event_t                    timer;
} ngx_http_agentid_main_conf_t;


typedef struct {
    ngx_flag_t                     enable;
    ngx_str_t                      realm;
    ngx_uint_t                     profile;

    ngx_array_t                   *files;
    ngx_array_t                   *urls;
    ngx_array_t                   *issuers;    /* ngx_str_t */
    ngx_array_t                   *audiences;
    time_t                         leeway;

    ngx_array_t                   *scopes_all;
    ngx_array_t                   *scopes_any;
    ngx_array_t                   *agents;
    ngx_array_t                   *subjects;
    ngx_int_t                      max_depth;
    ngx_array_t                   *claims;     /* ngx_keyval_t */

    ngx_uint_t                     dpop;
    time_t                         dpop_max_age;
    ngx_flag_t                     mtls_binding;

    ngx_flag_t                     status_list;
    time_t                         status_max_age;
    time_t                         status_refresh;
    ngx_uint_t                     status_fail;
    ngx_array_t                   *status_files;

    ngx_str_t                      audit_file;
    ngx_str_t                      audit_key;

    ngx_shm_zone_t                *cache_zone;

    /* built when the configuration is merged */
    ngx_http_agentid_trust_t      *trust;
    ngx_http_agentid_status_t     *status;
    ngx_http_agentid_audit_t      *audit;
    struct agentid_verifier       *verifier;
    ngx_str_t                      scope_hint;
    u_char                         id[NGX_HTTP_AGENTID_ID_LEN];
} ngx_http_agentid_loc_conf_t;


typedef struct {
    ngx_int_t                      rc;
    ngx_http_agentid_loc_conf_t   *alcf;
    ngx_uint_t                     scheme;
    ngx_str_t                      token;
    ngx_str_t                      field[NGX_HTTP_AGENTID_F_COUNT];
    time_t                         expires;
    const char                    *error;
    enum agentid_reason            reason;
    json_t                        *claims;
    unsigned                       claims_parsed:1;
    unsigned                       cached:1;
    unsigned                       cache_status:2;
    unsigned                       dpop_recorded:1;
    unsigned                       identified:1; /* field[] from an
                                                    authentic token */
} ngx_http_agentid_ctx_t;


/* A node of the verified-token cache and of the DPoP replay cache. */
typedef struct {
    ngx_rbtree_node_t              node;
    ngx_queue_t                    queue;
    u_char                         key[NGX_HTTP_AGENTID_DIGEST_LEN];
    time_t                         expires;
    size_t                         len;
    u_char                         data[1];
} ngx_http_agentid_shm_node_t;


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    queue;
} ngx_http_agentid_shm_sh_t;


typedef struct {
    ngx_http_agentid_shm_sh_t     *sh;
    ngx_slab_pool_t               *shpool;
} ngx_http_agentid_shm_t;


void ngx_http_agentid_trust_refresh(ngx_http_agentid_trust_t *t,
    ngx_log_t *log);
ngx_int_t ngx_http_agentid_file_load(ngx_http_agentid_file_t *f,
    ngx_log_t *log);
ngx_int_t ngx_http_agentid_trust_rebuild(ngx_http_agentid_trust_t *t,
    ngx_log_t *log);
void ngx_http_agentid_trust_cleanup(void *data);
ngx_int_t ngx_http_agentid_init_fetch_zone(ngx_shm_zone_t *shm_zone,
    void *data);
void ngx_http_agentid_url_want_refresh(ngx_http_agentid_trust_t *t);
ngx_uint_t ngx_http_agentid_url_loopback(ngx_str_t *url);
int ngx_http_agentid_url_get(ngx_http_agentid_url_t *u,
    long timeout_ms, struct agentid_fetch_result *res,
    struct agentid_error *err);
void ngx_http_agentid_url_schedule(ngx_http_agentid_url_t *u,
    ngx_log_t *log);

ngx_int_t ngx_http_agentid_sha256(const void *a, size_t alen,
    const void *b, size_t blen, const void *c, size_t clen, u_char *out);
ngx_int_t ngx_http_agentid_init_shm_zone(ngx_shm_zone_t *shm_zone,
    void *data);
ngx_int_t ngx_http_agentid_shm_put(ngx_shm_zone_t *zone,
    const u_char *key, time_t expires, time_t now, ngx_str_t *data,
    ngx_uint_t unique);
ngx_int_t ngx_http_agentid_cache_key(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx,
    u_char *key);
ngx_int_t ngx_http_agentid_cache_get(ngx_http_request_t *r,
    ngx_http_agentid_ctx_t *ctx, const u_char *key);
void ngx_http_agentid_cache_put(ngx_http_request_t *r,
    ngx_http_agentid_ctx_t *ctx, const u_char *key);

ngx_int_t ngx_http_agentid_status_check(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx,
    struct agentid_error *err);
void ngx_http_agentid_audit(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx);
ngx_http_agentid_status_src_t *ngx_http_agentid_status_known(
    ngx_http_agentid_status_t *st, ngx_str_t *uri, ngx_str_t *file,
    ngx_pool_t *pool, ngx_uint_t *added);
void ngx_http_agentid_status_exit(ngx_http_agentid_status_t *st);
void ngx_http_agentid_init_worker(ngx_http_agentid_main_conf_t *amcf,
    ngx_log_t *log);
void ngx_http_agentid_tick(ngx_event_t *ev);


extern ngx_module_t  ngx_http_agentid_module;


#endif /* _NGX_HTTP_AGENTID_H_INCLUDED_ */
