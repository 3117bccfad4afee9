/*
 * ngx_http_agentid_module: revocation and audit.  Status lists are shared
 * by the workers through the "agentid_fetch" zone: the worker that finds
 * a list due fetches it in its thread pool and publishes the verified
 * bytes, every worker keeps its own parsed copy for O(1) checks.  And one
 * audit record per access decision.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/rand.h>

#include <agentid/agentid.h>

#include "ngx_http_agentid.h"


/* lists in the zone, over all status states */
#define NGX_HTTP_AGENTID_STATUS_SLOTS      1024
/* lists one status state learns from tokens */
#define NGX_HTTP_AGENTID_STATUS_KNOWN      64
/* a fetch takes at most 5 s; a worker that died mid-fetch loses its lease */
#define NGX_HTTP_AGENTID_STATUS_LEASE      15
/* the generation of a copy read at start-up that no worker has published */
#define NGX_HTTP_AGENTID_STATUS_LOCAL      ((ngx_uint_t) -1)
/* a list no worker has asked for in this long leaves the zone */
#define NGX_HTTP_AGENTID_STATUS_UNUSED     600
#define NGX_HTTP_AGENTID_STATUS_MAX_BYTES  (4 * 1024 * 1024)


static ngx_http_agentid_status_src_t *ngx_http_agentid_status_find(
    ngx_http_agentid_status_t *st, ngx_str_t *uri);
static ngx_int_t ngx_http_agentid_status_keys(ngx_http_agentid_status_t *st,
    ngx_log_t *log);
static time_t ngx_http_agentid_status_clamp(ngx_http_agentid_status_t *st,
    time_t ttl);
#if (NGX_THREADS)
static ngx_http_agentid_status_slot_t *ngx_http_agentid_status_slot(
    ngx_http_agentid_fetch_t *fz, ngx_http_agentid_status_src_t *src,
    time_t now);
static void ngx_http_agentid_status_sweep(ngx_http_agentid_fetch_t *fz,
    time_t now);
static void ngx_http_agentid_status_adopt(ngx_http_agentid_fetch_t *fz,
    ngx_http_agentid_status_t *st, ngx_log_t *log);
static void ngx_http_agentid_status_schedule(
    ngx_http_agentid_fetch_t *fz, ngx_http_agentid_status_src_t *src,
    ngx_uint_t starting, ngx_log_t *log);
static void ngx_http_agentid_status_thread(void *data, ngx_log_t *log);
static void ngx_http_agentid_status_done(ngx_event_t *ev);
static void ngx_http_agentid_status_release(
    ngx_http_agentid_status_task_t *ctx);
#endif


/* ---------------------------------------------------------------------
 * Revocation (status lists, draft-ietf-oauth-status-list) and audit
 * records: wired to libagentid's status.h and audit.h
 */


/*
 * The status check itself is O(1), reads only this worker's parsed lists
 * and never does I/O.  A list this worker has not seen yet (the token
 * names a URI no configuration listed) is added and fetched or taken from
 * the zone by the next timer tick; until then the token's status is
 * unavailable.  The semantics are those of agentid_status_check() with
 * fail_closed: a list never fetched, or stale past
 * agentid_status_list_max_age or its exp, is unavailable.
 */
ngx_int_t
ngx_http_agentid_status_check(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx,
    struct agentid_error *err)
{
    off_t                           idx;
    time_t                          now;
    unsigned                        v;
    ngx_str_t                      *uri, *sidx;
    ngx_uint_t                      added;
    ngx_http_agentid_status_t      *st;
    ngx_http_agentid_status_src_t  *src;

    st = alcf->status;

    if (!alcf->status_list || st == NULL) {
        return NGX_OK;
    }

    uri = &ctx->field[NGX_HTTP_AGENTID_F_STATUS_URI];
    sidx = &ctx->field[NGX_HTTP_AGENTID_F_STATUS_IDX];

    if (uri->len == 0) {
        /* a token without a status entry cannot be revoked that way */
        return NGX_OK;
    }

    idx = ngx_atoof(sidx->data, sidx->len);

    if (idx == NGX_ERROR) {
        agentid_error_set(err, AGENTID_R_BAD_CLAIM, "status index is invalid");
        return NGX_DECLINED;
    }

    now = ngx_time();
    src = ngx_http_agentid_status_find(st, uri);

