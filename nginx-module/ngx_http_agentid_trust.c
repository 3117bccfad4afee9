
/*
 * ngx_http_agentid_module: trust.  Bundle files re-read when they change,
 * and keys fetched from URLs by worker 0 (in the thread pool) and shared
 * with every worker through a zone; each worker keeps its own immutable
 * agentid_trust per source and swaps it when a source changes.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/rand.h>

#include <agentid/agentid.h>

#include "ngx_http_agentid.h"


static ngx_http_agentid_url_slot_t *ngx_http_agentid_url_slot(
    ngx_http_agentid_url_t *u);
static ngx_int_t ngx_http_agentid_url_load(ngx_http_agentid_url_t *u,
    ngx_log_t *log);
#if (NGX_THREADS)
static void ngx_http_agentid_url_thread(void *data, ngx_log_t *log);
static void ngx_http_agentid_url_done(ngx_event_t *ev);
#endif


/* ---------------------------------------------------------------------
 * Trust: bundle files (and fetched bundles), one immutable agentid_trust
 * per source and worker
 */


void
ngx_http_agentid_trust_refresh(ngx_http_agentid_trust_t *t, ngx_log_t *log)
{
    ngx_uint_t                i, changed;
    ngx_http_agentid_url_t   *u;
    ngx_http_agentid_file_t  *f;

    if (t->checked == ngx_time()) {
        return;
    }

    t->checked = ngx_time();
    changed = 0;

    if (t->files != NULL) {
        f = t->files->elts;
        for (i = 0; i < t->files->nelts; i++) {
            if (ngx_http_agentid_file_load(&f[i], log) == NGX_OK) {
                changed = 1;
            }
        }
    }

    if (t->urls != NULL) {
        u = t->urls->elts;
        for (i = 0; i < t->urls->nelts; i++) {
            if (ngx_http_agentid_url_load(&u[i], log) == NGX_OK) {
                changed = 1;
            }
        }
    }

    if (changed || t->trust == NULL) {
        (void) ngx_http_agentid_trust_rebuild(t, log);
    }
}


/*
 * Re-reads a bundle file when its inode, size or mtime changed.  NGX_OK
 * when a new bundle replaced the old one; NGX_DECLINED when nothing
 * changed or the new content is unusable (the previous keys stay in use:
 * stale-if-error).
 */
