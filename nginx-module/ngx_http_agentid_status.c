
/*
 * ngx_http_agentid_module: revocation and audit.  Status-list checkers
 * refreshed by thread-pool tasks from the worker timer, and one audit
 * record per access decision.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/rand.h>

#include <agentid/agentid.h>

#include "ngx_http_agentid.h"


static struct agentid_status_checker *ngx_http_agentid_status_new(
    ngx_http_agentid_status_t *st, struct agentid_trust *trust,
    ngx_log_t *log);
static void ngx_http_agentid_status_schedule(ngx_http_agentid_status_t *st,
    ngx_log_t *log);
#if (NGX_THREADS)
static void ngx_http_agentid_status_thread(void *data, ngx_log_t *log);
static void ngx_http_agentid_status_done(ngx_event_t *ev);
#endif


/* ---------------------------------------------------------------------
 * Revocation (status lists) and audit records: wired to libagentid's
 * status.h and audit.h
 */


/*
 * The status check itself is O(1) and never does I/O.  A list this worker
 * has not seen yet (the token names a URI no configuration listed) is
 * added to the checker and fetched by the next refresh task; until then
 * the token's status is unavailable.
 */
ngx_int_t
ngx_http_agentid_status_check(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx,
    struct agentid_error *err)
{
    int                             rv;
    off_t                           idx;
    ngx_str_t                      *uri, *sidx;
    ngx_http_agentid_status_t      *st;
    struct agentid_status_checker  *chk;

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

    chk = (st->chk != NULL) ? st->chk : st->pending;

    if (chk != NULL) {
        rv = agentid_status_check(chk, (const char *) uri->data, uri->len,
                                  (uint64_t) idx, ngx_time(), err);
        if (rv == 0) {
            return NGX_OK;
        }

    } else {
        agentid_error_set(err, AGENTID_R_STATUS_UNAVAILABLE,
                          "no status list loaded yet");
    }

    if (err->reason != AGENTID_R_STATUS_UNAVAILABLE) {
        return NGX_DECLINED;
    }

    if (ngx_http_agentid_status_known(st, uri, NULL, ngx_cycle->pool)
        == NGX_DECLINED)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "agentid: status list \"%V\" will be fetched", uri);
    }

    if (alcf->status_fail == NGX_HTTP_AGENTID_FAIL_OPEN) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "agentid: status of token \"%V\" unavailable, "
                      "allowed (agentid_status_fail open)",
                      &ctx->field[NGX_HTTP_AGENTID_F_JTI]);
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * Makes sure the worker's checkers know list uri.  NGX_OK when it was
 * known already, NGX_DECLINED when it was added now, NGX_ERROR when it
 * cannot be added (too many lists, no memory).
 */
ngx_int_t
ngx_http_agentid_status_known(ngx_http_agentid_status_t *st, ngx_str_t *uri,
    ngx_str_t *file, ngx_pool_t *pool)
{
    u_char        *p;
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    kv = st->known->elts;
    for (i = 0; i < st->known->nelts; i++) {
        if (kv[i].key.len == uri->len
            && ngx_strncmp(kv[i].key.data, uri->data, uri->len) == 0)
        {
            return NGX_OK;
        }
    }

    /* lists come from verified tokens only; a bound keeps memory flat */
    if (st->known->nelts >= 64 || uri->len > 2048) {
        return NGX_ERROR;
    }

    kv = ngx_array_push(st->known);
    if (kv == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(pool, uri->len + 1);
    if (p == NULL) {
        st->known->nelts--;
        return NGX_ERROR;
    }

    ngx_cpystrn(p, uri->data, uri->len + 1);
    kv->key.data = p;
    kv->key.len = uri->len;

    if (file != NULL) {
        kv->value = *file;
    } else {
        ngx_str_null(&kv->value);
    }

    if (st->chk != NULL) {
        (void) agentid_status_checker_add_source(st->chk, (char *) p,
                               kv->value.len ? (char *) kv->value.data : NULL);
    }

    if (st->pending != NULL) {
        (void) agentid_status_checker_add_source(st->pending, (char *) p,
                               kv->value.len ? (char *) kv->value.data : NULL);
    }

    return NGX_DECLINED;
}


/* A checker whose lists must be signed by a JWT key of trust. */
static struct agentid_status_checker *
ngx_http_agentid_status_new(ngx_http_agentid_status_t *st,
    struct agentid_trust *trust, ngx_log_t *log)
{
    size_t                                 i, j, n;
    ngx_uint_t                             k;
    ngx_keyval_t                          *kv;
    struct agentid_error                   err;
    struct agentid_keyset                 *ks;
    const struct agentid_keyset           *bks;
    const struct agentid_bundle           *b;
    struct agentid_status_checker         *chk;
    struct agentid_status_checker_config   cfg;

    ks = NULL;
    chk = NULL;
    agentid_error_clear(&err);

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

    agentid_status_checker_config_init(&cfg);

    cfg.keys = ks;
    cfg.max_age = (long) st->max_age;
    cfg.max_refresh = (long) st->refresh;
    cfg.min_refresh = (cfg.max_refresh < 10) ? cfg.max_refresh : 10;
    cfg.retry_seconds = (cfg.max_refresh < 10) ? cfg.max_refresh : 10;
    cfg.fail_closed = 1;
    cfg.fetch.cafile = st->cafile.len ? (const char *) st->cafile.data : NULL;

    if (agentid_status_checker_new(&cfg, &chk, &err) != 0) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "agentid: cannot make a status checker: %s",
                      err.detail);
        goto failed;
    }

    agentid_keyset_free(ks);
    ks = NULL;

    if (st->known != NULL) {
        kv = st->known->elts;
        for (k = 0; k < st->known->nelts; k++) {
            if (agentid_status_checker_add_source(chk, (char *) kv[k].key.data,
                    kv[k].value.len ? (char *) kv[k].value.data : NULL) != 0)
            {
                goto failed;
            }
        }
    }

    return chk;