    if (src == NULL) {
        added = 0;
        (void) ngx_http_agentid_status_known(st, uri, NULL, ngx_cycle->pool,
                                             &added);
        if (added) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "agentid: status list \"%V\" will be fetched", uri);
        }

        agentid_error_set(err, AGENTID_R_STATUS_UNAVAILABLE,
                          "status list not fetched yet");

    } else if (src->list == NULL) {
        agentid_error_set(err, AGENTID_R_STATUS_UNAVAILABLE,
                          "status list not fetched yet");

    } else if ((size_t) idx >= agentid_status_list_size(src->list)) {
        agentid_error_set(err, AGENTID_R_BAD_CLAIM,
                          "status index beyond the list");
        return NGX_DECLINED;

    } else {
        v = AGENTID_STATUS_INVALID;
        (void) agentid_status_list_get(src->list, (size_t) idx, &v);

        /*
         * A stale list cannot vouch for a token, but what it says against
         * one still holds: an entry, once revoked, is never valid again,
         * so even agentid_status_fail open refuses a token the last
         * verified list revoked or suspended (as libagentid's checker
         * does).
         */
        if (v == AGENTID_STATUS_VALID) {
            if (now - src->confirmed <= st->max_age
                && (src->exp == 0
                    || (int64_t) now <= src->exp + AGENTID_DEFAULT_LEEWAY))
            {
                return NGX_OK;
            }

            agentid_error_set(err, AGENTID_R_STATUS_UNAVAILABLE,
                              "status list is stale");
            goto unavailable;
        }

        if (v == AGENTID_STATUS_SUSPENDED) {
            agentid_error_set(err, AGENTID_R_SUSPENDED, "token is suspended");

        } else {
            agentid_error_set(err, AGENTID_R_REVOKED,
                              "token status is 0x%02x", v);
        }

        return NGX_DECLINED;
    }

unavailable:

    if (alcf->status_fail == NGX_HTTP_AGENTID_FAIL_OPEN) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "agentid: status of token \"%V\" unavailable, "
                      "allowed (agentid_status_fail open)",
                      &ctx->field[NGX_HTTP_AGENTID_F_JTI]);
        return NGX_OK;
    }

    return NGX_DECLINED;
}


static ngx_http_agentid_status_src_t *
ngx_http_agentid_status_find(ngx_http_agentid_status_t *st, ngx_str_t *uri)
{
    ngx_uint_t                       i;
    ngx_http_agentid_status_src_t  **src;

    src = st->known->elts;
    for (i = 0; i < st->known->nelts; i++) {
        if (src[i]->uri.len == uri->len
            && ngx_strncmp(src[i]->uri.data, uri->data, uri->len) == 0)
        {
            return src[i];
        }
    }

    return NULL;
}


/*
 * The list uri of st, made known now when it was not (*added set).  NULL
 * when it cannot be added: too many lists (they come from verified tokens
 * only; a bound keeps memory flat) or no memory.
 */
ngx_http_agentid_status_src_t *
ngx_http_agentid_status_known(ngx_http_agentid_status_t *st, ngx_str_t *uri,
    ngx_str_t *file, ngx_pool_t *pool, ngx_uint_t *added)
{
    u_char                          *p;
    ngx_http_agentid_status_src_t   *src, **srcp;

    *added = 0;

    src = ngx_http_agentid_status_find(st, uri);
    if (src != NULL) {
        return src;
    }

    if (st->known->nelts >= NGX_HTTP_AGENTID_STATUS_KNOWN
        || uri->len == 0 || uri->len > 2048)
    {
        return NULL;
    }

    src = ngx_pcalloc(pool, sizeof(ngx_http_agentid_status_src_t));
    p = ngx_pnalloc(pool, uri->len + 1);

    if (src == NULL || p == NULL) {
        return NULL;
    }

    srcp = ngx_array_push(st->known);
    if (srcp == NULL) {
        return NULL;
    }

    ngx_cpystrn(p, uri->data, uri->len + 1);

    src->status = st;
    src->uri.data = p;
    src->uri.len = uri->len;

    if (file != NULL) {
        /* the configuration parser NUL-terminates every word it stores */
        src->file = *file;
    }

    *srcp = src;
    *added = 1;

    return src;
}


/*
 * Lists must be signed by a JWT key of the trust source: the keys are
 * collected again whenever the worker's trust changes (a bundle rotated),
 * and every list is then judged again with them.
 */
static ngx_int_t
ngx_http_agentid_status_keys(ngx_http_agentid_status_t *st, ngx_log_t *log)
{
    size_t                        i, j, n;
    struct agentid_trust         *trust;
    struct agentid_keyset        *ks;
    const struct agentid_keyset  *bks;
    const struct agentid_bundle  *b;

    trust = (st->trust != NULL) ? st->trust->trust : NULL;

    if (trust == NULL) {
        return NGX_DECLINED;
    }

    if (trust == st->keys_trust) {
        return NGX_OK;
    }

    ks = NULL;

    if (agentid_keyset_new(&ks) != 0) {
        goto failed;
    }

    n = agentid_trust_count(trust);

    for (i = 0; i < n; i++) {
        b = agentid_trust_get(trust, i);
        bks = agentid_bundle_jwt_keys(b);

        for (j = 0; bks != NULL && j < agentid_keyset_count(bks); j++) {
            if (agentid_keyset_add(ks,
                    (struct agentid_key *) agentid_keyset_get(bks, j)) != 0)
            {
                goto failed;
            }
        }
    }

    agentid_keyset_free(st->keys);
    agentid_trust_free(st->keys_trust);

    st->keys = ks;
    st->keys_trust = agentid_trust_ref(trust);
    st->keys_gen++;

    return NGX_OK;

failed:

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "agentid: cannot collect the status list keys");
    agentid_keyset_free(ks);

    return st->keys != NULL ? NGX_OK : NGX_ERROR;
}


