
/*
 * ngx_http_agentid_module: verifies agent tokens (JWT-SVIDs and RFC 9068
 * access tokens issued by agentid-exchange) in nginx's access phase with
 * libagentid, and hands the agent's identity to the upstream and to the
 * access log through variables.
 *
 * Everything on the request path is CPU-only: signature checks, a lookup in
 * the verified-token cache, a DPoP replay check, both in shared memory, and
 * at most one stat() of each bundle file per second per worker.  Nothing
 * here waits on the network.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/rand.h>

#include <agentid/agentid.h>

#include "ngx_http_agentid.h"




static ngx_int_t ngx_http_agentid_handler(ngx_http_request_t *r);
static ngx_http_agentid_ctx_t *ngx_http_agentid_get_ctx(ngx_http_request_t *r);
static void ngx_http_agentid_ctx_cleanup(void *data);
static ngx_int_t ngx_http_agentid_authenticate(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx);
static ngx_int_t ngx_http_agentid_parse_authorization(ngx_http_request_t *r,
    ngx_http_agentid_ctx_t *ctx);
static ngx_int_t ngx_http_agentid_token_valid(ngx_http_agentid_ctx_t *ctx);
static ngx_int_t ngx_http_agentid_verify(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx,
    struct agentid_error *err);
static ngx_int_t ngx_http_agentid_fill(ngx_http_request_t *r,
    ngx_http_agentid_ctx_t *ctx, const struct agentid_token *tok);
static ngx_int_t ngx_http_agentid_check_binding(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx,
    struct agentid_error *err);
static ngx_int_t ngx_http_agentid_check_dpop(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx,
    ngx_str_t *proof, struct agentid_error *err);
static ngx_int_t ngx_http_agentid_dpop_htu(ngx_http_request_t *r,
    const char *htu);
static ngx_int_t ngx_http_agentid_check_mtls(ngx_http_request_t *r,
    ngx_http_agentid_ctx_t *ctx, struct agentid_error *err);
static ngx_int_t ngx_http_agentid_reject(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx,
    ngx_uint_t status, const char *error, enum agentid_reason reason);
static ngx_int_t ngx_http_agentid_challenge(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, const char *scheme, const char *error,
    const char *description, ngx_str_t *scope);

static ngx_http_agentid_status_t *ngx_http_agentid_status_get(ngx_conf_t *cf,
    ngx_http_agentid_loc_conf_t *conf);
static ngx_http_agentid_audit_t *ngx_http_agentid_audit_get(ngx_conf_t *cf,
    ngx_http_agentid_loc_conf_t *conf);
static void ngx_http_agentid_exit_process(ngx_cycle_t *cycle);
static char *ngx_http_agentid_status_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

static ngx_int_t ngx_http_agentid_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_agentid_error_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_agentid_cache_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_agentid_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static void ngx_http_agentid_log_sink(void *arg, enum agentid_log_level level,
    const char *msg);
static ngx_int_t ngx_http_agentid_add_variables(ngx_conf_t *cf);
static void *ngx_http_agentid_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_agentid_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_agentid_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_agentid_build(ngx_conf_t *cf,
    ngx_http_agentid_loc_conf_t *conf);
static ngx_http_agentid_trust_t *ngx_http_agentid_trust_get(ngx_conf_t *cf,
    ngx_http_agentid_loc_conf_t *conf);
static void ngx_http_agentid_verifier_cleanup(void *data);
static ngx_int_t ngx_http_agentid_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_agentid_init_process(ngx_cycle_t *cycle);

static char *ngx_http_agentid(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_agentid_profile(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_agentid_bundle(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_agentid_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_agentid_strings(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_agentid_claim(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_agentid_audit_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_agentid_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

static ngx_conf_enum_t  ngx_http_agentid_dpop_modes[] = {
    { ngx_string("off"), NGX_HTTP_AGENTID_DPOP_OFF },
    { ngx_string("optional"), NGX_HTTP_AGENTID_DPOP_OPTIONAL },
    { ngx_string("required"), NGX_HTTP_AGENTID_DPOP_REQUIRED },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_agentid_fail_modes[] = {
    { ngx_string("open"), NGX_HTTP_AGENTID_FAIL_OPEN },
    { ngx_string("closed"), NGX_HTTP_AGENTID_FAIL_CLOSED },
    { ngx_null_string, 0 }
};


#define NGX_HTTP_AGENTID_CONF                                                 \
    (NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF)


static ngx_command_t  ngx_http_agentid_commands[] = {

    { ngx_string("agentid"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE1,
      ngx_http_agentid,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("agentid_profile"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE1,
      ngx_http_agentid_profile,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, profile),
      NULL },

    { ngx_string("agentid_bundle"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE12,
      ngx_http_agentid_bundle,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("agentid_jwks_url"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE1,
      ngx_http_agentid_url,
      NGX_HTTP_LOC_CONF_OFFSET,
      1,
      NULL },

    { ngx_string("agentid_bundle_url"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE12,
      ngx_http_agentid_url,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("agentid_issuer"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_1MORE,
      ngx_http_agentid_strings,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, issuers),
      NULL },

    { ngx_string("agentid_audience"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_1MORE,
      ngx_http_agentid_strings,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, audiences),
      NULL },

    { ngx_string("agentid_leeway"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, leeway),
      NULL },

    { ngx_string("agentid_require_scope"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_1MORE,
      ngx_http_agentid_strings,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, scopes_all),
      NULL },

    { ngx_string("agentid_require_any_scope"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_1MORE,
      ngx_http_agentid_strings,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, scopes_any),
      NULL },

    { ngx_string("agentid_allow_agent"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_1MORE,
      ngx_http_agentid_strings,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, agents),
      NULL },

    { ngx_string("agentid_allow_subject"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_1MORE,
      ngx_http_agentid_strings,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, subjects),
      NULL },

    { ngx_string("agentid_max_delegation_depth"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, max_depth),
      NULL },

    { ngx_string("agentid_require_claim"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE12,
      ngx_http_agentid_claim,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("agentid_dpop"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, dpop),
      &ngx_http_agentid_dpop_modes },

    { ngx_string("agentid_dpop_max_age"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, dpop_max_age),
      NULL },

    { ngx_string("agentid_dpop_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_agentid_main_conf_t, replay_size),
      NULL },

    { ngx_string("agentid_mtls_binding"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, mtls_binding),
      NULL },

    { ngx_string("agentid_status_list"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, status_list),
      NULL },

    { ngx_string("agentid_status_list_max_age"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, status_max_age),
      NULL },

    { ngx_string("agentid_status_list_refresh"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, status_refresh),
      NULL },

    { ngx_string("agentid_status_list_file"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE2,
      ngx_http_agentid_status_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("agentid_status_fail"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agentid_loc_conf_t, status_fail),
      &ngx_http_agentid_fail_modes },

    { ngx_string("agentid_audit"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE12,
      ngx_http_agentid_audit_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("agentid_fetch_ca"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_agentid_main_conf_t, fetch_ca),
      NULL },

    { ngx_string("agentid_cache"),
      NGX_HTTP_AGENTID_CONF|NGX_CONF_TAKE1,
      ngx_http_agentid_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_agentid_module_ctx = {
    ngx_http_agentid_add_variables,        /* preconfiguration */
    ngx_http_agentid_init,                 /* postconfiguration */

    ngx_http_agentid_create_main_conf,     /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_agentid_create_loc_conf,      /* create location configuration */
    ngx_http_agentid_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_agentid_module = {
    NGX_MODULE_V1,
    &ngx_http_agentid_module_ctx,          /* module context */
    ngx_http_agentid_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_agentid_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_agentid_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_agentid_vars[] = {

    { ngx_string("agentid_subject"), NULL, ngx_http_agentid_variable,
      NGX_HTTP_AGENTID_F_SUBJECT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("agentid_agent"), NULL, ngx_http_agentid_variable,
      NGX_HTTP_AGENTID_F_AGENT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("agentid_chain"), NULL, ngx_http_agentid_variable,
      NGX_HTTP_AGENTID_F_CHAIN, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("agentid_depth"), NULL, ngx_http_agentid_variable,
      NGX_HTTP_AGENTID_F_DEPTH, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("agentid_scope"), NULL, ngx_http_agentid_variable,
      NGX_HTTP_AGENTID_F_SCOPE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("agentid_task"), NULL, ngx_http_agentid_variable,
      NGX_HTTP_AGENTID_F_TASK, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("agentid_jti"), NULL, ngx_http_agentid_variable,
      NGX_HTTP_AGENTID_F_JTI, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("agentid_trust_domain"), NULL, ngx_http_agentid_variable,
      NGX_HTTP_AGENTID_F_TRUST_DOMAIN, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("agentid_issuer"), NULL, ngx_http_agentid_variable,
      NGX_HTTP_AGENTID_F_ISSUER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("agentid_profile"), NULL, ngx_http_agentid_variable,
      NGX_HTTP_AGENTID_F_PROFILE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("agentid_error"), NULL, ngx_http_agentid_error_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("agentid_cache_status"), NULL,
      ngx_http_agentid_cache_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("agentid_claim_"), NULL, ngx_http_agentid_claim_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_agentid_default_realm = ngx_string("agentid");
static ngx_str_t  ngx_http_agentid_cache_name = ngx_string("agentid_cache");
static ngx_str_t  ngx_http_agentid_replay_name = ngx_string("agentid_dpop");
static ngx_str_t  ngx_http_agentid_fetch_name = ngx_string("agentid_fetch");



static ngx_int_t
ngx_http_agentid_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_uint_t                    recorded;
    ngx_pool_cleanup_t           *cln;
    ngx_http_agentid_ctx_t       *ctx;
    ngx_http_agentid_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_agentid_module);

    if (!alcf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_agentid_get_ctx(r);

    if (ctx != NULL && ctx->alcf == alcf) {
        /* the same rules decided already, before an internal redirect */
        return ctx->rc;
    }

    if (ctx == NULL) {
        cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_agentid_ctx_t));
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx = cln->data;
        ngx_memzero(ctx, sizeof(ngx_http_agentid_ctx_t));
        cln->handler = ngx_http_agentid_ctx_cleanup;

        ngx_http_set_ctx(r, ctx, ngx_http_agentid_module);

    } else {
        /*
         * An internal redirect led to a location with other rules: decide
         * again, but this request's DPoP proof was already recorded in the
         * replay cache and must not count as its own replay.
         */
        recorded = ctx->dpop_recorded;

        if (ctx->claims != NULL) {
            json_decref(ctx->claims);
        }

        ngx_memzero(ctx, sizeof(ngx_http_agentid_ctx_t));
        ctx->dpop_recorded = recorded;
    }

    ctx->alcf = alcf;

    rc = ngx_http_agentid_authenticate(r, alcf, ctx);

    ctx->rc = rc;

    ngx_http_agentid_audit(r, alcf, ctx);

    return rc;
}