failed:

    agentid_keyset_free(ks);
    agentid_status_checker_free(chk);

    return NULL;
}


/*
 * Runs from the worker's timer: posts one refresh task when the checker
 * is due, or builds a checker for new keys.  One task at a time per
 * status state; the task never touches anything the request path reads
 * except through the checker's own locks.
 */
static void
ngx_http_agentid_status_schedule(ngx_http_agentid_status_t *st,
    ngx_log_t *log)
{
#if (NGX_THREADS)
    int                              force;
    time_t                           now;
    ngx_thread_task_t               *task;
    struct agentid_trust            *trust;
    struct agentid_status_checker   *chk;
    ngx_http_agentid_main_conf_t    *amcf;
    ngx_http_agentid_status_task_t  *ctx;

    if (st->busy) {
        return;
    }

    trust = (st->trust != NULL) ? st->trust->trust : NULL;

    if (trust == NULL) {
        return;
    }

    now = ngx_time();

    if (st->pending == NULL && (st->chk == NULL || st->chk_keys != trust)) {
        st->pending = ngx_http_agentid_status_new(st, trust, log);
        if (st->pending == NULL) {
            return;
        }

        st->pending_keys = agentid_trust_ref(trust);
        st->pending_tried = 0;
        chk = st->pending;

    } else if (st->pending != NULL) {
        chk = st->pending;

    } else {
        chk = st->chk;
    }

    /* a new checker is refreshed at once, then on its own schedule */
    force = (chk == st->pending && !st->pending_tried);

    if (!force && agentid_status_checker_next_refresh(chk) > now) {
        return;
    }

    amcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_agentid_module);

    if (st->task == NULL) {
        st->task = ngx_thread_task_alloc(ngx_cycle->pool,
                                      sizeof(ngx_http_agentid_status_task_t));
        if (st->task == NULL) {
            return;
        }
    }

    /* one task per status state, reused: busy says when it is in flight */
    task = st->task;

    ctx = task->ctx;
    ctx->status = st;
    ctx->chk = chk;
    ctx->now = now;
    ctx->force = force;
    ctx->rc = 0;
    agentid_error_clear(&ctx->err);

    task->handler = ngx_http_agentid_status_thread;
    task->event.handler = ngx_http_agentid_status_done;
    task->event.data = ctx;
    task->event.log = log;

    if (ngx_thread_task_post(amcf->thread_pool, task) != NGX_OK) {
        return;
    }

    st->busy = 1;

    if (chk == st->pending) {
        st->pending_tried = 1;
    }
#endif
}


#if (NGX_THREADS)

static void
ngx_http_agentid_status_thread(void *data, ngx_log_t *log)
{
    ngx_http_agentid_status_task_t  *ctx = data;

    ctx->rc = agentid_status_checker_refresh(ctx->chk, ctx->now, ctx->force,
                                             &ctx->err);
}