/* The list's ttl, clamped as agentid_status_checker clamps it. */
static time_t
ngx_http_agentid_status_clamp(ngx_http_agentid_status_t *st, time_t ttl)
{
    time_t  min;

    min = ngx_min(st->refresh, 10);

    if (ttl <= 0 || ttl > st->refresh) {
        return st->refresh;
    }

    return ngx_max(ttl, min);
}


/* A worker's parsed lists and keys, freed when it exits. */
void
ngx_http_agentid_status_exit(ngx_http_agentid_status_t *st)
{
    ngx_uint_t                       i;
    ngx_http_agentid_status_src_t  **src;

    if (st->known != NULL) {
        src = st->known->elts;
        for (i = 0; i < st->known->nelts; i++) {
            agentid_status_list_free(src[i]->list);
            src[i]->list = NULL;
        }
    }

    agentid_keyset_free(st->keys);
    agentid_trust_free(st->keys_trust);
    st->keys = NULL;
    st->keys_trust = NULL;
}


#if (NGX_THREADS)

/*
 * The zone slot of src (zone mutex held), made when no worker made it
 * yet.  Any worker may make one: tokens that name a new list reach any
 * worker first.
 */
static ngx_http_agentid_status_slot_t *
ngx_http_agentid_status_slot(ngx_http_agentid_fetch_t *fz,
    ngx_http_agentid_status_src_t *src, time_t now)
{
    ngx_queue_t                     *q;
    ngx_http_agentid_status_t       *st;
    ngx_http_agentid_status_slot_t  *slot;

    st = src->status;
    slot = src->slot;

    if (slot != NULL && slot->status == st->id
        && slot->uri_len == src->uri.len
        && ngx_memcmp(slot->uri, src->uri.data, src->uri.len) == 0)
    {
        goto found;
    }

    for (q = ngx_queue_head(&fz->sh->status);
         q != ngx_queue_sentinel(&fz->sh->status);
         q = ngx_queue_next(q))
    {
        slot = ngx_queue_data(q, ngx_http_agentid_status_slot_t, queue);

        if (slot->status == st->id && slot->uri_len == src->uri.len
            && ngx_memcmp(slot->uri, src->uri.data, src->uri.len) == 0)
        {
            goto found;
        }
    }

    if (fz->sh->nstatus >= NGX_HTTP_AGENTID_STATUS_SLOTS) {
        src->slot = NULL;
        return NULL;
    }

    slot = ngx_slab_calloc_locked(fz->shpool,
                                  offsetof(ngx_http_agentid_status_slot_t, uri)
                                  + src->uri.len);
    if (slot == NULL) {
        src->slot = NULL;
        return NULL;
    }

    slot->status = st->id;
    slot->uri_len = src->uri.len;
    ngx_memcpy(slot->uri, src->uri.data, src->uri.len);

    ngx_queue_insert_tail(&fz->sh->status, &slot->queue);
    fz->sh->nstatus++;

found:

    src->slot = slot;
    slot->seen = now;

    return slot;
}


/*
 * Frees the slots no worker has used for a while (zone mutex held): the
 * lists of a configuration that a reload replaced.
 */
static void
ngx_http_agentid_status_sweep(ngx_http_agentid_fetch_t *fz, time_t now)
{
    ngx_queue_t                     *q, *next;
    ngx_http_agentid_status_slot_t  *slot;

    for (q = ngx_queue_head(&fz->sh->status);
         q != ngx_queue_sentinel(&fz->sh->status);
         q = next)
    {
        next = ngx_queue_next(q);
        slot = ngx_queue_data(q, ngx_http_agentid_status_slot_t, queue);

        if (slot->lease > now
            || now - slot->seen <= NGX_HTTP_AGENTID_STATUS_UNUSED)
        {
            continue;
        }

        ngx_queue_remove(q);

        if (slot->data != NULL) {
            ngx_slab_free_locked(fz->shpool, slot->data);
        }

        ngx_slab_free_locked(fz->shpool, slot);
        fz->sh->nstatus--;
    }
}


