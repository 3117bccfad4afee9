
/*
 * ngx_http_agentid_module: shared memory.  The verified-token cache and
 * the DPoP replay cache: an rbtree with an LRU queue in a slab zone.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/rand.h>

#include <agentid/agentid.h>

#include "ngx_http_agentid.h"


static ngx_int_t ngx_http_agentid_shm_get(ngx_shm_zone_t *zone,
    const u_char *key, time_t now, ngx_pool_t *pool, ngx_str_t *data);
static void ngx_http_agentid_shm_expire(ngx_http_agentid_shm_t *shm,
    time_t now, ngx_uint_t force);


/* Per-worker digest state, fetched once instead of on every call. */
static EVP_MD         *ngx_http_agentid_md;
static EVP_MD_CTX     *ngx_http_agentid_md_ctx;


/* ---------------------------------------------------------------------
 * Shared memory: the verified-token cache and the DPoP replay cache
 */


ngx_int_t
ngx_http_agentid_sha256(const void *a, size_t alen, const void *b,
    size_t blen, const void *c, size_t clen, u_char *out)
{
    unsigned int  len;

    if (ngx_http_agentid_md_ctx == NULL) {
        ngx_http_agentid_md = EVP_MD_fetch(NULL, "SHA256", NULL);
        ngx_http_agentid_md_ctx = EVP_MD_CTX_new();

        if (ngx_http_agentid_md == NULL || ngx_http_agentid_md_ctx == NULL) {
            return NGX_ERROR;
        }
    }

    if (EVP_DigestInit_ex(ngx_http_agentid_md_ctx, ngx_http_agentid_md, NULL)
        != 1
        || EVP_DigestUpdate(ngx_http_agentid_md_ctx, a, alen) != 1
        || (blen && EVP_DigestUpdate(ngx_http_agentid_md_ctx, b, blen) != 1)
        || (clen && EVP_DigestUpdate(ngx_http_agentid_md_ctx, c, clen) != 1)
        || EVP_DigestFinal_ex(ngx_http_agentid_md_ctx, out, &len) != 1)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_agentid_init_shm_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_agentid_shm_t  *octx = data;

    size_t                   len;
    ngx_http_agentid_shm_t  *ctx;

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

    ctx->sh = ngx_slab_alloc(ctx->shpool, sizeof(ngx_http_agentid_shm_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_rbtree_insert_value);
    ngx_queue_init(&ctx->sh->queue);

    len = sizeof(" in agentid zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in agentid zone \"%V\"%Z",
                &shm_zone->shm.name);

    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


static ngx_http_agentid_shm_node_t *
ngx_http_agentid_shm_lookup(ngx_http_agentid_shm_t *shm, const u_char *key)
{
    ngx_int_t                     rc;
    ngx_rbtree_key_t              hash;
    ngx_rbtree_node_t            *node, *sentinel;
    ngx_http_agentid_shm_node_t  *n;

    ngx_memcpy(&hash, key, sizeof(hash));

    node = shm->sh->rbtree.root;
    sentinel = shm->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* equal hash: ngx_rbtree_insert_value puts equal keys to the right */

        n = (ngx_http_agentid_shm_node_t *) node;
        rc = ngx_memcmp(key, n->key, NGX_HTTP_AGENTID_DIGEST_LEN);

        if (rc == 0) {
            return n;
        }

        node = node->right;
    }

    return NULL;
}


/* NGX_OK and a pool copy of the data when key is present and unexpired. */
static ngx_int_t
ngx_http_agentid_shm_get(ngx_shm_zone_t *zone, const u_char *key, time_t now,
    ngx_pool_t *pool, ngx_str_t *data)
{
    ngx_http_agentid_shm_t       *shm;
    ngx_http_agentid_shm_node_t  *n;

    shm = zone->data;

    ngx_shmtx_lock(&shm->shpool->mutex);

    n = ngx_http_agentid_shm_lookup(shm, key);

    if (n == NULL || n->expires <= now) {
        ngx_shmtx_unlock(&shm->shpool->mutex);
        return NGX_DECLINED;
    }

    ngx_queue_remove(&n->queue);
    ngx_queue_insert_head(&shm->sh->queue, &n->queue);

    data->len = n->len;
    data->data = ngx_pnalloc(pool, n->len);

    if (data->data == NULL) {
        ngx_shmtx_unlock(&shm->shpool->mutex);
        return NGX_ERROR;
    }

    ngx_memcpy(data->data, n->data, n->len);

    ngx_shmtx_unlock(&shm->shpool->mutex);

    return NGX_OK;
}


/*
 * Stores key with data until expires.  With unique set, an unexpired
 * entry of the same key makes it fail with NGX_DECLINED (the replay
 * check); otherwise the entry is replaced.  When the zone is full the
 * least recently used entries make room.
 */
ngx_int_t
ngx_http_agentid_shm_put(ngx_shm_zone_t *zone, const u_char *key,
    time_t expires, time_t now, ngx_str_t *data, ngx_uint_t unique)
{
    size_t                        size;
    ngx_uint_t                    tries;
    ngx_http_agentid_shm_t       *shm;
    ngx_http_agentid_shm_node_t  *n;

    if (zone == NULL) {
        return NGX_ERROR;
    }

    shm = zone->data;

    ngx_shmtx_lock(&shm->shpool->mutex);

    ngx_http_agentid_shm_expire(shm, now, 0);

    n = ngx_http_agentid_shm_lookup(shm, key);

    if (n != NULL) {
        if (unique && n->expires > now) {
            ngx_shmtx_unlock(&shm->shpool->mutex);
            return NGX_DECLINED;
        }

        ngx_queue_remove(&n->queue);
        ngx_rbtree_delete(&shm->sh->rbtree, &n->node);
        ngx_slab_free_locked(shm->shpool, n);
    }

    size = offsetof(ngx_http_agentid_shm_node_t, data) + data->len;

    for (tries = 0; /* void */ ; tries++) {

        n = ngx_slab_alloc_locked(shm->shpool, size);

        if (n != NULL || tries == 8 || ngx_queue_empty(&shm->sh->queue)) {
            break;
        }

        ngx_http_agentid_shm_expire(shm, now, 1);
    }

    if (n == NULL) {
        ngx_shmtx_unlock(&shm->shpool->mutex);
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "agentid: zone \"%V\" is full", &zone->shm.name);
        return unique ? NGX_ERROR : NGX_OK;
    }

    ngx_memcpy(&n->node.key, key, sizeof(ngx_rbtree_key_t));
    ngx_memcpy(n->key, key, NGX_HTTP_AGENTID_DIGEST_LEN);
    n->expires = expires;
    n->len = data->len;

    if (data->len) {
        ngx_memcpy(n->data, data->data, data->len);
    }

    ngx_rbtree_insert(&shm->sh->rbtree, &n->node);
    ngx_queue_insert_head(&shm->sh->queue, &n->queue);

    ngx_shmtx_unlock(&shm->shpool->mutex);

    return NGX_OK;
}