static void
ngx_http_agentid_status_done(ngx_event_t *ev)
{
    ngx_http_agentid_status_task_t  *ctx = ev->data;

    ngx_http_agentid_status_t  *st;

    st = ctx->status;
    st->busy = 0;

    if (ctx->rc != 0) {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "agentid: status list refresh: %s: %s",
                      agentid_reason_code(ctx->err.reason), ctx->err.detail);
    }

    if (ctx->chk == st->pending && (ctx->rc == 0 || st->chk == NULL)) {
        agentid_status_checker_free(st->chk);
        agentid_trust_free(st->chk_keys);
        st->chk = st->pending;
        st->chk_keys = st->pending_keys;
        st->pending = NULL;
        st->pending_keys = NULL;
    }
}

#endif


void
ngx_http_agentid_tick(ngx_event_t *ev)
{
    ngx_http_agentid_main_conf_t *amcf = ev->data;

    ngx_uint_t                   i;
    ngx_http_agentid_url_t     **u;
    ngx_http_agentid_audit_t   **au;
    ngx_http_agentid_trust_t   **t;
    ngx_http_agentid_status_t  **st;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    u = amcf->urls.elts;
    for (i = 0; i < amcf->urls.nelts; i++) {
        ngx_http_agentid_url_schedule(u[i], ev->log);
    }

    /* idle workers pick up new keys too, not only at the next request */
    t = amcf->trusts.elts;
    for (i = 0; i < amcf->trusts.nelts; i++) {
        if (t[i]->urls != NULL) {
            ngx_http_agentid_trust_refresh(t[i], ev->log);
        }
    }

    st = amcf->statuses.elts;
    for (i = 0; i < amcf->statuses.nelts; i++) {
        if (st[i]->trust != NULL) {
            ngx_http_agentid_trust_refresh(st[i]->trust, ev->log);
        }

        ngx_http_agentid_status_schedule(st[i], ev->log);
    }

    au = amcf->audits.elts;
    for (i = 0; i < amcf->audits.nelts; i++) {
        if (au[i]->audit != NULL) {
            (void) agentid_audit_tick(au[i]->audit);
        }
    }

    ngx_add_timer(ev, 1000);
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


/* One access.allowed or access.denied record per decision. */
void
ngx_http_agentid_audit(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx)
{
    u_char     *p, *last, *q;
    u_char      buf[2048];
    json_t     *o, *chain, *hop;
    ngx_str_t   s, *f;
    ngx_int_t   rc;

    if (alcf->audit == NULL || alcf->audit->audit == NULL) {
        return;
    }

    o = json_object();
    if (o == NULL) {
        return;
    }

    f = ctx->field;
    rc = NGX_OK;

    if (ctx->rc == NGX_OK) {
        ngx_str_set(&s, "access.allowed");
        rc |= ngx_http_agentid_audit_str(o, "event", &s);
        ngx_str_set(&s, "allow");
        rc |= ngx_http_agentid_audit_str(o, "decision", &s);
        rc |= ngx_http_agentid_audit_str(o, "agent",
                                         &f[NGX_HTTP_AGENTID_F_AGENT]);
        rc |= ngx_http_agentid_audit_str(o, "subject",
                                         &f[NGX_HTTP_AGENTID_F_SUBJECT]);
        rc |= ngx_http_agentid_audit_str(o, "task",
                                         &f[NGX_HTTP_AGENTID_F_TASK]);
        rc |= ngx_http_agentid_audit_str(o, "jti",
                                         &f[NGX_HTTP_AGENTID_F_JTI]);
        rc |= ngx_http_agentid_audit_str(o, "iss",
                                         &f[NGX_HTTP_AGENTID_F_ISSUER]);
        rc |= ngx_http_agentid_audit_str(o, "scope",
                                         &f[NGX_HTTP_AGENTID_F_SCOPE]);

        if (f[NGX_HTTP_AGENTID_F_CHAIN].len) {
            chain = json_array();
            if (chain == NULL || json_object_set_new(o, "chain", chain) != 0) {
                rc = NGX_ERROR;

            } else {
                p = f[NGX_HTTP_AGENTID_F_CHAIN].data;
                last = p + f[NGX_HTTP_AGENTID_F_CHAIN].len;

                while (p < last) {
                    q = ngx_strlchr(p, last, ',');
                    if (q == NULL) {
                        q = last;
                    }

                    hop = json_stringn((const char *) p, q - p);
                    if (hop == NULL || json_array_append_new(chain, hop) != 0) {
                        rc = NGX_ERROR;
                        break;
                    }

                    p = q + 1;
                }
            }
        }

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