/*
 * The module context, also after an internal redirect (which clears every
 * module's context): like the realip module, it is found again through
 * the cleanup handler that owns it.
 */
static ngx_http_agentid_ctx_t *
ngx_http_agentid_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t      *cln;
    ngx_http_agentid_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_agentid_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {
        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_agentid_ctx_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_agentid_module);
                break;
            }
        }
    }

    return ctx;
}


static void
ngx_http_agentid_ctx_cleanup(void *data)
{
    ngx_http_agentid_ctx_t  *ctx = data;

    if (ctx->claims != NULL) {
        json_decref(ctx->claims);
        ctx->claims = NULL;
    }
}


static ngx_int_t
ngx_http_agentid_authenticate(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx)
{
    u_char                 key[NGX_HTTP_AGENTID_DIGEST_LEN];
    ngx_int_t              rc;
    ngx_uint_t             cache;
    struct agentid_error   err;

    agentid_error_clear(&err);

    if (alcf->verifier == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "agentid: no agentid_bundle, agentid_jwks_url or "
                      "agentid_bundle_url applies to this request");
        agentid_error_set(&err, AGENTID_R_NO_KEYS, "no trust configured");
        goto reject;
    }

    rc = ngx_http_agentid_parse_authorization(r, ctx);

    if (rc == NGX_DECLINED) {
        /* RFC 6750 3.1: no error code when the request had no credentials */
        ctx->error = "missing_token";
        return ngx_http_agentid_reject(r, alcf, ctx,
                                       NGX_HTTP_UNAUTHORIZED, NULL,
                                       AGENTID_R_OK);
    }

    if (rc == NGX_ERROR) {
        goto malformed;
    }

    if (ctx->scheme == NGX_HTTP_AGENTID_SCHEME_DPOP
        && alcf->dpop == NGX_HTTP_AGENTID_DPOP_OFF)
    {
        if (ngx_http_agentid_token_valid(ctx) != NGX_OK) {
            goto malformed;
        }

        /* DPoP is not accepted here: answer as to an unknown scheme */
        ctx->error = "missing_token";
        ctx->scheme = NGX_HTTP_AGENTID_SCHEME_NONE;
        return ngx_http_agentid_reject(r, alcf, ctx,
                                       NGX_HTTP_UNAUTHORIZED, NULL,
                                       AGENTID_R_OK);
    }

    if (alcf->trust != NULL) {
        ngx_http_agentid_trust_refresh(alcf->trust, r->connection->log);
    }

    cache = 0;
    ctx->cache_status = NGX_HTTP_AGENTID_CACHE_BYPASS;

    if (ngx_http_agentid_cache_key(r, alcf, ctx, key) == NGX_OK) {
        cache = 1;
        ctx->cache_status = NGX_HTTP_AGENTID_CACHE_MISS;

        if (ngx_http_agentid_cache_get(r, ctx, key) == NGX_OK) {
            ctx->cached = 1;
            ctx->identified = 1;
            ctx->cache_status = NGX_HTTP_AGENTID_CACHE_HIT;
        }
    }

    if (!ctx->cached) {
        /*
         * Only now are the token's characters checked: a cache hit is a
         * token byte for byte equal to one that passed this check and the
         * verification, and skips scanning it again.
         */
        if (ngx_http_agentid_token_valid(ctx) != NGX_OK) {
            goto malformed;
        }

        rc = ngx_http_agentid_verify(r, alcf, ctx, &err);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc != NGX_OK) {
            goto reject;
        }

        if (cache) {
            ngx_http_agentid_cache_put(r, ctx, key);
        }
    }

    rc = ngx_http_agentid_check_binding(r, alcf, ctx, &err);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        goto reject;
    }

    rc = ngx_http_agentid_status_check(r, alcf, ctx, &err);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        goto reject;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "agentid: allowed agent \"%V\" jti \"%V\"%s",
                   &ctx->field[NGX_HTTP_AGENTID_F_AGENT],
                   &ctx->field[NGX_HTTP_AGENTID_F_JTI],
                   ctx->cached ? " (cached)" : "");

    ctx->reason = AGENTID_R_OK;

    return NGX_OK;

malformed:

    ctx->error = agentid_reason_code(AGENTID_R_MALFORMED);
    return ngx_http_agentid_reject(r, alcf, ctx, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request", AGENTID_R_MALFORMED);

reject:

    ctx->reason = err.reason;
    ctx->error = agentid_reason_code(err.reason);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "agentid: token rejected: %s: %s",
                  ctx->error, err.detail);

    if (err.reason == AGENTID_R_UNKNOWN_KID || err.reason == AGENTID_R_NO_KEYS) {
        ngx_http_agentid_url_want_refresh(alcf->trust);
    }

    switch (err.reason) {

    case AGENTID_R_INSUFFICIENT_SCOPE:
    case AGENTID_R_AGENT_NOT_ALLOWED:
    case AGENTID_R_SUBJECT_NOT_ALLOWED:
    case AGENTID_R_CLAIM_MISMATCH:
    case AGENTID_R_CHAIN_TOO_DEEP:
        return ngx_http_agentid_reject(r, alcf, ctx, NGX_HTTP_FORBIDDEN,
                                       "insufficient_scope", err.reason);

    case AGENTID_R_DPOP_INVALID:
    case AGENTID_R_DPOP_REPLAY:
        return ngx_http_agentid_reject(r, alcf, ctx, NGX_HTTP_UNAUTHORIZED,
                                       "invalid_dpop_proof", err.reason);

    default:
        return ngx_http_agentid_reject(r, alcf, ctx, NGX_HTTP_UNAUTHORIZED,
                                       "invalid_token", err.reason);
    }
}


/* The characters of RFC 6750's b64token, one table lookup per byte. */
static const u_char  ngx_http_agentid_b64token[256] = {
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
    ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
    ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
    ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['+'] = 1, ['/'] = 1
};


/*
 * Takes the token out of "Authorization: Bearer <token>" or "DPoP <token>".
 * NGX_DECLINED when there is no such header (or another scheme, such as
 * Basic, which is not ours to judge), NGX_ERROR when it is malformed.
 */
static ngx_int_t
ngx_http_agentid_parse_authorization(ngx_http_request_t *r,
    ngx_http_agentid_ctx_t *ctx)
{
    u_char     *p, *last;
    ngx_str_t   value;

    if (r->headers_in.authorization == NULL) {
        return NGX_DECLINED;
    }

    value = r->headers_in.authorization->value;
    p = value.data;
    last = p + value.len;

    if (value.len > 7 && ngx_strncasecmp(p, (u_char *) "Bearer ", 7) == 0) {
        ctx->scheme = NGX_HTTP_AGENTID_SCHEME_BEARER;
        p += 7;

    } else if (value.len > 5
               && ngx_strncasecmp(p, (u_char *) "DPoP ", 5) == 0)
    {
        ctx->scheme = NGX_HTTP_AGENTID_SCHEME_DPOP;
        p += 5;

    } else if ((value.len == 6
                && ngx_strncasecmp(p, (u_char *) "Bearer", 6) == 0)
               || (value.len == 4
                   && ngx_strncasecmp(p, (u_char *) "DPoP", 4) == 0))
    {
        /* our scheme without a token */
        return NGX_ERROR;

    } else {
        return NGX_DECLINED;
    }

    while (p < last && *p == ' ') {
        p++;
    }

    if (p == last) {
        return NGX_ERROR;
    }

    /* the characters are checked by ngx_http_agentid_token_valid() */

    ctx->token.data = p;
    ctx->token.len = last - p;

    return NGX_OK;
}


/*
 * RFC 6750 2.1:
 * b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
 */
static ngx_int_t
ngx_http_agentid_token_valid(ngx_http_agentid_ctx_t *ctx)
{
    u_char  *p, *last, *start;

    p = ctx->token.data;
    last = p + ctx->token.len;
    start = p;

    while (p < last && ngx_http_agentid_b64token[*p]) {
        p++;
    }

    if (p == start) {
        return NGX_ERROR;
    }

    while (p < last && *p == '=') {
        p++;
    }

    return (p == last) ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_agentid_verify(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx,
    struct agentid_error *err)
{
    int                           rv;
    ngx_int_t                     rc;
    ngx_uint_t                    i;
    ngx_str_t                    *s;
    struct agentid_token         *tok, *refused;
    const struct agentid_trust   *trust;
    const struct agentid_scopes  *scopes;

    tok = NULL;
    refused = NULL;
    trust = (alcf->trust != NULL) ? alcf->trust->trust : NULL;

    if (trust == NULL) {
        agentid_error_set(err, AGENTID_R_NO_KEYS, "no trust configured");
        return NGX_DECLINED;
    }

    /*
     * An authentic token that a rule of this location refuses: who it was
     * goes to the audit record (the variables stay empty), so it is asked
     * for only where there is an audit record to write.
     */

    rv = agentid_verify_ex(alcf->verifier, trust,
                           (const char *) ctx->token.data, ctx->token.len,
                           ngx_time(), &tok,
                           alcf->audit != NULL ? &refused : NULL, err);

    if (rv == AGENTID_EREJECTED) {
        if (refused != NULL) {
            rc = ngx_http_agentid_fill(r, ctx, refused);
            agentid_token_free(refused);

            if (rc != NGX_OK) {
                return NGX_ERROR;
            }
        }

        return NGX_DECLINED;
    }

    if (rv != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "agentid: verification failed: %s",
                      agentid_strerror(rv));
        agentid_error_set(err, AGENTID_R_INTERNAL, "%s",
                          agentid_strerror(rv));
        return NGX_DECLINED;
    }

    /*
     * The verifier checks all-of scopes; "any of" is the module's own rule,
     * checked here so that a cached decision already includes it.
     */

    if (alcf->scopes_any != NULL && alcf->scopes_any->nelts > 0) {
        scopes = agentid_token_scopes(tok);
        s = alcf->scopes_any->elts;

        for (i = 0; i < alcf->scopes_any->nelts; i++) {
            if (scopes != NULL
                && agentid_scopes_has(scopes, (const char *) s[i].data,
                                      s[i].len))
            {
                break;
            }
        }

        if (i == alcf->scopes_any->nelts) {
            rc = (alcf->audit != NULL) ? ngx_http_agentid_fill(r, ctx, tok)
                                       : NGX_OK;
            agentid_token_free(tok);

            if (rc != NGX_OK) {
                return NGX_ERROR;
            }

            agentid_error_set(err, AGENTID_R_INSUFFICIENT_SCOPE,
                              "none of the accepted scopes granted");
            return NGX_DECLINED;
        }
    }

    rc = ngx_http_agentid_fill(r, ctx, tok);

    agentid_token_free(tok);

    return rc;
}