/*
 * Makes known to this worker every list of st that the zone holds: lists
 * another worker learned from a token, and after a reload the lists the
 * previous workers knew (a reload with the same settings keeps st->id and
 * the zone).  So a worker judges a token of such a list from its first
 * request on, instead of refusing it as "not fetched yet" until a token
 * has taught it the list.  Zone mutex not held.
 */
static void
ngx_http_agentid_status_adopt(ngx_http_agentid_fetch_t *fz,
    ngx_http_agentid_status_t *st, ngx_log_t *log)
{
    ngx_str_t                        uri;
    ngx_uint_t                       added, i, n;
    ngx_queue_t                     *q;
    ngx_http_agentid_status_src_t  **src;
    ngx_http_agentid_status_slot_t  *slot;

    n = st->known->nelts;

    ngx_shmtx_lock(&fz->shpool->mutex);

    for (q = ngx_queue_head(&fz->sh->status);
         q != ngx_queue_sentinel(&fz->sh->status);
         q = ngx_queue_next(q))
    {
        slot = ngx_queue_data(q, ngx_http_agentid_status_slot_t, queue);

        if (slot->status != st->id || slot->data == NULL) {
            continue;
        }

        uri.data = slot->uri;
        uri.len = slot->uri_len;

        if (ngx_http_agentid_status_find(st, &uri) != NULL) {
            continue;
        }

        /* copies the URI out of the zone into the cycle's pool */
        if (ngx_http_agentid_status_known(st, &uri, NULL, ngx_cycle->pool,
                                          &added)
            == NULL)
        {
            break;
        }
    }

    ngx_shmtx_unlock(&fz->shpool->mutex);

    /* logged once the other workers can have the zone again */

    src = st->known->elts;
    for (i = n; i < st->known->nelts; i++) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "agentid: status list \"%V\" taken from the zone",
                      &src[i]->uri);
    }
}


/*
 * Runs from the worker's timer for one list.  When the list is due and no
 * other worker holds the lease, this worker takes it and fetches (or
 * reads) the list; otherwise, when the zone holds bytes this worker has
 * not judged with its current keys, it parses them.  Both in the thread
 * pool; one task per list at a time.  With starting set (a worker that
 * starts, before its first request) it only parses what the zone holds,
 * and does so at once, in this thread: a list is one signature check and
 * an inflate, and the worker serves nothing yet.
 */
static void
ngx_http_agentid_status_schedule(ngx_http_agentid_fetch_t *fz,
    ngx_http_agentid_status_src_t *src, ngx_uint_t starting, ngx_log_t *log)
{
    u_char                          *data;
    time_t                           now;
    ngx_uint_t                       fetch, publish;
    ngx_thread_task_t               *task;
    ngx_http_agentid_status_t       *st;
    ngx_http_agentid_main_conf_t    *amcf;
    ngx_http_agentid_status_slot_t  *slot;
    ngx_http_agentid_status_task_t  *ctx;

    st = src->status;
    publish = 0;

    if (src->busy || st->keys == NULL) {
        return;
    }

    if (src->task == NULL) {
        src->task = ngx_thread_task_alloc(ngx_cycle->pool,
                                      sizeof(ngx_http_agentid_status_task_t));
        if (src->task == NULL) {
            return;
        }
    }

    task = src->task;
    ctx = task->ctx;
    ngx_memzero(ctx, sizeof(ngx_http_agentid_status_task_t));

    now = ngx_time();
    data = NULL;
    fetch = 0;

    ngx_shmtx_lock(&fz->shpool->mutex);

    slot = ngx_http_agentid_status_slot(fz, src, now);

    if (slot == NULL) {
        ngx_shmtx_unlock(&fz->shpool->mutex);
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "agentid: no room for status list \"%V\" in the "
                      "fetch zone", &src->uri);
        return;
    }

    if (src->current && src->generation == slot->generation) {
        src->confirmed = slot->fetched;
    }

    if (!starting && now >= slot->next && slot->lease <= now) {
        /* this worker fetches the list for all of them */
        slot->lease = now + NGX_HTTP_AGENTID_STATUS_LEASE;
        fetch = 1;
        publish = 1;

        ctx->generation = slot->generation;

        if (slot->data != NULL) {
            ngx_memcpy(ctx->digest, slot->digest, sizeof(ctx->digest));
            ngx_memcpy(ctx->etag, slot->etag, slot->etag_len);
            ctx->etag[slot->etag_len] = '\0';
        }

    } else if (starting && slot->data == NULL && src->file.len) {
        /*
         * A fresh start: nothing published yet.  A list served from a
         * local file is read here and now by every starting worker, like
         * a certificate, so that none has to refuse its tokens until the
         * first fetch; the one that gets the lease publishes it, the
         * others keep their copy until the zone's generation moves.  That
         * copy has no generation of the zone's: it must neither pass for
         * the (empty) slot's nor take the slot's confirmation time.
         */
        fetch = 1;
        ctx->generation = NGX_HTTP_AGENTID_STATUS_LOCAL;
        ctx->fetched = now;

        if (slot->lease <= now) {
            slot->lease = now + NGX_HTTP_AGENTID_STATUS_LEASE;
            publish = 1;
        }

    } else if (slot->data != NULL
               && (slot->generation != src->generation
                   || src->keys_gen != st->keys_gen))
    {
        data = ngx_alloc(slot->len, log);

        if (data != NULL) {
            ngx_memcpy(data, slot->data, slot->len);
            ctx->len = slot->len;
            ctx->generation = slot->generation;
            ctx->fetched = slot->fetched;
        }
    }

    ngx_shmtx_unlock(&fz->shpool->mutex);

    if (!fetch && data == NULL) {
        return;
    }

    ctx->src = src;
    ctx->fetch = fetch;
    ctx->publish = publish;
    ctx->data = data;
    ctx->keys_gen = st->keys_gen;
    ctx->keys = agentid_keyset_ref(st->keys);
    ctx->now = now;
    agentid_error_clear(&ctx->err);

    task->handler = ngx_http_agentid_status_thread;
    task->event.handler = ngx_http_agentid_status_done;
    task->event.data = ctx;
    task->event.log = log;

    if (starting) {
        ngx_http_agentid_status_thread(ctx, log);
        ngx_http_agentid_status_done(&task->event);
        return;
    }

    amcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_agentid_module);

    if (ngx_thread_task_post(amcf->thread_pool, task) != NGX_OK) {
        if (publish) {
            ngx_shmtx_lock(&fz->shpool->mutex);
            slot->lease = 0;
            ngx_shmtx_unlock(&fz->shpool->mutex);
        }

        ngx_http_agentid_status_release(ctx);
        return;
    }

    src->busy = 1;
}