ngx_int_t
ngx_http_agentid_file_load(ngx_http_agentid_file_t *f, ngx_log_t *log)
{
    int                     rv;
    u_char                  digest[NGX_HTTP_AGENTID_DIGEST_LEN];
    u_char                 *buf;
    ssize_t                 n;
    ngx_fd_t                fd;
    ngx_int_t               rc;
    ngx_file_info_t         fi;
    struct agentid_error    err;
    struct agentid_bundle  *b;

    if (ngx_file_info(f->path.data, &fi) == NGX_FILE_ERROR) {
        if (f->seen != (ngx_uint_t) -1) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "agentid: bundle \"%V\" is not readable%s",
                          &f->path, f->bundle ? ", keeping the old keys" : "");
            f->seen = (ngx_uint_t) -1;
        }
        return NGX_DECLINED;
    }

    if (f->seen == 1
        && f->uniq == ngx_file_uniq(&fi)
        && f->mtime == ngx_file_mtime(&fi)
        && f->size == ngx_file_size(&fi))
    {
        return NGX_DECLINED;
    }

    f->seen = 1;
    f->uniq = ngx_file_uniq(&fi);
    f->mtime = ngx_file_mtime(&fi);
    f->size = ngx_file_size(&fi);

    if (f->size > NGX_HTTP_AGENTID_MAX_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "agentid: bundle \"%V\" is too large", &f->path);
        return NGX_DECLINED;
    }

    fd = ngx_open_file(f->path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      ngx_open_file_n " \"%V\" failed", &f->path);
        return NGX_DECLINED;
    }

    buf = ngx_alloc(f->size + 1, log);
    if (buf == NULL) {
        ngx_close_file(fd);
        return NGX_DECLINED;
    }

    n = ngx_read_fd(fd, buf, f->size + 1);
    ngx_close_file(fd);

    if (n < 0 || n > f->size) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "agentid: reading bundle \"%V\" failed (or it grew)",
                      &f->path);
        /* read again at the next check */
        f->seen = 0;
        ngx_free(buf);
        return NGX_DECLINED;
    }

    rc = ngx_http_agentid_sha256(buf, n, NULL, 0, NULL, 0, digest);

    if (rc != NGX_OK
        || (f->bundle != NULL && ngx_memcmp(digest, f->digest, 32) == 0))
    {
        ngx_free(buf);
        return NGX_DECLINED;
    }

    b = NULL;
    agentid_error_clear(&err);

    if (n > 10 && ngx_strncmp(buf, "-----BEGIN", 10) == 0) {
        rv = agentid_bundle_load_file(f->trust_domain.len
                                      ? (char *) f->trust_domain.data : NULL,
                                      (char *) f->path.data, &b, &err);
    } else {
        rv = agentid_bundle_parse(f->trust_domain.len
                                  ? (char *) f->trust_domain.data : NULL,
                                  (char *) buf, n, &b, &err);
    }

    ngx_free(buf);

    if (rv != 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "agentid: bundle \"%V\" rejected (%s: %s)%s",
                      &f->path, agentid_reason_code(err.reason), err.detail,
                      f->bundle ? ", keeping the old keys" : "");
        return NGX_DECLINED;
    }

    agentid_bundle_free(f->bundle);
    f->bundle = b;
    ngx_memcpy(f->digest, digest, sizeof(digest));

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "agentid: loaded bundle \"%V\"", &f->path);

    return NGX_OK;
}


ngx_int_t
ngx_http_agentid_trust_rebuild(ngx_http_agentid_trust_t *t, ngx_log_t *log)
{
    ngx_uint_t                i;
    EVP_MD_CTX               *md;
    unsigned int              dlen;
    struct agentid_trust     *trust;
    ngx_http_agentid_url_t   *u;
    ngx_http_agentid_file_t  *f;

    trust = NULL;
    md = EVP_MD_CTX_new();

    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1
        || agentid_trust_new(&trust) != 0)
    {
        goto failed;
    }

    if (t->files != NULL) {
        f = t->files->elts;
        for (i = 0; i < t->files->nelts; i++) {
            if (f[i].bundle == NULL) {
                continue;
            }

            if (agentid_trust_add_bundle(trust, f[i].bundle) != 0
                || EVP_DigestUpdate(md, f[i].digest, 32) != 1)
            {
                goto failed;
            }
        }
    }

    if (t->urls != NULL) {
        u = t->urls->elts;
        for (i = 0; i < t->urls->nelts; i++) {
            if (u[i].bundle == NULL) {
                continue;
            }

            if (agentid_trust_add_bundle(trust, u[i].bundle) != 0
                || EVP_DigestUpdate(md, u[i].digest, 32) != 1)
            {
                goto failed;
            }
        }
    }

    if (EVP_DigestFinal_ex(md, t->digest, &dlen) != 1) {
        goto failed;
    }

    EVP_MD_CTX_free(md);

    agentid_trust_free(t->trust);
    t->trust = trust;

    return NGX_OK;

failed:

    ngx_log_error(NGX_LOG_ALERT, log, 0, "agentid: cannot build trust");
    EVP_MD_CTX_free(md);
    agentid_trust_free(trust);

    return NGX_ERROR;
}


void
ngx_http_agentid_trust_cleanup(void *data)
{
    ngx_http_agentid_trust_t  *t = data;

    ngx_uint_t                i;
    ngx_http_agentid_url_t   *u;
    ngx_http_agentid_file_t  *f;

    if (t->files != NULL) {
        f = t->files->elts;
        for (i = 0; i < t->files->nelts; i++) {
            agentid_bundle_free(f[i].bundle);
            f[i].bundle = NULL;
        }
    }

    if (t->urls != NULL) {
        u = t->urls->elts;
        for (i = 0; i < t->urls->nelts; i++) {
            agentid_bundle_free(u[i].bundle);
            u[i].bundle = NULL;
        }
    }

    agentid_trust_free(t->trust);
    t->trust = NULL;
}