static ngx_int_t
ngx_http_agentid_dup(ngx_http_request_t *r, ngx_str_t *dst, const char *src)
{
    size_t  len;

    if (src == NULL) {
        ngx_str_null(dst);
        return NGX_OK;
    }

    len = ngx_strlen(src);

    if (len > NGX_HTTP_AGENTID_MAX_FIELD) {
        len = NGX_HTTP_AGENTID_MAX_FIELD;
    }

    dst->data = ngx_pnalloc(r->pool, len);
    if (dst->data == NULL && len != 0) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src, len);
    dst->len = len;

    return NGX_OK;
}


/* Copies what the variables, the binding and status checks need. */
static ngx_int_t
ngx_http_agentid_fill(ngx_http_request_t *r, ngx_http_agentid_ctx_t *ctx,
    const struct agentid_token *tok)
{
    u_char                       *p;
    char                         *s;
    ngx_int_t                     rc;
    ngx_str_t                    *f;
    const json_t                 *claims, *cnf, *st, *sl, *v;
    const struct agentid_chain   *chain;
    const struct agentid_scopes  *scopes;

    f = ctx->field;

    if (ngx_http_agentid_dup(r, &f[NGX_HTTP_AGENTID_F_SUBJECT],
                             agentid_token_sub(tok)) != NGX_OK
        || ngx_http_agentid_dup(r, &f[NGX_HTTP_AGENTID_F_AGENT],
                                agentid_token_agent(tok)) != NGX_OK
        || ngx_http_agentid_dup(r, &f[NGX_HTTP_AGENTID_F_TASK],
                                agentid_token_task(tok)) != NGX_OK
        || ngx_http_agentid_dup(r, &f[NGX_HTTP_AGENTID_F_JTI],
                                agentid_token_jti(tok)) != NGX_OK
        || ngx_http_agentid_dup(r, &f[NGX_HTTP_AGENTID_F_TRUST_DOMAIN],
                                agentid_token_trust_domain(tok)) != NGX_OK
        || ngx_http_agentid_dup(r, &f[NGX_HTTP_AGENTID_F_ISSUER],
                                agentid_token_iss(tok)) != NGX_OK
        || ngx_http_agentid_dup(r, &f[NGX_HTTP_AGENTID_F_PROFILE],
                        agentid_profile_name(agentid_token_profile(tok)))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    chain = agentid_token_chain(tok);

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    f[NGX_HTTP_AGENTID_F_DEPTH].data = p;
    f[NGX_HTTP_AGENTID_F_DEPTH].len = ngx_sprintf(p, "%uz",
                          chain != NULL ? agentid_chain_len(chain) : 0) - p;

    if (chain != NULL && agentid_chain_len(chain) > 0) {
        s = NULL;
        if (agentid_chain_to_string(chain, ",", &s) != 0) {
            return NGX_ERROR;
        }

        rc = ngx_http_agentid_dup(r, &f[NGX_HTTP_AGENTID_F_CHAIN], s);
        agentid_free(s);

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }
    }

    scopes = agentid_token_scopes(tok);

    if (scopes != NULL) {
        s = NULL;
        if (agentid_scopes_to_string(scopes, &s) != 0) {
            return NGX_ERROR;
        }

        rc = ngx_http_agentid_dup(r, &f[NGX_HTTP_AGENTID_F_SCOPE], s);
        agentid_free(s);

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }
    }

    claims = agentid_token_claims(tok);

    cnf = json_object_get(claims, "cnf");

    if (json_is_object(cnf)) {
        v = json_object_get(cnf, "jkt");
        if (json_is_string(v)
            && ngx_http_agentid_dup(r, &f[NGX_HTTP_AGENTID_F_CNF_JKT],
                                    json_string_value(v)) != NGX_OK)
        {
            return NGX_ERROR;
        }

        v = json_object_get(cnf, "x5t#S256");
        if (json_is_string(v)
            && ngx_http_agentid_dup(r, &f[NGX_HTTP_AGENTID_F_CNF_X5T],
                                    json_string_value(v)) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    st = json_object_get(claims, "status");
    sl = json_is_object(st) ? json_object_get(st, "status_list") : NULL;

    if (json_is_object(sl)) {
        v = json_object_get(sl, "uri");
        if (json_is_string(v)
            && ngx_http_agentid_dup(r, &f[NGX_HTTP_AGENTID_F_STATUS_URI],
                                    json_string_value(v)) != NGX_OK)
        {
            return NGX_ERROR;
        }

        v = json_object_get(sl, "idx");
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
            p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
            if (p == NULL) {
                return NGX_ERROR;
            }

            f[NGX_HTTP_AGENTID_F_STATUS_IDX].data = p;
            f[NGX_HTTP_AGENTID_F_STATUS_IDX].len =
                ngx_sprintf(p, "%L", (int64_t) json_integer_value(v)) - p;
        }
    }

    ctx->expires = (time_t) agentid_token_exp(tok);
    ctx->identified = 1;

    return NGX_OK;
}


/* ---------------------------------------------------------------------
 * Proof of possession: DPoP (RFC 9449) and mTLS (RFC 8705)
 */


static ngx_int_t
ngx_http_agentid_check_binding(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx,
    struct agentid_error *err)
{
    ngx_int_t         rc;
    ngx_str_t        *proof;
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    if (ctx->scheme == NGX_HTTP_AGENTID_SCHEME_DPOP) {

        proof = NULL;
        n = 0;

        part = &r->headers_in.headers.part;
        h = part->elts;

        for (i = 0; /* void */ ; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                h = part->elts;
                i = 0;
            }

            if (h[i].key.len == 4
                && ngx_strncasecmp(h[i].key.data, (u_char *) "DPoP", 4) == 0)
            {
                proof = &h[i].value;
                n++;
            }
        }

        if (n != 1) {
            agentid_error_set(err, AGENTID_R_DPOP_INVALID,
                              n == 0 ? "no DPoP proof"
                                     : "more than one DPoP proof");
            return NGX_DECLINED;
        }

        if (ctx->field[NGX_HTTP_AGENTID_F_CNF_JKT].len == 0) {
            agentid_error_set(err, AGENTID_R_BINDING_MISMATCH,
                              "DPoP used with a token that is not bound");
            return NGX_DECLINED;
        }