/*
 * Removes up to two expired entries from the tail of the LRU queue, or
 * with force the least recently used entry whatever its expiry.
 */
static void
ngx_http_agentid_shm_expire(ngx_http_agentid_shm_t *shm, time_t now,
    ngx_uint_t force)
{
    ngx_uint_t                    i;
    ngx_queue_t                  *q;
    ngx_http_agentid_shm_node_t  *n;

    for (i = 0; i < 2; i++) {

        if (ngx_queue_empty(&shm->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&shm->sh->queue);
        n = ngx_queue_data(q, ngx_http_agentid_shm_node_t, queue);

        if (!force && n->expires > now) {
            return;
        }

        ngx_queue_remove(q);
        ngx_rbtree_delete(&shm->sh->rbtree, &n->node);
        ngx_slab_free_locked(shm->shpool, n);

        if (force) {
            return;
        }
    }
}


/*
 * The cache key binds the token to the location's rules (a random id
 * made when the configuration was read) and to the exact trust it was
 * verified with (the digest of the bundle bytes): a token accepted under
 * one configuration or key set is never a hit under another.
 */
ngx_int_t
ngx_http_agentid_cache_key(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx,
    u_char *key)
{
    if (alcf->cache_zone == NULL || alcf->trust == NULL
        || alcf->trust->trust == NULL)
    {
        return NGX_DECLINED;
    }

    return ngx_http_agentid_sha256(alcf->id, sizeof(alcf->id),
                                   alcf->trust->digest,
                                   sizeof(alcf->trust->digest),
                                   ctx->token.data, ctx->token.len, key);
}


ngx_int_t
ngx_http_agentid_cache_get(ngx_http_request_t *r, ngx_http_agentid_ctx_t *ctx,
    const u_char *key)
{
    u_char                        *p, *last;
    time_t                         expires;
    uint16_t                       len;
    ngx_uint_t                     i;
    ngx_str_t                      data;

    if (ngx_http_agentid_shm_get(ctx->alcf->cache_zone, key, ngx_time(),
                                 r->pool, &data)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    p = data.data;
    last = p + data.len;

    if ((size_t) (last - p) < sizeof(time_t)) {
        return NGX_DECLINED;
    }

    ngx_memcpy(&expires, p, sizeof(time_t));
    p += sizeof(time_t);

    for (i = 0; i < NGX_HTTP_AGENTID_F_COUNT; i++) {
        if ((size_t) (last - p) < sizeof(uint16_t)) {
            return NGX_DECLINED;
        }

        ngx_memcpy(&len, p, sizeof(uint16_t));
        p += sizeof(uint16_t);

        if ((size_t) (last - p) < len) {
            return NGX_DECLINED;
        }

        ctx->field[i].data = p;
        ctx->field[i].len = len;
        p += len;
    }

    ctx->expires = expires;

    return NGX_OK;
}


void
ngx_http_agentid_cache_put(ngx_http_request_t *r, ngx_http_agentid_ctx_t *ctx,
    const u_char *key)
{
    u_char                        *p;
    uint16_t                       len;
    ngx_str_t                      data;
    ngx_uint_t                     i;
    ngx_http_agentid_loc_conf_t   *alcf;

    alcf = ctx->alcf;

    data.len = sizeof(time_t);

    for (i = 0; i < NGX_HTTP_AGENTID_F_COUNT; i++) {
        data.len += sizeof(uint16_t) + ctx->field[i].len;
    }

    data.data = ngx_pnalloc(r->pool, data.len);
    if (data.data == NULL) {
        return;
    }

    p = ngx_cpymem(data.data, &ctx->expires, sizeof(time_t));

    for (i = 0; i < NGX_HTTP_AGENTID_F_COUNT; i++) {
        len = (uint16_t) ctx->field[i].len;
        p = ngx_cpymem(p, &len, sizeof(uint16_t));
        if (len) {
            p = ngx_cpymem(p, ctx->field[i].data, len);
        }
    }

    /* the verifier accepts the token until exp + leeway; so does the cache */

    (void) ngx_http_agentid_shm_put(alcf->cache_zone, key,
                                    ctx->expires + alcf->leeway, ngx_time(),
                                    &data, 0);
}