/* ---------------------------------------------------------------------
 * Fetched trust: agentid_jwks_url and agentid_bundle_url.  Worker 0
 * fetches in nginx's thread pool and publishes the bytes in the
 * "agentid_fetch" zone with a generation counter; every worker re-parses
 * a slot into its own immutable bundle when the generation moves.  The
 * zone holds the status lists too (ngx_http_agentid_status.c).
 */


ngx_int_t
ngx_http_agentid_init_fetch_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_agentid_fetch_t  *octx = data;

    ngx_http_agentid_fetch_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_calloc(ctx->shpool, sizeof(ngx_http_agentid_fetch_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_queue_init(&ctx->sh->status);

    return NGX_OK;
}


/*
 * The zone slot of u, found by the URL's identity; worker 0 claims a free
 * slot for a URL it has not seen.  NULL when there is none (yet).
 */
static ngx_http_agentid_url_slot_t *
ngx_http_agentid_url_slot(ngx_http_agentid_url_t *u)
{
    ngx_uint_t                     i;
    ngx_http_agentid_fetch_t      *fz;
    ngx_http_agentid_url_slot_t   *slot;
    ngx_http_agentid_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_agentid_module);

    if (amcf == NULL || amcf->fetch_zone == NULL) {
        return NULL;
    }

    fz = amcf->fetch_zone->data;
    slot = fz->sh->slot;

    if (u->slot < NGX_HTTP_AGENTID_URL_SLOTS && slot[u->slot].id == u->id) {
        return &slot[u->slot];
    }

    for (i = 0; i < NGX_HTTP_AGENTID_URL_SLOTS; i++) {
        if (slot[i].id == u->id) {
            u->slot = i;
            return &slot[i];
        }
    }

    if (ngx_worker != 0) {
        return NULL;
    }

    ngx_shmtx_lock(&fz->shpool->mutex);

    for (i = 0; i < NGX_HTTP_AGENTID_URL_SLOTS; i++) {
        if (slot[i].id == 0) {
            ngx_memzero(&slot[i], sizeof(ngx_http_agentid_url_slot_t));
            slot[i].id = u->id;
            u->slot = i;
            ngx_shmtx_unlock(&fz->shpool->mutex);
            return &slot[i];
        }
    }

    ngx_shmtx_unlock(&fz->shpool->mutex);

    ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                  "agentid: more than %d trust URLs", NGX_HTTP_AGENTID_URL_SLOTS);

    return NULL;
}


/* Re-parses u when worker 0 published new bytes; NGX_OK when it changed. */
static ngx_int_t
ngx_http_agentid_url_load(ngx_http_agentid_url_t *u, ngx_log_t *log)
{
    int                           rv;
    u_char                       *buf;
    u_char                        digest[NGX_HTTP_AGENTID_DIGEST_LEN];
    size_t                        len;
    ngx_uint_t                    gen;
    struct agentid_error          err;
    struct agentid_bundle        *b;
    ngx_http_agentid_fetch_t     *fz;
    ngx_http_agentid_url_slot_t  *slot;
    ngx_http_agentid_main_conf_t *amcf;

    slot = ngx_http_agentid_url_slot(u);

    if (slot == NULL || slot->generation == u->generation) {
        return NGX_DECLINED;
    }

    amcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_agentid_module);
    fz = amcf->fetch_zone->data;

    ngx_shmtx_lock(&fz->shpool->mutex);

    gen = slot->generation;
    len = slot->len;
    buf = (len && slot->data) ? ngx_alloc(len, log) : NULL;

    if (buf != NULL) {
        ngx_memcpy(buf, slot->data, len);
        ngx_memcpy(digest, slot->digest, sizeof(digest));
    }

    ngx_shmtx_unlock(&fz->shpool->mutex);

    u->generation = gen;

    if (buf == NULL) {
        return NGX_DECLINED;
    }

    if (u->bundle != NULL && ngx_memcmp(digest, u->digest, 32) == 0) {
        ngx_free(buf);
        return NGX_DECLINED;
    }

    b = NULL;
    agentid_error_clear(&err);

    rv = agentid_bundle_parse(u->trust_domain.len
                              ? (char *) u->trust_domain.data : NULL,
                              (char *) buf, len, &b, &err);
    ngx_free(buf);

    if (rv != 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "agentid: keys from \"%V\" rejected (%s: %s)",
                      &u->url, agentid_reason_code(err.reason), err.detail);
        return NGX_DECLINED;
    }

    agentid_bundle_free(u->bundle);
    u->bundle = b;
    ngx_memcpy(u->digest, digest, sizeof(digest));

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "agentid: keys from \"%V\" updated", &u->url);

    return NGX_OK;
}