        rc = ngx_http_agentid_check_dpop(r, alcf, ctx, proof, err);
        if (rc != NGX_OK) {
            return rc;
        }

    } else {

        if (ctx->field[NGX_HTTP_AGENTID_F_CNF_JKT].len != 0) {
            agentid_error_set(err, AGENTID_R_BINDING_REQUIRED,
                              "DPoP-bound token used as a bearer token");
            return NGX_DECLINED;
        }

        if (alcf->dpop == NGX_HTTP_AGENTID_DPOP_REQUIRED) {
            agentid_error_set(err, AGENTID_R_BINDING_REQUIRED,
                              "a DPoP-bound token is required");
            return NGX_DECLINED;
        }
    }

    if (alcf->mtls_binding && ctx->field[NGX_HTTP_AGENTID_F_CNF_X5T].len) {
        return ngx_http_agentid_check_mtls(r, ctx, err);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_agentid_check_dpop(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx,
    ngx_str_t *proof, struct agentid_error *err)
{
    u_char                 hash[NGX_HTTP_AGENTID_DIGEST_LEN];
    u_char                 ath[AGENTID_THUMBPRINT_LEN + 1];
    u_char                 key[NGX_HTTP_AGENTID_DIGEST_LEN];
    char                   jkt[AGENTID_THUMBPRINT_LEN + 1];
    time_t                 now, iat;
    ngx_int_t              rc, rv;
    ngx_str_t              src, dst, empty;
    const char            *s;
    const json_t          *jwk, *v;
    struct agentid_jws            *jws;
    struct agentid_key            *k;
    ngx_http_agentid_main_conf_t  *amcf;

    jws = NULL;
    k = NULL;
    rc = NGX_DECLINED;
    now = ngx_time();

    if (agentid_jws_parse((const char *) proof->data, proof->len, NULL, &jws,
                          err)
        != 0)
    {
        agentid_error_set(err, AGENTID_R_DPOP_INVALID,
                          "proof is not a well-formed JWS");
        goto out;
    }

    if (jws->typ == NULL || ngx_strcmp(jws->typ, "dpop+jwt") != 0) {
        agentid_error_set(err, AGENTID_R_DPOP_INVALID, "typ is not dpop+jwt");
        goto out;
    }

    jwk = json_object_get(jws->header, "jwk");

    if (!json_is_object(jwk) || json_object_get(jwk, "d") != NULL) {
        agentid_error_set(err, AGENTID_R_DPOP_INVALID,
                          "no public jwk in the proof header");
        goto out;
    }

    if (agentid_key_from_jwk(jwk, &k, err) != 0
        || !agentid_key_supports_alg(k, jws->alg)
        || agentid_jws_verify(jws, k, err) != 0)
    {
        agentid_error_set(err, AGENTID_R_DPOP_INVALID,
                          "proof signature does not verify");
        goto out;
    }

    v = json_object_get(jws->payload, "htm");
    if (!json_is_string(v)
        || json_string_length(v) != r->method_name.len
        || ngx_strncmp(json_string_value(v), r->method_name.data,
                       r->method_name.len) != 0)
    {
        agentid_error_set(err, AGENTID_R_DPOP_INVALID,
                          "htm does not match the request method");
        goto out;
    }

    v = json_object_get(jws->payload, "htu");
    if (!json_is_string(v)
        || ngx_http_agentid_dpop_htu(r, json_string_value(v)) != NGX_OK)
    {
        agentid_error_set(err, AGENTID_R_DPOP_INVALID,
                          "htu does not match the request URI");
        goto out;
    }

    v = json_object_get(jws->payload, "iat");
    if (!json_is_integer(v)) {
        agentid_error_set(err, AGENTID_R_DPOP_INVALID, "no numeric iat");
        goto out;
    }

    iat = (time_t) json_integer_value(v);

    if (iat > now + alcf->leeway || iat < now - alcf->dpop_max_age - alcf->leeway) {
        agentid_error_set(err, AGENTID_R_DPOP_INVALID,
                          "iat outside the accepted window");
        goto out;
    }

    v = json_object_get(jws->payload, "jti");
    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > 256)
    {
        agentid_error_set(err, AGENTID_R_DPOP_INVALID, "no usable jti");
        goto out;
    }

    /* ath: the base64url SHA-256 of the access token (RFC 9449 4.2) */

    if (ngx_http_agentid_sha256(ctx->token.data, ctx->token.len, NULL, 0,
                                NULL, 0, hash)
        != NGX_OK)
    {
        rc = NGX_ERROR;
        goto out;
    }

    src.data = hash;
    src.len = sizeof(hash);
    dst.data = ath;
    ngx_encode_base64url(&dst, &src);

    v = json_object_get(jws->payload, "ath");
    if (!json_is_string(v) || json_string_length(v) != dst.len
        || ngx_strncmp(json_string_value(v), dst.data, dst.len) != 0)
    {
        agentid_error_set(err, AGENTID_R_DPOP_INVALID,
                          "ath does not match the access token");
        goto out;
    }

    if (agentid_key_thumbprint(k, jkt, sizeof(jkt)) != 0) {
        agentid_error_set(err, AGENTID_R_DPOP_INVALID,
                          "cannot compute the proof key thumbprint");
        goto out;
    }

    if (ctx->field[NGX_HTTP_AGENTID_F_CNF_JKT].len != ngx_strlen(jkt)
        || ngx_strncmp(ctx->field[NGX_HTTP_AGENTID_F_CNF_JKT].data, jkt,
                       ngx_strlen(jkt)) != 0)
    {
        agentid_error_set(err, AGENTID_R_BINDING_MISMATCH,
                          "proof key does not match cnf.jkt");
        goto out;
    }

    /*
     * The proof is good; it may be used once.  The replay cache keeps the
     * pair (key thumbprint, jti) until the proof would be too old anyway.
     */

    if (alcf->dpop != NGX_HTTP_AGENTID_DPOP_OFF && !ctx->dpop_recorded) {
        v = json_object_get(jws->payload, "jti");
        s = json_string_value(v);

        if (ngx_http_agentid_sha256(jkt, ngx_strlen(jkt), "\0", 1, s,
                                    ngx_strlen(s), key)
            != NGX_OK)
        {
            rc = NGX_ERROR;
            goto out;
        }

        ngx_str_null(&empty);

        amcf = ngx_http_get_module_main_conf(r, ngx_http_agentid_module);

        rv = ngx_http_agentid_shm_put(amcf->replay_zone, key,
                                      iat + alcf->dpop_max_age
                                      + 2 * alcf->leeway + 1,
                                      now, &empty, 1);
        if (rv == NGX_DECLINED) {
            agentid_error_set(err, AGENTID_R_DPOP_REPLAY,
                              "DPoP proof jti was already used");
            goto out;
        }

        if (rv != NGX_OK) {
            rc = NGX_ERROR;
            goto out;
        }

        ctx->dpop_recorded = 1;
    }

    rc = NGX_OK;

out:

    agentid_key_free(k);
    agentid_jws_free(jws);

    return rc;
}


/*
 * Compares the proof's htu with the URI of this request: scheme and host
 * case-insensitively, default ports ignored, the path exactly; query and
 * fragment of htu are not part of the comparison (RFC 9449 4.3).
 */
static ngx_int_t
ngx_http_agentid_dpop_htu(ngx_http_request_t *r, const char *htu)
{
    size_t      len, slen, alen, plen, hlen;
    u_char     *p, *last, *auth, *path, *q;
    ngx_str_t   scheme, host, uri;

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        ngx_str_set(&scheme, "https");
    } else
#endif
    {
        ngx_str_set(&scheme, "http");
    }

    if (r->headers_in.host == NULL) {
        return NGX_DECLINED;
    }

    host = r->headers_in.host->value;

    len = ngx_strlen(htu);
    p = (u_char *) htu;
    last = p + len;

    q = ngx_strlcasestrn(p, last, (u_char *) "://", 3 - 1);
    if (q == NULL) {
        return NGX_DECLINED;
    }

    slen = q - p;

    if (slen != scheme.len || ngx_strncasecmp(p, scheme.data, slen) != 0) {
        return NGX_DECLINED;
    }

    auth = q + 3;

    for (path = auth; path < last; path++) {
        if (*path == '/' || *path == '?' || *path == '#') {
            break;
        }
    }

    alen = path - auth;

    for (q = path; q < last; q++) {
        if (*q == '?' || *q == '#') {
            break;
        }
    }

    plen = q - path;

    /* strip the default port on both sides */

    if (alen > 3 && scheme.len == 4
        && ngx_strncmp(auth + alen - 3, ":80", 3) == 0)
    {
        alen -= 3;

    } else if (alen > 4 && scheme.len == 5
               && ngx_strncmp(auth + alen - 4, ":443", 4) == 0)
    {
        alen -= 4;
    }

    hlen = host.len;

    if (hlen > 3 && scheme.len == 4
        && ngx_strncmp(host.data + hlen - 3, ":80", 3) == 0)
    {
        hlen -= 3;

    } else if (hlen > 4 && scheme.len == 5
               && ngx_strncmp(host.data + hlen - 4, ":443", 4) == 0)
    {
        hlen -= 4;
    }

    if (alen != hlen || ngx_strncasecmp(auth, host.data, alen) != 0) {
        return NGX_DECLINED;
    }

    uri = r->unparsed_uri;

    for (len = 0; len < uri.len; len++) {
        if (uri.data[len] == '?' || uri.data[len] == '#') {
            break;
        }
    }

    if (plen == 0) {
        return (len == 1 && uri.data[0] == '/') ? NGX_OK : NGX_DECLINED;
    }

    if (plen != len || ngx_strncmp(path, uri.data, len) != 0) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_agentid_check_mtls(ngx_http_request_t *r, ngx_http_agentid_ctx_t *ctx,
    struct agentid_error *err)
{
#if (NGX_HTTP_SSL)
    int          len;
    u_char       hash[NGX_HTTP_AGENTID_DIGEST_LEN];
    u_char       b64[AGENTID_THUMBPRINT_LEN + 1];
    u_char      *der, *p;
    X509        *cert;
    ngx_int_t    rc;
    ngx_str_t    src, dst, *x5t;

    if (r->connection->ssl == NULL) {
        agentid_error_set(err, AGENTID_R_BINDING_MISMATCH,
                          "certificate-bound token without TLS");
        return NGX_DECLINED;
    }

#if (OPENSSL_VERSION_NUMBER >= 0x30000000L)
    cert = SSL_get1_peer_certificate(r->connection->ssl->connection);
#else
    cert = SSL_get_peer_certificate(r->connection->ssl->connection);
#endif

    if (cert == NULL) {
        agentid_error_set(err, AGENTID_R_BINDING_MISMATCH,
                          "certificate-bound token without a client "
                          "certificate");
        return NGX_DECLINED;
    }

    len = i2d_X509(cert, NULL);
    if (len <= 0) {
        X509_free(cert);
        return NGX_ERROR;
    }

    der = ngx_pnalloc(r->pool, len);
    if (der == NULL) {
        X509_free(cert);
        return NGX_ERROR;
    }

    p = der;
    i2d_X509(cert, &p);
    X509_free(cert);

    rc = ngx_http_agentid_sha256(der, len, NULL, 0, NULL, 0, hash);
    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    src.data = hash;
    src.len = sizeof(hash);
    dst.data = b64;
    ngx_encode_base64url(&dst, &src);

    x5t = &ctx->field[NGX_HTTP_AGENTID_F_CNF_X5T];

    if (x5t->len != dst.len || ngx_strncmp(x5t->data, dst.data, dst.len) != 0) {
        agentid_error_set(err, AGENTID_R_BINDING_MISMATCH,
                          "client certificate does not match cnf.x5t#S256");
        return NGX_DECLINED;
    }

    return NGX_OK;
#else
    agentid_error_set(err, AGENTID_R_BINDING_MISMATCH,
                      "nginx was built without TLS");
    return NGX_DECLINED;
#endif
}


/* ---------------------------------------------------------------------
 * Responses: RFC 6750 section 3 and RFC 9449 section 7.1
 */