/*
 * In a pool thread: fetch (or read) the list and verify it when it
 * changed, or verify the bytes another worker published.  Nothing here
 * touches the zone or the worker's lists.
 */
static void
ngx_http_agentid_status_thread(void *data, ngx_log_t *log)
{
    ngx_http_agentid_status_task_t  *ctx = data;

    int                               rv;
    char                             *body;
    size_t                            len;
    u_char                            digest[NGX_HTTP_AGENTID_DIGEST_LEN];
    unsigned int                      dlen;
    ngx_http_agentid_status_t        *st;
    ngx_http_agentid_status_src_t    *src;
    struct agentid_fetch_opts         opts;
    struct agentid_fetch_result       res;

    src = ctx->src;
    st = src->status;

    if (ctx->fetch) {
        body = NULL;
        len = 0;

        if (src->file.len) {
            rv = agentid_read_file((const char *) src->file.data,
                                   NGX_HTTP_AGENTID_STATUS_MAX_BYTES,
                                   &body, &len);
            if (rv != 0) {
                ctx->rc = rv;
                agentid_error_set(&ctx->err,
                                  rv == AGENTID_ERANGE
                                  ? AGENTID_R_TOO_LARGE
                                  : AGENTID_R_STATUS_UNAVAILABLE,
                                  "cannot read status list file \"%s\"",
                                  (const char *) src->file.data);
                return;
            }

            ctx->etag[0] = '\0';

        } else {
            agentid_fetch_opts_init(&opts);
            opts.timeout_ms = 5000;
            opts.max_bytes = NGX_HTTP_AGENTID_STATUS_MAX_BYTES;
            opts.accept = "application/statuslist+jwt";
            opts.allow_http = (int) ngx_http_agentid_url_loopback(&src->uri);
            opts.cafile = st->cafile.len ? (const char *) st->cafile.data
                                         : NULL;
            opts.etag = ctx->etag[0] ? ctx->etag : NULL;

            ngx_memzero(&res, sizeof(res));

            rv = agentid_fetch((const char *) src->uri.data, &opts, &res,
                               &ctx->err);
            if (rv != 0) {
                ctx->rc = rv;
                if (ctx->err.reason == AGENTID_R_OK) {
                    ctx->err.reason = AGENTID_R_STATUS_UNAVAILABLE;
                }

                agentid_fetch_result_free(&res);
                return;
            }

            if (res.not_modified) {
                ctx->unchanged = 1;
                agentid_fetch_result_free(&res);
                return;
            }

            body = res.body;
            len = res.len;
            res.body = NULL;

            ctx->etag[0] = '\0';

            if (res.etag != NULL && ngx_strlen(res.etag) < sizeof(ctx->etag))
            {
                ngx_cpystrn((u_char *) ctx->etag, (u_char *) res.etag,
                            sizeof(ctx->etag));
            }

            agentid_fetch_result_free(&res);
        }

        ctx->data = (u_char *) body;
        ctx->len = len;
        ctx->data_agentid = 1;

        if (body == NULL
            || EVP_Digest(body, len, digest, &dlen, EVP_sha256(), NULL) != 1)
        {
            ctx->rc = AGENTID_EINVAL;
            agentid_error_set(&ctx->err, AGENTID_R_STATUS_UNAVAILABLE,
                              "empty status list");
            return;
        }

        /* the same bytes as published: a confirmation, nothing to parse */

        if (ngx_memcmp(digest, ctx->digest, sizeof(digest)) == 0) {
            ctx->unchanged = 1;
            return;
        }

        ngx_memcpy(ctx->digest, digest, sizeof(digest));
    }

    ctx->rc = agentid_status_list_verify_jwt((const char *) ctx->data,
                                             ctx->len, ctx->keys, 0,
                                             (const char *) src->uri.data,
                                             NULL, ctx->now,
                                             AGENTID_DEFAULT_LEEWAY, 0,
                                             &ctx->tok, &ctx->err);
}