/* A request met an unknown kid: ask worker 0 for an early refresh. */
void
ngx_http_agentid_url_want_refresh(ngx_http_agentid_trust_t *t)
{
    ngx_uint_t                    i;
    ngx_http_agentid_url_t       *u;
    ngx_http_agentid_url_slot_t  *slot;

    if (t == NULL || t->urls == NULL) {
        return;
    }

    u = t->urls->elts;
    for (i = 0; i < t->urls->nelts; i++) {
        slot = ngx_http_agentid_url_slot(&u[i]);
        if (slot != NULL) {
            slot->want_refresh = 1;
        }
    }
}


ngx_uint_t
ngx_http_agentid_url_loopback(ngx_str_t *url)
{
    if (url->len >= 7 && ngx_strncmp(url->data, "https://", 8) == 0) {
        return 0;
    }

    /* plain http only to this host: a test or a local sidecar */
    return (ngx_strncmp(url->data, "http://127.", 11) == 0
            || ngx_strncmp(url->data, "http://localhost:", 17) == 0
            || ngx_strncmp(url->data, "http://localhost/", 17) == 0
            || ngx_strncmp(url->data, "http://[::1]", 12) == 0);
}


/* Blocking: at configuration time (in the master) or in a pool thread. */
int
ngx_http_agentid_url_get(ngx_http_agentid_url_t *u, long timeout_ms,
    struct agentid_fetch_result *res, struct agentid_error *err)
{
    struct agentid_fetch_opts  opts;

    agentid_fetch_opts_init(&opts);
    opts.timeout_ms = timeout_ms;
    opts.max_bytes = NGX_HTTP_AGENTID_MAX_FILE;
    opts.accept = u->jwks ? "application/jwk-set+json, application/json"
                          : "application/json";
    opts.allow_http = (int) ngx_http_agentid_url_loopback(&u->url);
    opts.cafile = u->cafile.len ? (const char *) u->cafile.data : NULL;

    return agentid_fetch((const char *) u->url.data, &opts, res, err);
}


#if (NGX_THREADS)

static void
ngx_http_agentid_url_thread(void *data, ngx_log_t *log)
{
    ngx_http_agentid_url_task_t  *ctx = data;

    ngx_memzero(&ctx->res, sizeof(struct agentid_fetch_result));
    agentid_error_clear(&ctx->err);

    ctx->rc = ngx_http_agentid_url_get(ctx->url, 5000, &ctx->res, &ctx->err);
}