static ngx_int_t
ngx_http_agentid_reject(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, ngx_http_agentid_ctx_t *ctx,
    ngx_uint_t status, const char *error, enum agentid_reason reason)
{
    ngx_str_t   *scope;
    const char  *desc;
    ngx_uint_t   dpop;

    desc = (reason == AGENTID_R_OK) ? NULL : agentid_reason_code(reason);
    scope = (reason == AGENTID_R_INSUFFICIENT_SCOPE && alcf->scope_hint.len)
            ? &alcf->scope_hint : NULL;

    /*
     * The challenge names the scheme the client used; a request that used
     * none (or Bearer with a token that needed a proof) gets the schemes
     * this location accepts.
     */

    dpop = (ctx->scheme == NGX_HTTP_AGENTID_SCHEME_DPOP
            || reason == AGENTID_R_BINDING_REQUIRED
            || (ctx->scheme == NGX_HTTP_AGENTID_SCHEME_NONE
                && alcf->dpop != NGX_HTTP_AGENTID_DPOP_OFF));

    if (ctx->scheme != NGX_HTTP_AGENTID_SCHEME_DPOP
        && alcf->dpop != NGX_HTTP_AGENTID_DPOP_REQUIRED
        && reason != AGENTID_R_BINDING_REQUIRED)
    {
        if (ngx_http_agentid_challenge(r, alcf, "Bearer", error, desc, scope)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (dpop) {
        if (ngx_http_agentid_challenge(r, alcf, "DPoP", error, desc, scope)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return status;
}


static ngx_int_t
ngx_http_agentid_challenge(ngx_http_request_t *r,
    ngx_http_agentid_loc_conf_t *alcf, const char *scheme, const char *error,
    const char *description, ngx_str_t *scope)
{
    size_t            len;
    u_char           *p;
    ngx_table_elt_t  *h;

    len = ngx_strlen(scheme) + sizeof(" realm=\"\"") - 1 + alcf->realm.len;

    if (error != NULL) {
        len += sizeof(", error=\"\"") - 1 + ngx_strlen(error);
    }

    if (description != NULL) {
        len += sizeof(", error_description=\"\"") - 1
               + ngx_strlen(description);
    }

    if (scope != NULL) {
        len += sizeof(", scope=\"\"") - 1 + scope->len;
    }

    if (ngx_strcmp(scheme, "DPoP") == 0) {
        len += sizeof(", algs=\"ES256 ES384 ES512 RS256 PS256 EdDSA Ed25519\"")
               - 1;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "WWW-Authenticate");
    h->value.data = p;

    p = ngx_sprintf(p, "%s realm=\"%V\"", scheme, &alcf->realm);

    if (error != NULL) {
        p = ngx_sprintf(p, ", error=\"%s\"", error);
    }

    if (description != NULL) {
        p = ngx_sprintf(p, ", error_description=\"%s\"", description);
    }

    if (scope != NULL) {
        p = ngx_sprintf(p, ", scope=\"%V\"", scope);
    }

    if (ngx_strcmp(scheme, "DPoP") == 0) {
        p = ngx_cpymem(p,
                  ", algs=\"ES256 ES384 ES512 RS256 PS256 EdDSA Ed25519\"",
                  sizeof(", algs=\"ES256 ES384 ES512 RS256 PS256 EdDSA Ed25519\"")
                  - 1);
    }

    h->value.len = p - h->value.data;

    if (r->headers_out.www_authenticate == NULL) {
        r->headers_out.www_authenticate = h;
    }

    return NGX_OK;
}


/* ---------------------------------------------------------------------
 * Variables
 */


static ngx_int_t
ngx_http_agentid_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_agentid_ctx_t  *ctx;

    ctx = ngx_http_agentid_get_ctx(r);

    if (ctx == NULL || ctx->rc != NGX_OK) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ctx->field[data].data;
    v->len = ctx->field[data].len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_agentid_error_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_agentid_ctx_t  *ctx;

    ctx = ngx_http_agentid_get_ctx(r);

    if (ctx == NULL || ctx->error == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = (u_char *) ctx->error;
    v->len = ngx_strlen(ctx->error);
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* $agentid_cache_status: HIT, MISS or BYPASS (no cache for the location). */
static ngx_int_t
ngx_http_agentid_cache_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    static ngx_str_t  names[] = {
        ngx_null_string,
        ngx_string("BYPASS"),
        ngx_string("MISS"),
        ngx_string("HIT")
    };

    ngx_http_agentid_ctx_t  *ctx;

    ctx = ngx_http_agentid_get_ctx(r);

    if (ctx == NULL || ctx->cache_status == NGX_HTTP_AGENTID_CACHE_NONE) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = names[ctx->cache_status].data;
    v->len = names[ctx->cache_status].len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * $agentid_claim_<name>: the claims are decoded from the token (already
 * verified, whether now or when it entered the cache) only when such a
 * variable is used.  Strings come out as they are; other values as
 * compact JSON.
 */
static ngx_int_t
ngx_http_agentid_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *var = (ngx_str_t *) data;

    char                    *dump, *name;
    u_char                  *p, *dot1, *dot2, *buf;
    size_t                   len, n;
    json_t                  *claims;
    const json_t            *value;
    ngx_str_t                suffix;
    struct agentid_error     err;
    ngx_http_agentid_ctx_t  *ctx;

    ctx = ngx_http_agentid_get_ctx(r);

    v->not_found = 1;

    if (ctx == NULL || ctx->rc != NGX_OK) {
        return NGX_OK;
    }

    if (!ctx->claims_parsed) {
        ctx->claims_parsed = 1;

        p = ctx->token.data;
        dot1 = ngx_strlchr(p, p + ctx->token.len, '.');
        if (dot1 == NULL) {
            return NGX_OK;
        }

        dot2 = ngx_strlchr(dot1 + 1, p + ctx->token.len, '.');
        if (dot2 == NULL) {
            return NGX_OK;
        }

        len = dot2 - dot1 - 1;
        buf = ngx_pnalloc(r->pool, agentid_b64url_decoded_max(len) + 1);
        if (buf == NULL) {
            return NGX_ERROR;
        }

        if (agentid_b64url_decode((char *) dot1 + 1, len, buf,
                                  agentid_b64url_decoded_max(len) + 1, &n)
            != 0)
        {
            return NGX_OK;
        }

        claims = NULL;
        if (agentid_json_parse((char *) buf, n, AGENTID_DEFAULT_MAX_JSON_DEPTH,
                               &claims, &err)
            != 0)
        {
            return NGX_OK;
        }

        /* freed by ngx_http_agentid_ctx_cleanup() */
        ctx->claims = claims;
    }

    if (ctx->claims == NULL) {
        return NGX_OK;
    }

    suffix.len = var->len - (sizeof("agentid_claim_") - 1);
    suffix.data = var->data + sizeof("agentid_claim_") - 1;

    name = ngx_pnalloc(r->pool, suffix.len + 1);
    if (name == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) name, suffix.data, suffix.len + 1);

    value = json_object_get(ctx->claims, name);

    if (value == NULL || json_is_null(value)) {
        return NGX_OK;
    }

    if (json_is_string(value)) {
        v->data = (u_char *) json_string_value(value);
        v->len = json_string_length(value);

    } else {
        dump = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        if (dump == NULL) {
            return NGX_ERROR;
        }

        len = ngx_strlen(dump);
        v->data = ngx_pnalloc(r->pool, len);
        if (v->data == NULL) {
            free(dump);
            return NGX_ERROR;
        }

        ngx_memcpy(v->data, dump, len);
        v->len = len;
        free(dump);
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* ---------------------------------------------------------------------
 * Configuration
 */


static void
ngx_http_agentid_log_sink(void *arg, enum agentid_log_level level,
    const char *msg)
{
    ngx_uint_t  l;

    switch (level) {
    case AGENTID_LOG_ERROR:
        l = NGX_LOG_ERR;
        break;
    case AGENTID_LOG_WARN:
        l = NGX_LOG_WARN;
        break;
    case AGENTID_LOG_INFO:
        l = NGX_LOG_INFO;
        break;
    default:
        l = NGX_LOG_DEBUG;
        break;
    }

    ngx_log_error(l, ngx_cycle->log, 0, "agentid: %s", msg);
}


static ngx_int_t
ngx_http_agentid_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_agentid_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_agentid_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_agentid_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_agentid_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&amcf->trusts, cf->pool, 4,
                       sizeof(ngx_http_agentid_trust_t *))
        != NGX_OK
        || ngx_array_init(&amcf->statuses, cf->pool, 2,
                          sizeof(ngx_http_agentid_status_t *))
           != NGX_OK
        || ngx_array_init(&amcf->audits, cf->pool, 2,
                          sizeof(ngx_http_agentid_audit_t *))
           != NGX_OK
        || ngx_array_init(&amcf->urls, cf->pool, 2,
                          sizeof(ngx_http_agentid_url_t *))
           != NGX_OK)
    {
        return NULL;
    }

    amcf->replay_size = NGX_CONF_UNSET_SIZE;

    return amcf;
}


static void *
ngx_http_agentid_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_agentid_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_agentid_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->realm = { 0, NULL };
     *     conf->audit_file = { 0, NULL };
     *     conf->audit_key = { 0, NULL };
     *     conf->trust = NULL;
     *     conf->verifier = NULL;
     *     conf->scope_hint = { 0, NULL };
     */

    conf->enable = NGX_CONF_UNSET;
    conf->profile = NGX_CONF_UNSET_UINT;
    conf->files = NGX_CONF_UNSET_PTR;
    conf->urls = NGX_CONF_UNSET_PTR;
    conf->issuers = NGX_CONF_UNSET_PTR;
    conf->audiences = NGX_CONF_UNSET_PTR;
    conf->leeway = NGX_CONF_UNSET;
    conf->scopes_all = NGX_CONF_UNSET_PTR;
    conf->scopes_any = NGX_CONF_UNSET_PTR;
    conf->agents = NGX_CONF_UNSET_PTR;
    conf->subjects = NGX_CONF_UNSET_PTR;
    conf->max_depth = NGX_CONF_UNSET;
    conf->claims = NGX_CONF_UNSET_PTR;
    conf->dpop = NGX_CONF_UNSET_UINT;
    conf->dpop_max_age = NGX_CONF_UNSET;
    conf->mtls_binding = NGX_CONF_UNSET;
    conf->status_list = NGX_CONF_UNSET;
    conf->status_max_age = NGX_CONF_UNSET;
    conf->status_refresh = NGX_CONF_UNSET;
    conf->status_fail = NGX_CONF_UNSET_UINT;
    conf->status_files = NGX_CONF_UNSET_PTR;
    conf->cache_zone = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_agentid_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_agentid_loc_conf_t  *prev = parent;
    ngx_http_agentid_loc_conf_t  *conf = child;

    ngx_http_agentid_main_conf_t  *amcf;

    if (conf->enable == NGX_CONF_UNSET) {
        conf->enable = (prev->enable == NGX_CONF_UNSET) ? 0 : prev->enable;
        conf->realm = prev->realm;
    }

    if (conf->realm.data == NULL) {
        conf->realm = ngx_http_agentid_default_realm;
    }

    ngx_conf_merge_uint_value(conf->profile, prev->profile,
                              AGENTID_PROFILE_ANY);
    ngx_conf_merge_ptr_value(conf->files, prev->files, NULL);
    ngx_conf_merge_ptr_value(conf->urls, prev->urls, NULL);
    ngx_conf_merge_ptr_value(conf->issuers, prev->issuers, NULL);
    ngx_conf_merge_ptr_value(conf->audiences, prev->audiences, NULL);
    ngx_conf_merge_sec_value(conf->leeway, prev->leeway,
                             AGENTID_DEFAULT_LEEWAY);
    ngx_conf_merge_ptr_value(conf->scopes_all, prev->scopes_all, NULL);
    ngx_conf_merge_ptr_value(conf->scopes_any, prev->scopes_any, NULL);
    ngx_conf_merge_ptr_value(conf->agents, prev->agents, NULL);
    ngx_conf_merge_ptr_value(conf->subjects, prev->subjects, NULL);
    ngx_conf_merge_value(conf->max_depth, prev->max_depth,
                         AGENTID_DEFAULT_MAX_CHAIN_DEPTH);
    ngx_conf_merge_ptr_value(conf->claims, prev->claims, NULL);
    ngx_conf_merge_uint_value(conf->dpop, prev->dpop,
                              NGX_HTTP_AGENTID_DPOP_OFF);
    ngx_conf_merge_sec_value(conf->dpop_max_age, prev->dpop_max_age, 60);
    ngx_conf_merge_value(conf->mtls_binding, prev->mtls_binding, 0);
    ngx_conf_merge_value(conf->status_list, prev->status_list, 0);
    ngx_conf_merge_sec_value(conf->status_max_age, prev->status_max_age,
                             3600);
    ngx_conf_merge_sec_value(conf->status_refresh, prev->status_refresh, 300);
    ngx_conf_merge_ptr_value(conf->status_files, prev->status_files, NULL);
    ngx_conf_merge_uint_value(conf->status_fail, prev->status_fail,
                              NGX_HTTP_AGENTID_FAIL_CLOSED);
    ngx_conf_merge_str_value(conf->audit_file, prev->audit_file, "");
    ngx_conf_merge_str_value(conf->audit_key, prev->audit_key, "");
    ngx_conf_merge_ptr_value(conf->cache_zone, prev->cache_zone, NULL);

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_agentid_module);

    if (conf->dpop != NGX_HTTP_AGENTID_DPOP_OFF) {
        amcf->dpop_used = 1;
    }

    if (ngx_http_agentid_build(cf, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->status_list && conf->trust != NULL) {
#if (NGX_THREADS)
        amcf->status_used = 1;

        conf->status = ngx_http_agentid_status_get(cf, conf);
        if (conf->status == NULL) {
            return NGX_CONF_ERROR;
        }
#else
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"agentid_status_list on\" needs nginx built "
                           "with threads (--with-threads)");
        return NGX_CONF_ERROR;
#endif
    }

    if (conf->audit_file.len) {
        conf->audit = ngx_http_agentid_audit_get(cf, conf);
        if (conf->audit == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static const char **
ngx_http_agentid_cstrings(ngx_conf_t *cf, ngx_array_t *a, size_t *n)
{
    ngx_uint_t    i;
    ngx_str_t    *s;
    const char  **list;

    *n = 0;

    if (a == NULL || a->nelts == 0) {
        return NULL;
    }

    list = ngx_palloc(cf->pool, a->nelts * sizeof(char *));
    if (list == NULL) {
        return NULL;
    }

    s = a->elts;

    /* the configuration parser NUL-terminates every word it stores */

    for (i = 0; i < a->nelts; i++) {
        list[i] = (const char *) s[i].data;
    }

    *n = a->nelts;

    return list;
}


static char *
ngx_http_agentid_build(ngx_conf_t *cf, ngx_http_agentid_loc_conf_t *conf)
{
    int                             rv;
    u_char                         *p;
    size_t                          len, n;
    ngx_uint_t                      i;
    ngx_str_t                      *s;
    ngx_keyval_t                   *kv;
    const char                    **names, **values;
    ngx_pool_cleanup_t             *cln;
    struct agentid_error            err;
    struct agentid_trust           *empty;
    struct agentid_verifier_config  vc;

    if (conf->files == NULL && conf->urls == NULL) {
        /*
         * A level may turn agentid on and leave the keys to its locations;
         * a request that ends up here without keys is refused (no_keys).
         */
        return NGX_CONF_OK;
    }

    conf->trust = ngx_http_agentid_trust_get(cf, conf);
    if (conf->trust == NULL) {
        return NGX_CONF_ERROR;
    }

    if (RAND_bytes(conf->id, sizeof(conf->id)) != 1) {
        return NGX_CONF_ERROR;
    }

    agentid_verifier_config_init(&vc);

    empty = NULL;
    if (conf->trust->trust == NULL) {
        if (agentid_trust_new(&empty) != 0) {
            return NGX_CONF_ERROR;
        }
    }

    vc.profile = (enum agentid_profile) conf->profile;
    vc.trust = conf->trust->trust ? conf->trust->trust : empty;
    vc.issuers = ngx_http_agentid_cstrings(cf, conf->issuers, &vc.n_issuers);
    vc.audiences = ngx_http_agentid_cstrings(cf, conf->audiences,
                                             &vc.n_audiences);
    vc.leeway = conf->leeway;
    vc.required_scopes = ngx_http_agentid_cstrings(cf, conf->scopes_all,
                                                   &vc.n_required_scopes);
    vc.max_chain_depth = (int) conf->max_depth;
    vc.allow_agents = ngx_http_agentid_cstrings(cf, conf->agents,
                                                &vc.n_allow_agents);
    vc.allow_subjects = ngx_http_agentid_cstrings(cf, conf->subjects,
                                                  &vc.n_allow_subjects);

    if (conf->claims != NULL && conf->claims->nelts) {
        n = conf->claims->nelts;
        names = ngx_palloc(cf->pool, n * sizeof(char *));
        values = ngx_palloc(cf->pool, n * sizeof(char *));
        if (names == NULL || values == NULL) {
            agentid_trust_free(empty);
            return NGX_CONF_ERROR;
        }

        kv = conf->claims->elts;
        for (i = 0; i < n; i++) {
            names[i] = (const char *) kv[i].key.data;
            values[i] = (const char *) kv[i].value.data;
        }

        vc.claim_names = names;
        vc.claim_values = values;
        vc.n_claim_values = n;
    }

    agentid_error_clear(&err);

    rv = agentid_verifier_new(&vc, &conf->verifier, &err);

    agentid_trust_free(empty);

    if (rv != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "agentid: invalid configuration: %s (%s)",
                           err.detail[0] ? err.detail : "", agentid_strerror(rv));
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        agentid_verifier_free(conf->verifier);
        conf->verifier = NULL;
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_agentid_verifier_cleanup;
    cln->data = conf->verifier;

    /* scope="..." of a 403: the scopes this location asks for */

    len = 0;

    if (conf->scopes_all != NULL) {
        s = conf->scopes_all->elts;
        for (i = 0; i < conf->scopes_all->nelts; i++) {
            len += s[i].len + 1;
        }
    }

    if (conf->scopes_any != NULL) {
        s = conf->scopes_any->elts;
        for (i = 0; i < conf->scopes_any->nelts; i++) {
            len += s[i].len + 1;
        }
    }

    if (len) {
        p = ngx_pnalloc(cf->pool, len);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        conf->scope_hint.data = p;

        if (conf->scopes_all != NULL) {
            s = conf->scopes_all->elts;
            for (i = 0; i < conf->scopes_all->nelts; i++) {
                p = ngx_cpymem(p, s[i].data, s[i].len);
                *p++ = ' ';
            }
        }

        if (conf->scopes_any != NULL) {
            s = conf->scopes_any->elts;
            for (i = 0; i < conf->scopes_any->nelts; i++) {
                p = ngx_cpymem(p, s[i].data, s[i].len);
                *p++ = ' ';
            }
        }

        conf->scope_hint.len = len - 1;
    }

    return NGX_CONF_OK;
}


/*
 * Finds or makes the trust source for this level's bundle files and URLs.
 * Levels that inherit the same directives share one source, so a bundle
 * file is read once per worker however many locations use it.  The files
 * are read here already, so that "nginx -t" reports a bad bundle; a file
 * that does not exist yet is only a warning (spiffe-helper may write it
 * later), and requests are refused until it does.
 */
static ngx_http_agentid_trust_t *
ngx_http_agentid_trust_get(ngx_conf_t *cf, ngx_http_agentid_loc_conf_t *conf)
{
    int                             rv;
    ngx_uint_t                      i;
    ngx_pool_cleanup_t             *cln;
    struct agentid_error            err;
    struct agentid_bundle          *b;
    ngx_http_agentid_url_t         *u, **up;
    ngx_http_agentid_file_t        *f;
    ngx_http_agentid_trust_t       *t, **tp;
    struct agentid_fetch_result     res;
    ngx_http_agentid_main_conf_t   *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_agentid_module);

    tp = amcf->trusts.elts;
    for (i = 0; i < amcf->trusts.nelts; i++) {
        if (tp[i]->files == conf->files && tp[i]->urls == conf->urls) {
            return tp[i];
        }
    }

    t = ngx_pcalloc(cf->pool, sizeof(ngx_http_agentid_trust_t));
    if (t == NULL) {
        return NULL;
    }

    t->files = conf->files;
    t->urls = conf->urls;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_agentid_trust_cleanup;
    cln->data = t;

    tp = ngx_array_push(&amcf->trusts);
    if (tp == NULL) {
        return NULL;
    }

    *tp = t;

    if (t->urls != NULL) {
        amcf->urls_used = 1;

        u = t->urls->elts;
        for (i = 0; i < t->urls->nelts; i++) {
            up = ngx_array_push(&amcf->urls);
            if (up == NULL) {
                return NULL;
            }

            *up = &u[i];
            u[i].cafile = amcf->fetch_ca;

            /*
             * A first fetch here, in the master, so that the workers start
             * with keys; a failure only delays them to the workers' fetch.
             */

            agentid_error_clear(&err);
            ngx_memzero(&res, sizeof(res));

            rv = ngx_http_agentid_url_get(&u[i], 3000, &res, &err);

            if (rv == 0 && res.body != NULL) {
                b = NULL;
                if (agentid_bundle_parse(u[i].trust_domain.len
                                         ? (char *) u[i].trust_domain.data
                                         : NULL,
                                         res.body, res.len, &b, &err)
                    == 0
                    && ngx_http_agentid_sha256(res.body, res.len, NULL, 0,
                                               NULL, 0, u[i].digest)
                       == NGX_OK)
                {
                    u[i].bundle = b;

                } else {
                    agentid_bundle_free(b);
                    ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                                       "agentid: keys from \"%V\" rejected: "
                                       "%s", &u[i].url, err.detail);
                }

            } else {
                ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                                   "agentid: cannot fetch \"%V\" yet: %s",
                                   &u[i].url, err.detail);
            }

            agentid_fetch_result_free(&res);
        }
    }

    if (t->files != NULL) {
        f = t->files->elts;
        for (i = 0; i < t->files->nelts; i++) {
            (void) ngx_http_agentid_file_load(&f[i], cf->log);

            if (f[i].seen != 1) {
                ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                                   "agentid: bundle \"%V\" is not readable "
                                   "yet", &f[i].path);

            } else if (f[i].bundle == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "agentid: bundle \"%V\" is invalid",
                                   &f[i].path);
                return NULL;
            }
        }
    }

    t->checked = ngx_time();

    if (ngx_http_agentid_trust_rebuild(t, cf->log) != NGX_OK) {
        return NULL;
    }

    return t;
}