static void
ngx_http_agentid_status_done(ngx_event_t *ev)
{
    ngx_http_agentid_status_task_t  *ctx = ev->data;

    u_char                          *data;
    time_t                           now;
    ngx_uint_t                       gen;
    ngx_http_agentid_fetch_t        *fz;
    ngx_http_agentid_status_t       *st;
    ngx_http_agentid_status_src_t   *src;
    ngx_http_agentid_main_conf_t    *amcf;
    ngx_http_agentid_status_slot_t  *slot;

    src = ctx->src;
    st = src->status;
    src->busy = 0;
    now = ngx_time();

    if (!ctx->publish) {
        /* parsed from the zone, or read at start-up by a worker without the lease */
        src->generation = ctx->generation;
        src->keys_gen = ctx->keys_gen;

        if (ctx->rc == 0) {
            agentid_status_list_free(src->list);
            src->list = ctx->tok->list;
            ctx->tok->list = NULL;
            src->exp = ctx->tok->exp;
            src->confirmed = ctx->fetched;
            src->current = 1;

        } else {
            /* refused (or unreadable): its last good list stays */
            src->current = 0;
            ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                          "agentid: status list refresh: %s: %V: %s",
                          agentid_reason_code(ctx->err.reason), &src->uri,
                          ctx->err.detail);
        }

        goto done;
    }

    amcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_agentid_module);
    fz = amcf->fetch_zone->data;

    ngx_shmtx_lock(&fz->shpool->mutex);

    slot = ngx_http_agentid_status_slot(fz, src, now);

    if (slot == NULL) {
        ngx_shmtx_unlock(&fz->shpool->mutex);
        goto done;
    }

    slot->lease = 0;

    if (ctx->rc != 0) {
        /* stale-if-error: the published list stays until it is too old */
        slot->backoff = slot->backoff
                        ? ngx_min(2 * slot->backoff, st->refresh)
                        : ngx_min(st->refresh, 10);
        slot->next = now + slot->backoff;

        ngx_shmtx_unlock(&fz->shpool->mutex);

        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "agentid: status list refresh: %s: %V: %s",
                      agentid_reason_code(ctx->err.reason), &src->uri,
                      ctx->err.detail[0] ? ctx->err.detail
                                         : agentid_strerror(ctx->rc));
        goto done;
    }

    slot->backoff = 0;

    if (ctx->unchanged) {
        slot->fetched = now;
        slot->next = now + ngx_http_agentid_status_clamp(st, slot->ttl);

        if (src->current && src->generation == slot->generation) {
            src->confirmed = now;
        }

        ngx_shmtx_unlock(&fz->shpool->mutex);
        goto done;
    }

    data = ngx_slab_alloc_locked(fz->shpool, ctx->len);

    if (data == NULL) {
        slot->next = now + ngx_min(st->refresh, 10);
        ngx_shmtx_unlock(&fz->shpool->mutex);
        ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                      "agentid: no room for status list \"%V\" in the "
                      "fetch zone", &src->uri);
        goto done;
    }

    if (slot->data != NULL) {
        ngx_slab_free_locked(fz->shpool, slot->data);
    }

    ngx_memcpy(data, ctx->data, ctx->len);
    slot->data = data;
    slot->len = ctx->len;
    ngx_memcpy(slot->digest, ctx->digest, sizeof(slot->digest));
    slot->etag_len = ngx_strlen(ctx->etag);
    ngx_memcpy(slot->etag, ctx->etag, slot->etag_len);
    slot->ttl = (ctx->tok->ttl > 0 && ctx->tok->ttl < 86400)
                ? (time_t) ctx->tok->ttl : 0;
    slot->fetched = now;
    slot->next = now + ngx_http_agentid_status_clamp(st, slot->ttl);
    gen = ++slot->generation;

    ngx_shmtx_unlock(&fz->shpool->mutex);

    /* the fetching worker needs no second parse of what it verified */

    agentid_status_list_free(src->list);
    src->list = ctx->tok->list;
    ctx->tok->list = NULL;
    src->exp = ctx->tok->exp;
    src->confirmed = now;
    src->current = 1;
    src->generation = gen;
    src->keys_gen = ctx->keys_gen;

    ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                  "agentid: status list \"%V\" updated", &src->uri);