static void
ngx_http_agentid_url_done(ngx_event_t *ev)
{
    ngx_http_agentid_url_task_t  *ctx = ev->data;

    int                           rv;
    u_char                        digest[NGX_HTTP_AGENTID_DIGEST_LEN];
    u_char                       *data;
    time_t                        now, interval;
    int64_t                       hint;
    ngx_http_agentid_url_t       *u;
    struct agentid_error          err;
    struct agentid_bundle        *b;
    ngx_http_agentid_fetch_t     *fz;
    ngx_http_agentid_url_slot_t  *slot;
    ngx_http_agentid_main_conf_t *amcf;

    u = ctx->url;
    u->busy = 0;
    now = ngx_time();

    amcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_agentid_module);
    fz = amcf->fetch_zone->data;
    slot = ngx_http_agentid_url_slot(u);

    if (slot == NULL) {
        goto done;
    }

    if (ctx->rc != 0 || ctx->res.body == NULL) {
        /* stale-if-error: the published keys stay, retry soon */
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "agentid: fetching \"%V\" failed: %s%s%s",
                      &u->url, agentid_strerror(ctx->rc),
                      ctx->err.detail[0] ? ": " : "", ctx->err.detail);
        slot->next = now + 10;
        goto done;
    }

    b = NULL;
    agentid_error_clear(&err);

    rv = agentid_bundle_parse(u->trust_domain.len
                              ? (char *) u->trust_domain.data : NULL,
                              ctx->res.body, ctx->res.len, &b, &err);
    if (rv != 0) {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "agentid: keys from \"%V\" rejected (%s: %s), keeping "
                      "the old ones", &u->url,
                      agentid_reason_code(err.reason), err.detail);
        slot->next = now + 10;
        goto done;
    }

    hint = agentid_bundle_refresh_hint(b);
    agentid_bundle_free(b);

    interval = (hint > 0) ? (time_t) ngx_min(hint, 86400) : 300;

    if (ngx_http_agentid_sha256(ctx->res.body, ctx->res.len, NULL, 0, NULL, 0,
                                digest)
        != NGX_OK)
    {
        goto done;
    }

    ngx_shmtx_lock(&fz->shpool->mutex);

    slot->fetched = now;
    slot->next = now + interval;

    if (slot->data == NULL || ngx_memcmp(slot->digest, digest, 32) != 0) {
        data = ngx_slab_alloc_locked(fz->shpool, ctx->res.len);

        if (data == NULL) {
            ngx_shmtx_unlock(&fz->shpool->mutex);
            ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                          "agentid: no room for \"%V\" in the fetch zone",
                          &u->url);
            goto done;
        }

        if (slot->data != NULL) {
            ngx_slab_free_locked(fz->shpool, slot->data);
        }

        ngx_memcpy(data, ctx->res.body, ctx->res.len);
        slot->data = data;
        slot->len = ctx->res.len;
        ngx_memcpy(slot->digest, digest, sizeof(digest));
        slot->generation++;
    }

    ngx_shmtx_unlock(&fz->shpool->mutex);

done:

    agentid_fetch_result_free(&ctx->res);
}

#endif


/* Worker 0's part of the timer: fetch what is due. */
void
ngx_http_agentid_url_schedule(ngx_http_agentid_url_t *u, ngx_log_t *log)
{
#if (NGX_THREADS)
    time_t                         now;
    ngx_thread_task_t             *task;
    ngx_http_agentid_url_task_t   *ctx;
    ngx_http_agentid_url_slot_t   *slot;
    ngx_http_agentid_main_conf_t  *amcf;

    if (ngx_worker != 0 || u->busy) {
        return;
    }

    slot = ngx_http_agentid_url_slot(u);
    if (slot == NULL) {
        return;
    }

    now = ngx_time();

    /* an unknown kid brings the refresh forward, at most every 5 seconds */
    if (now < slot->next
        && !(slot->want_refresh && now >= slot->fetched + 5))
    {
        return;
    }

    slot->want_refresh = 0;

    if (u->task == NULL) {
        u->task = ngx_thread_task_alloc(ngx_cycle->pool,
                                        sizeof(ngx_http_agentid_url_task_t));
        if (u->task == NULL) {
            return;
        }
    }

    task = u->task;
    ctx = task->ctx;
    ctx->url = u;

    task->handler = ngx_http_agentid_url_thread;
    task->event.handler = ngx_http_agentid_url_done;
    task->event.data = ctx;
    task->event.log = log;

    amcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_agentid_module);

    if (ngx_thread_task_post(amcf->thread_pool, task) == NGX_OK) {
        u->busy = 1;
        slot->fetched = now;
    }
#endif
}