/*
 * The state's id names its lists in the "agentid_fetch" zone.  It is made
 * from what the state is (its trust sources and list settings), so that
 * the workers of a reloaded configuration find the lists the previous
 * ones fetched.
 */
static uint32_t
ngx_http_agentid_status_id(ngx_http_agentid_status_t *st)
{
    uint32_t                  crc;
    ngx_uint_t                i;
    ngx_keyval_t             *kv;
    ngx_http_agentid_url_t   *u;
    ngx_http_agentid_file_t  *f;

    ngx_crc32_init(crc);

    if (st->trust->files != NULL) {
        f = st->trust->files->elts;
        for (i = 0; i < st->trust->files->nelts; i++) {
            ngx_crc32_update(&crc, f[i].path.data, f[i].path.len);
            ngx_crc32_update(&crc, (u_char *) "", 1);
            ngx_crc32_update(&crc, f[i].trust_domain.data,
                             f[i].trust_domain.len);
            ngx_crc32_update(&crc, (u_char *) "", 1);
        }
    }

    if (st->trust->urls != NULL) {
        u = st->trust->urls->elts;
        for (i = 0; i < st->trust->urls->nelts; i++) {
            ngx_crc32_update(&crc, u[i].url.data, u[i].url.len);
            ngx_crc32_update(&crc, (u_char *) "", 1);
        }
    }

    if (st->files != NULL) {
        kv = st->files->elts;
        for (i = 0; i < st->files->nelts; i++) {
            ngx_crc32_update(&crc, kv[i].key.data, kv[i].key.len);
            ngx_crc32_update(&crc, (u_char *) "", 1);
            ngx_crc32_update(&crc, kv[i].value.data, kv[i].value.len);
            ngx_crc32_update(&crc, (u_char *) "", 1);
        }
    }

    ngx_crc32_update(&crc, (u_char *) &st->max_age, sizeof(time_t));
    ngx_crc32_update(&crc, (u_char *) &st->refresh, sizeof(time_t));

    ngx_crc32_final(crc);

    return crc;
}