done:

    ngx_http_agentid_status_release(ctx);
}


static void
ngx_http_agentid_status_release(ngx_http_agentid_status_task_t *ctx)
{
    if (ctx->data_agentid) {
        agentid_free(ctx->data);

    } else if (ctx->data != NULL) {
        ngx_free(ctx->data);
    }

    ctx->data = NULL;
    ctx->data_agentid = 0;

    agentid_status_list_token_free(ctx->tok);
    ctx->tok = NULL;

    agentid_keyset_free(ctx->keys);
    ctx->keys = NULL;
}

#endif


/*
 * The keys of URL trust sources and the status lists of every status
 * state: from the timer, and once when a worker starts (starting set),
 * before its first request, so that after "nginx -s reload" (or a worker
 * respawn) the new worker accepts at once what the old ones accepted: it
 * parses the lists the zone holds there and then (see schedule).  A fresh
 * start has nothing in the zone yet: lists served from local files are read
 * there and then too; the others come with the first fetch, and until then
 * tokens that carry a status claim fail closed.
 */
static void
ngx_http_agentid_refresh(ngx_http_agentid_main_conf_t *amcf,
    ngx_uint_t starting, ngx_log_t *log)
{
    ngx_uint_t                        i;
    ngx_http_agentid_trust_t        **t;
    ngx_http_agentid_status_t       **st;
#if (NGX_THREADS)
    ngx_uint_t                        j;
    ngx_http_agentid_fetch_t         *fz;
    ngx_http_agentid_status_src_t   **src;
#endif

    /* idle workers pick up new keys too, not only at the next request */
    t = amcf->trusts.elts;
    for (i = 0; i < amcf->trusts.nelts; i++) {
        if (t[i]->urls != NULL) {
            ngx_http_agentid_trust_refresh(t[i], log);
        }
    }

    st = amcf->statuses.elts;
    for (i = 0; i < amcf->statuses.nelts; i++) {
        if (st[i]->trust != NULL) {
            ngx_http_agentid_trust_refresh(st[i]->trust, log);
        }

        if (ngx_http_agentid_status_keys(st[i], log) != NGX_OK) {
            continue;
        }

#if (NGX_THREADS)
        if (amcf->fetch_zone == NULL) {
            continue;
        }

        fz = amcf->fetch_zone->data;

        ngx_http_agentid_status_adopt(fz, st[i], log);

        src = st[i]->known->elts;
        for (j = 0; j < st[i]->known->nelts; j++) {
            ngx_http_agentid_status_schedule(fz, src[j], starting, log);
        }
#endif
    }
}


void
ngx_http_agentid_init_worker(ngx_http_agentid_main_conf_t *amcf,
    ngx_log_t *log)
{
    ngx_http_agentid_refresh(amcf, 1, log);
}


void
ngx_http_agentid_tick(ngx_event_t *ev)
{
    ngx_http_agentid_main_conf_t *amcf = ev->data;

    ngx_uint_t                        i;
    ngx_http_agentid_url_t          **u;
    ngx_http_agentid_audit_t        **au;
#if (NGX_THREADS)
    ngx_http_agentid_fetch_t         *fz;
#endif

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    u = amcf->urls.elts;
    for (i = 0; i < amcf->urls.nelts; i++) {
        ngx_http_agentid_url_schedule(u[i], ev->log);
    }

    ngx_http_agentid_refresh(amcf, 0, ev->log);

#if (NGX_THREADS)
    if (ngx_worker == 0 && amcf->statuses.nelts && amcf->fetch_zone != NULL) {
        fz = amcf->fetch_zone->data;
        ngx_shmtx_lock(&fz->shpool->mutex);
        ngx_http_agentid_status_sweep(fz, ngx_time());
        ngx_shmtx_unlock(&fz->shpool->mutex);
    }
#endif

    au = amcf->audits.elts;
    for (i = 0; i < amcf->audits.nelts; i++) {
        if (au[i]->audit != NULL) {
            (void) agentid_audit_tick(au[i]->audit);
        }
    }

    /*
     * A list one worker publishes reaches the others at their next tick:
     * with status lists in use the timer runs four times a second (a few
     * comparisons under the zone mutex each), so that a revocation takes
     * effect in every worker a quarter second after the fetch.
     */

    ngx_add_timer(ev, amcf->statuses.nelts ? 250 : 1000);
}