static ngx_http_agentid_status_t *
ngx_http_agentid_status_get(ngx_conf_t *cf, ngx_http_agentid_loc_conf_t *conf)
{
    ngx_uint_t                      i, added;
    ngx_keyval_t                   *kv;
    ngx_http_agentid_status_t      *st, **stp;
    ngx_http_agentid_main_conf_t   *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_agentid_module);

    stp = amcf->statuses.elts;
    for (i = 0; i < amcf->statuses.nelts; i++) {
        if (stp[i]->trust == conf->trust
            && stp[i]->max_age == conf->status_max_age
            && stp[i]->refresh == conf->status_refresh
            && stp[i]->files == conf->status_files)
        {
            return stp[i];
        }
    }

    st = ngx_pcalloc(cf->pool, sizeof(ngx_http_agentid_status_t));
    if (st == NULL) {
        return NULL;
    }

    st->trust = conf->trust;
    st->max_age = conf->status_max_age;
    st->refresh = conf->status_refresh;
    st->files = conf->status_files;
    st->cafile = amcf->fetch_ca;

    if (st->refresh < 1) {
        st->refresh = 1;
    }

    st->id = ngx_http_agentid_status_id(st);

    /* two states of one configuration never share their lists */

    for (i = 0; i < amcf->statuses.nelts; /* void */ ) {
        if (st->id == 0 || stp[i]->id == st->id) {
            st->id++;
            i = 0;
            continue;
        }

        i++;
    }

    stp = ngx_array_push(&amcf->statuses);
    if (stp == NULL) {
        return NULL;
    }

    *stp = st;

    st->known = ngx_array_create(cf->pool, 8,
                                 sizeof(ngx_http_agentid_status_src_t *));
    if (st->known == NULL) {
        return NULL;
    }

    if (st->files != NULL) {
        kv = st->files->elts;
        for (i = 0; i < st->files->nelts; i++) {
            if (ngx_http_agentid_status_known(st, &kv[i].key, &kv[i].value,
                                              cf->pool, &added)
                == NULL)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "too many status lists");
                return NULL;
            }
        }
    }

    return st;
}


static void
ngx_http_agentid_audit_cleanup(void *data)
{
    ngx_http_agentid_audit_t  *au = data;

    /* the master never opens the log; a worker closes it at exit */
    au->audit = NULL;
}


static ngx_http_agentid_audit_t *
ngx_http_agentid_audit_get(ngx_conf_t *cf, ngx_http_agentid_loc_conf_t *conf)
{
    ngx_uint_t                      i;
    ngx_pool_cleanup_t             *cln;
    ngx_http_agentid_audit_t       *au, **aup;
    ngx_http_agentid_main_conf_t   *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_agentid_module);

    aup = amcf->audits.elts;
    for (i = 0; i < amcf->audits.nelts; i++) {
        if (aup[i]->path.len == conf->audit_file.len
            && ngx_strncmp(aup[i]->path.data, conf->audit_file.data,
                           conf->audit_file.len) == 0)
        {
            if (aup[i]->key.len != conf->audit_key.len
                || ngx_strncmp(aup[i]->key.data, conf->audit_key.data,
                               conf->audit_key.len) != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "audit log \"%V\" is used with two "
                                   "different keys", &conf->audit_file);
                return NULL;
            }

            return aup[i];
        }
    }

    au = ngx_pcalloc(cf->pool, sizeof(ngx_http_agentid_audit_t));
    if (au == NULL) {
        return NULL;
    }

    au->path = conf->audit_file;
    au->key = conf->audit_key;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_agentid_audit_cleanup;
    cln->data = au;

    aup = ngx_array_push(&amcf->audits);
    if (aup == NULL) {
        return NULL;
    }

    *aup = au;

    return au;
}


static void
ngx_http_agentid_verifier_cleanup(void *data)
{
    agentid_verifier_free(data);
}


static ngx_int_t
ngx_http_agentid_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt           *h;
    ngx_http_agentid_shm_t        *shm;
#if (NGX_THREADS)
    ngx_http_agentid_fetch_t      *fz;
#endif
    ngx_http_core_main_conf_t     *cmcf;
    ngx_http_agentid_main_conf_t  *amcf;

    agentid_set_log(ngx_http_agentid_log_sink, NULL, AGENTID_LOG_INFO);

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_agentid_module);

    if (amcf->dpop_used) {
        shm = ngx_pcalloc(cf->pool, sizeof(ngx_http_agentid_shm_t));
        if (shm == NULL) {
            return NGX_ERROR;
        }

        if (amcf->replay_size == NGX_CONF_UNSET_SIZE) {
            amcf->replay_size = 1024 * 1024;
        }

        amcf->replay_zone = ngx_shared_memory_add(cf,
                                                  &ngx_http_agentid_replay_name,
                                                  amcf->replay_size,
                                                  &ngx_http_agentid_module);
        if (amcf->replay_zone == NULL) {
            return NGX_ERROR;
        }

        amcf->replay_zone->init = ngx_http_agentid_init_shm_zone;
        amcf->replay_zone->data = shm;
    }

#if (NGX_THREADS)
    if (amcf->status_used || amcf->urls_used) {
        /* the "default" pool, made unless the configuration defines it */
        amcf->thread_pool = ngx_thread_pool_add(cf, NULL);
        if (amcf->thread_pool == NULL) {
            return NGX_ERROR;
        }
    }

    if (amcf->urls_used || amcf->status_used) {
        fz = ngx_pcalloc(cf->pool, sizeof(ngx_http_agentid_fetch_t));
        if (fz == NULL) {
            return NGX_ERROR;
        }

        amcf->fetch_zone = ngx_shared_memory_add(cf,
                                                 &ngx_http_agentid_fetch_name,
                                                 4 * 1024 * 1024,
                                                 &ngx_http_agentid_module);
        if (amcf->fetch_zone == NULL) {
            return NGX_ERROR;
        }

        amcf->fetch_zone->init = ngx_http_agentid_init_fetch_zone;
        amcf->fetch_zone->data = fz;
    }