static ngx_int_t
ngx_http_agentid_audit_str(json_t *o, const char *name, ngx_str_t *s)
{
    json_t  *v;

    if (s->len == 0) {
        return NGX_OK;
    }

    /* json_stringn() refuses invalid UTF-8: such a member is left out */
    v = json_stringn((const char *) s->data, s->len);

    if (v == NULL) {
        return NGX_OK;
    }

    return json_object_set_new(o, name, v) == 0 ? NGX_OK : NGX_ERROR;
}


/*
 * Who: the identity of an authentic token, in an allowed record and in a
 * denied one when the token was authentic but refused (a scope or agent
 * rule, a binding, its revocation).
 */
static ngx_int_t
ngx_http_agentid_audit_identity(json_t *o, ngx_http_agentid_ctx_t *ctx)
{
    u_char     *p, *last, *q;
    json_t     *chain, *hop;
    ngx_str_t  *f;
    ngx_int_t   rc;

    f = ctx->field;
    rc = NGX_OK;

    rc |= ngx_http_agentid_audit_str(o, "agent", &f[NGX_HTTP_AGENTID_F_AGENT]);
    rc |= ngx_http_agentid_audit_str(o, "subject",
                                     &f[NGX_HTTP_AGENTID_F_SUBJECT]);
    rc |= ngx_http_agentid_audit_str(o, "task", &f[NGX_HTTP_AGENTID_F_TASK]);
    rc |= ngx_http_agentid_audit_str(o, "jti", &f[NGX_HTTP_AGENTID_F_JTI]);
    rc |= ngx_http_agentid_audit_str(o, "iss", &f[NGX_HTTP_AGENTID_F_ISSUER]);
    rc |= ngx_http_agentid_audit_str(o, "scope", &f[NGX_HTTP_AGENTID_F_SCOPE]);

    if (f[NGX_HTTP_AGENTID_F_CHAIN].len == 0) {
        return rc;
    }

    chain = json_array();
    if (chain == NULL || json_object_set_new(o, "chain", chain) != 0) {
        return NGX_ERROR;
    }

    p = f[NGX_HTTP_AGENTID_F_CHAIN].data;
    last = p + f[NGX_HTTP_AGENTID_F_CHAIN].len;

    while (p < last) {
        q = ngx_strlchr(p, last, ',');
        if (q == NULL) {
            q = last;
        }

        hop = json_stringn((const char *) p, q - p);
        if (hop == NULL || json_array_append_new(chain, hop) != 0) {
            return NGX_ERROR;
        }

        p = q + 1;
    }

    return rc;
}


/* One access.allowed or access.denied record per decision. */
void
ngx_http_agentid_audit(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx)
{
    u_char     *p;
    u_char      buf[2048];
    json_t     *o;
    ngx_str_t   s;
    ngx_int_t   rc;

    if (alcf->audit == NULL || alcf->audit->audit == NULL) {
        return;
    }

    o = json_object();
    if (o == NULL) {
        return;
    }

    rc = NGX_OK;

    if (ctx->rc == NGX_OK) {
        ngx_str_set(&s, "access.allowed");
        rc |= ngx_http_agentid_audit_str(o, "event", &s);
        ngx_str_set(&s, "allow");
        rc |= ngx_http_agentid_audit_str(o, "decision", &s);
        rc |= ngx_http_agentid_audit_identity(o, ctx);

    } else {
        ngx_str_set(&s, "access.denied");
        rc |= ngx_http_agentid_audit_str(o, "event", &s);
        ngx_str_set(&s, "deny");
        rc |= ngx_http_agentid_audit_str(o, "decision", &s);

        if (ctx->error != NULL) {
            s.data = (u_char *) ctx->error;
            s.len = ngx_strlen(ctx->error);
            rc |= ngx_http_agentid_audit_str(o, "reason", &s);
        }

        if (ctx->identified) {
            rc |= ngx_http_agentid_audit_identity(o, ctx);
        }
    }

    p = ngx_snprintf(buf, sizeof(buf), "%V %V", &r->method_name,
                     &r->unparsed_uri);
    s.data = buf;
    s.len = p - buf;
    rc |= ngx_http_agentid_audit_str(o, "resource", &s);
    rc |= ngx_http_agentid_audit_str(o, "client", &r->connection->addr_text);

    if (rc != NGX_OK
        || agentid_audit_append_json(alcf->audit->audit, o) != 0)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "agentid: cannot append to the audit log \"%V\"",
                      &alcf->audit->path);
    }

    json_decref(o);
}