#endif

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_agentid_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_agentid_init_process(ngx_cycle_t *cycle)
{
    int                             rv;
    ngx_uint_t                      i;
    struct agentid_error            err;
    ngx_http_agentid_audit_t      **au;
    struct agentid_audit_config     cfg;
    ngx_http_agentid_main_conf_t   *amcf;

    agentid_set_log(ngx_http_agentid_log_sink, NULL, AGENTID_LOG_INFO);

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_agentid_module);
    if (amcf == NULL) {
        return NGX_OK;
    }

    /*
     * Each worker is its own audit stream: the log is opened after the
     * fork, so that no stream is shared between processes.
     */

    au = amcf->audits.elts;
    for (i = 0; i < amcf->audits.nelts; i++) {
        agentid_audit_config_init(&cfg);
        cfg.path = (const char *) au[i]->path.data;
        cfg.component = "nginx";
        cfg.signing_key_path = au[i]->key.len
                               ? (const char *) au[i]->key.data : NULL;

        agentid_error_clear(&err);

        rv = agentid_audit_open(&cfg, &au[i]->audit, &err);
        if (rv != 0) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "agentid: cannot open the audit log \"%V\": %s%s%s",
                          &au[i]->path, agentid_strerror(rv),
                          err.detail[0] ? ": " : "", err.detail);
            au[i]->audit = NULL;
        }
    }

    ngx_http_agentid_init_worker(amcf, cycle->log);

    if (amcf->statuses.nelts || amcf->audits.nelts || amcf->urls.nelts) {
        amcf->timer.handler = ngx_http_agentid_tick;
        amcf->timer.data = amcf;
        amcf->timer.log = cycle->log;
        amcf->timer.cancelable = 1;

        /* the first refresh runs as soon as the worker is up */
        ngx_add_timer(&amcf->timer, 1);
    }

    return NGX_OK;
}


static void
ngx_http_agentid_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                      i;
    ngx_http_agentid_audit_t      **au;
    ngx_http_agentid_status_t     **st;
    ngx_http_agentid_main_conf_t   *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_agentid_module);
    if (amcf == NULL) {
        return;
    }

    st = amcf->statuses.elts;
    for (i = 0; i < amcf->statuses.nelts; i++) {
        ngx_http_agentid_status_exit(st[i]);
    }

    au = amcf->audits.elts;
    for (i = 0; i < amcf->audits.nelts; i++) {
        if (au[i]->audit != NULL) {
            (void) agentid_audit_close(au[i]->audit);
            au[i]->audit = NULL;
        }
    }
}


static char *
ngx_http_agentid(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_agentid_loc_conf_t *alcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (alcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        alcf->enable = 0;
        return NGX_CONF_OK;
    }

    alcf->enable = 1;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        alcf->realm = ngx_http_agentid_default_realm;
        return NGX_CONF_OK;
    }

    for (i = 0; i < value[1].len; i++) {
        if (value[1].data[i] == '"' || value[1].data[i] == '\\'
            || value[1].data[i] < 0x20 || value[1].data[i] == 0x7f)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid realm \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    alcf->realm = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_agentid_profile(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_agentid_loc_conf_t *alcf = conf;

    ngx_str_t             *value;
    enum agentid_profile   p;

    if (alcf->profile != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (agentid_profile_from_name((char *) value[1].data, &p) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid profile \"%V\", it must be \"access\", "
                           "\"jwt-svid\" or \"any\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    alcf->profile = p;

    return NGX_CONF_OK;
}


static char *
ngx_http_agentid_trust_domain(ngx_conf_t *cf, ngx_str_t *td)
{
    struct agentid_error  err;

    agentid_error_clear(&err);

    if (agentid_trust_domain_validate((char *) td->data, td->len, &err) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid trust domain \"%V\": %s", td, err.detail);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_agentid_bundle(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_agentid_loc_conf_t *alcf = conf;

    ngx_str_t                *value;
    ngx_http_agentid_file_t  *f;

    value = cf->args->elts;

    if (alcf->files == NGX_CONF_UNSET_PTR) {
        alcf->files = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_http_agentid_file_t));
        if (alcf->files == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    f = ngx_array_push(alcf->files);
    if (f == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(f, sizeof(ngx_http_agentid_file_t));

    f->path = value[1];

    if (ngx_conf_full_name(cf->cycle, &f->path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (ngx_http_agentid_trust_domain(cf, &value[2]) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }

        f->trust_domain = value[2];
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_agentid_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_agentid_loc_conf_t *alcf = conf;

    ngx_str_t               *value;
    ngx_http_agentid_url_t  *u;

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "https://", 8) != 0
        && ngx_strncmp(value[1].data, "http://", 7) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URL \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (alcf->urls == NGX_CONF_UNSET_PTR) {
        alcf->urls = ngx_array_create(cf->pool, 2,
                                      sizeof(ngx_http_agentid_url_t));
        if (alcf->urls == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    u = ngx_array_push(alcf->urls);
    if (u == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(u, sizeof(ngx_http_agentid_url_t));

    u->url = value[1];
    u->jwks = cmd->offset;

    if (cf->args->nelts == 3) {
        if (ngx_http_agentid_trust_domain(cf, &value[2]) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }

        u->trust_domain = value[2];
    }

#if (NGX_THREADS)
    if (ngx_strncmp(u->url.data, "http://", 7) == 0
        && !ngx_http_agentid_url_loopback(&u->url))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must be https (plain http is only "
                           "accepted to this host)", &u->url);
        return NGX_CONF_ERROR;
    }

    /* the slot of this URL in the fetch zone, the same in every worker */
    u->id = ngx_crc32_short(u->url.data, u->url.len)
            ^ (u->jwks ? 0x9e3779b9 : 0)
            ^ ngx_crc32_short(u->trust_domain.data, u->trust_domain.len);

    if (u->id == 0) {
        u->id = 1;
    }

    u->slot = NGX_HTTP_AGENTID_URL_SLOTS;

    return NGX_CONF_OK;
#else
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" needs nginx built with threads", &cmd->name);

    return NGX_CONF_ERROR;
#endif
}


/*
 * A list of words; the directive may repeat at one level and adds to the
 * list.  "off" as the only word clears what a higher level set.
 */
static char *
ngx_http_agentid_strings(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t     *value, *s;
    ngx_uint_t     i;
    ngx_array_t  **a;

    a = (ngx_array_t **) (p + cmd->offset);
    value = cf->args->elts;

    if (*a == NGX_CONF_UNSET_PTR) {
        *a = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (*a == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        (*a)->nelts = 0;
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 0) {
            return "has an empty value";
        }

        s = ngx_array_push(*a);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = value[i];
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_agentid_claim(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_agentid_loc_conf_t *alcf = conf;

    ngx_str_t     *value;
    ngx_keyval_t  *kv;

    value = cf->args->elts;

    if (alcf->claims == NGX_CONF_UNSET_PTR) {
        alcf->claims = ngx_array_create(cf->pool, 2, sizeof(ngx_keyval_t));
        if (alcf->claims == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (cf->args->nelts == 2) {
        if (ngx_strcmp(value[1].data, "off") != 0) {
            return "needs a claim name and a value, or \"off\"";
        }

        alcf->claims->nelts = 0;
        return NGX_CONF_OK;
    }

    kv = ngx_array_push(alcf->claims);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }

    kv->key = value[1];
    kv->value = value[2];

    return NGX_CONF_OK;
}


static char *
ngx_http_agentid_status_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_agentid_loc_conf_t *alcf = conf;

    ngx_str_t     *value;
    ngx_keyval_t  *kv;

    value = cf->args->elts;

    if (alcf->status_files == NGX_CONF_UNSET_PTR) {
        alcf->status_files = ngx_array_create(cf->pool, 2,
                                              sizeof(ngx_keyval_t));
        if (alcf->status_files == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    kv = ngx_array_push(alcf->status_files);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }

    kv->key = value[1];
    kv->value = value[2];

    if (ngx_conf_full_name(cf->cycle, &kv->value, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_agentid_audit_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_agentid_loc_conf_t *alcf = conf;

    ngx_str_t  *value;

    if (alcf->audit_file.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(&alcf->audit_file, "");
        return NGX_CONF_OK;
    }

    alcf->audit_file = value[1];

    if (ngx_conf_full_name(cf->cycle, &alcf->audit_file, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "key=", 4) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        alcf->audit_key.data = value[2].data + 4;
        alcf->audit_key.len = value[2].len - 4;

        if (ngx_conf_full_name(cf->cycle, &alcf->audit_key, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * agentid_cache at any level.  A level that sets a size gets a zone of
 * its own, made here: "agentid_cache" at the http level, so that it is
 * kept over a reload like before, and "agentid_cache_<n>" (n counting in
 * configuration order) in a server or location.  "off" clears what the
 * level would inherit.  Entries never mix between locations sharing a
 * zone: the key carries the location's identity.
 */
static char *
ngx_http_agentid_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_agentid_loc_conf_t *alcf = conf;

    u_char                        *p;
    ssize_t                        size;
    ngx_str_t                     *value, name;
    ngx_http_agentid_shm_t        *shm;
    ngx_http_agentid_main_conf_t  *amcf;

    if (alcf->cache_zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        alcf->cache_zone = NULL;
        return NGX_CONF_OK;
    }

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid cache size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->cmd_type == NGX_HTTP_MAIN_CONF) {
        name = ngx_http_agentid_cache_name;

    } else {
        amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_agentid_module);

        p = ngx_pnalloc(cf->pool, ngx_http_agentid_cache_name.len
                                  + sizeof("_") - 1 + NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        name.data = p;
        name.len = ngx_sprintf(p, "%V_%ui", &ngx_http_agentid_cache_name,
                               ++amcf->caches)
                   - p;
    }

    shm = ngx_pcalloc(cf->pool, sizeof(ngx_http_agentid_shm_t));
    if (shm == NULL) {
        return NGX_CONF_ERROR;
    }

    alcf->cache_zone = ngx_shared_memory_add(cf, &name, size,
                                             &ngx_http_agentid_module);
    if (alcf->cache_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (alcf->cache_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    alcf->cache_zone->init = ngx_http_agentid_init_shm_zone;
    alcf->cache_zone->data = shm;

    return NGX_CONF_OK;
}
