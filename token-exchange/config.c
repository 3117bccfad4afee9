/*
 * Configuration file (YAML, through libyaml's document API) into struct
 * xc_config.  Every error names the file and line of the offending node,
 * which is what `agentid-exchange --check-config FILE` prints.  Unknown keys
 * are errors: a misspelt option silently ignored is how insecure defaults
 * sneak into production.  Relative paths are relative to the file's folder.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <yaml.h>

#include "exchange.h"

struct cfgctx {
	yaml_document_t *doc;
	const char *path;
	char *dir;
	char *errbuf;
	size_t errlen;
};

static int __attribute__((format(printf, 3, 4)))
cerr(struct cfgctx *x, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n != NULL)
		snprintf(x->errbuf, x->errlen, "%s:%lu: %s", x->path,
		    (unsigned long)n->start_mark.line + 1, msg);
	else
		snprintf(x->errbuf, x->errlen, "%s: %s", x->path, msg);
	return -1;
}

static const char *
scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static int
get_str(struct cfgctx *x, const yaml_node_t *n, const char *key, char **out)
{
	if (n->type != YAML_SCALAR_NODE)
		return cerr(x, n, "'%s' must be a string", key);
	if (n->data.scalar.length == 0)
		return cerr(x, n, "'%s' must not be empty", key);
	if (strlen(scalar(n)) != n->data.scalar.length)
		return cerr(x, n, "'%s' contains a NUL character", key);
	free(*out);
	if ((*out = strdup(scalar(n))) == NULL)
		return cerr(x, n, "out of memory");
	return 0;
}

static int
get_path(struct cfgctx *x, const yaml_node_t *n, const char *key, char **out)
{
	char *s = NULL;
	size_t need;

	if (get_str(x, n, key, &s) != 0)
		return -1;
	if (s[0] != '/' && x->dir != NULL) {
		need = strlen(x->dir) + 1 + strlen(s) + 1;
		free(*out);
		if ((*out = malloc(need)) == NULL) {
			free(s);
			return cerr(x, n, "out of memory");
		}
		snprintf(*out, need, "%s/%s", x->dir, s);
		free(s);
		return 0;
	}
	free(*out);
	*out = s;
	return 0;
}

/*
 * A file of PEM CA certificates to trust for an HTTPS endpoint instead of
 * the system store (bundle_ca, jwks_ca).  Read now, so that --check-config
 * names the line of a missing or wrong file.
 */
static int
get_cafile(struct cfgctx *x, const yaml_node_t *n, const char *key, char **out)
{
	STACK_OF(X509_INFO) *infos = NULL;
	BIO *bio;
	int i, certs = 0;

	if (get_path(x, n, key, out) != 0)
		return -1;
	if ((bio = BIO_new_file(*out, "r")) == NULL)
		return cerr(x, n, "'%s': cannot open %s: %s", key, *out, strerror(errno));
	infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
	BIO_free(bio);
	for (i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++)
		if (sk_X509_INFO_value(infos, i)->x509 != NULL)
			certs++;
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	if (certs == 0)
		return cerr(x, n, "'%s': %s holds no PEM certificate", key, *out);
	return 0;
}

/* An https URL (bundle_url, jwks_url): keys come only over authenticated TLS. */
static int
get_https_url(struct cfgctx *x, const yaml_node_t *n, const char *key, char **out)
{
	if (get_str(x, n, key, out) != 0)
		return -1;
	if (strncmp(*out, "https://", 8) != 0 || (*out)[8] == '\0')
		return cerr(x, n, "'%s' must be an https URL", key);
	return 0;
}

static int
get_long(struct cfgctx *x, const yaml_node_t *n, const char *key, long min, long max, long *out)
{
	char *end;
	long v;

	if (n->type != YAML_SCALAR_NODE)
		return cerr(x, n, "'%s' must be a number", key);
	errno = 0;
	v = strtol(scalar(n), &end, 10);
	if (errno != 0 || end == scalar(n) || *end != '\0')
		return cerr(x, n, "'%s' must be an integer, not '%s'", key, scalar(n));
	if (v < min || v > max)
		return cerr(x, n, "'%s' must be between %ld and %ld", key, min, max);
	*out = v;
	return 0;
}

static int
get_int(struct cfgctx *x, const yaml_node_t *n, const char *key, long min, long max, int *out)
{
	long v;

	if (get_long(x, n, key, min, max, &v) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

static int
get_bool(struct cfgctx *x, const yaml_node_t *n, const char *key, int *out)
{
	if (n->type == YAML_SCALAR_NODE) {
		if (strcmp(scalar(n), "true") == 0 || strcmp(scalar(n), "yes") == 0) {
			*out = 1;
			return 0;
		}
		if (strcmp(scalar(n), "false") == 0 || strcmp(scalar(n), "no") == 0) {
			*out = 0;
			return 0;
		}
	}
	return cerr(x, n, "'%s' must be true or false", key);
}

static void
strlist_free(char **l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

/* A string or a sequence of strings. */
static int
get_strlist(struct cfgctx *x, const yaml_node_t *n, const char *key, char ***out, size_t *nout)
{
	yaml_node_item_t *it;
	char **l = NULL;
	size_t cnt = 0, cap;

	strlist_free(*out, *nout);
	*out = NULL;
	*nout = 0;
	if (n->type == YAML_SCALAR_NODE) {
		if ((l = calloc(1, sizeof(*l))) == NULL)
			return cerr(x, n, "out of memory");
		if (get_str(x, n, key, &l[0]) != 0) {
			free(l);
			return -1;
		}
		*out = l;
		*nout = 1;
		return 0;
	}
	if (n->type != YAML_SEQUENCE_NODE)
		return cerr(x, n, "'%s' must be a string or a list of strings", key);
	cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (cap > 0 && (l = calloc(cap, sizeof(*l))) == NULL)
		return cerr(x, n, "out of memory");
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(x->doc, *it);

		if (e == NULL || get_str(x, e, key, &l[cnt]) != 0) {
			strlist_free(l, cnt + 1);
			return e == NULL ? cerr(x, n, "bad list") : -1;
		}
		cnt++;
	}
	*out = l;
	*nout = cnt;
	return 0;
}

/* Iterates the pairs of a mapping; calls fn for each with the key string. */
typedef int (*pair_fn)(
    struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg);

static int
for_pairs(struct cfgctx *x, yaml_node_t *map, const char *what, pair_fn fn, void *arg)
{
	yaml_node_pair_t *p;

	if (map->type != YAML_MAPPING_NODE)
		return cerr(x, map, "'%s' must be a mapping", what);
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
		yaml_node_pair_t *q;

		if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
			return cerr(x, map, "keys of '%s' must be strings", what);
		for (q = map->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *k2 = yaml_document_get_node(x->doc, q->key);

			if (k2 != NULL && k2->type == YAML_SCALAR_NODE
			    && strcmp(scalar(k2), scalar(k)) == 0)
				return cerr(x, k, "duplicate key '%s' in '%s'", scalar(k), what);
		}
		if (fn(x, scalar(k), k, v, arg) != 0)
			return -1;
	}
	return 0;
}

#define UNKNOWN(x, k, sect) cerr((x), (k), "unknown key '%s' in '%s'", scalar(k), (sect))

/* ---- sections ---- */

static int
listen_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_listen *l = arg;
	long port;

	if (strcmp(key, "address") == 0)
		return get_str(x, v, key, &l->addr);
	if (strcmp(key, "port") == 0) {
		if (get_long(x, v, key, 0, 65535, &port) != 0)
			return -1;
		l->port = (int)port;
		return 0;
	}
	if (strcmp(key, "tls") == 0)
		return get_bool(x, v, key, &l->tls);
	if (strcmp(key, "unix") == 0)
		return get_path(x, v, key, &l->unix_path);
	if (strcmp(key, "mode") == 0) {
		char *end;

		/* Octal, as chmod takes it: "0660". */
		if (v->type != YAML_SCALAR_NODE)
			return cerr(x, v, "'mode' must be an octal number such as 0660");
		errno = 0;
		port = strtol(scalar(v), &end, 8);
		if (errno != 0 || end == scalar(v) || *end != '\0' || port < 0 || port > 0777)
			return cerr(x, v, "'mode' must be an octal number such as 0660, not '%s'",
			    scalar(v));
		l->unix_mode = (int)port;
		return 0;
	}
	return UNKNOWN(x, k, "listen");
}

static int
sect_listen(struct cfgctx *x, struct xc_config *c, yaml_node_t *v)
{
	yaml_node_item_t *it;
	size_t n;

	if (v->type != YAML_SEQUENCE_NODE)
		return cerr(x, v, "'listen' must be a list");
	n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (n == 0 || n > 16)
		return cerr(x, v, "'listen' must have 1 to 16 entries");
	if ((c->listens = calloc(n, sizeof(*c->listens))) == NULL)
		return cerr(x, v, "out of memory");
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(x->doc, *it);
		struct xc_listen *l = &c->listens[c->n_listens++];

		l->tls = -1;
		l->port = -1;
		l->unix_mode = -1;
		if (for_pairs(x, e, "listen", listen_item, l) != 0)
			return -1;
		if (l->unix_path != NULL) {
			/* Behind a local proxy: plain HTTP unless TLS is asked for. */
			if (l->addr != NULL || l->port >= 0)
				return cerr(x, e,
				    "a listen entry has either 'unix' or 'address' and 'port'");
			if (l->tls < 0)
				l->tls = 0;
			continue;
		}
		if (l->unix_mode >= 0)
			return cerr(x, e, "'mode' applies to unix sockets only");
		if (l->tls < 0)
			l->tls = 1;
		if (l->addr == NULL)
			return cerr(x, e, "listen entry needs 'address' (or 'unix')");
		if (l->port < 0)
			return cerr(x, e, "listen entry needs 'port'");
		if (!l->tls && strcmp(l->addr, "127.0.0.1") != 0 && strcmp(l->addr, "::1") != 0)
			return cerr(
			    x, e, "plain HTTP (tls: false) is only allowed on a loopback address");
	}
	return 0;
}

static int
tls_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_config *c = arg;
	char *s = NULL;
	int r;

	if (strcmp(key, "certificate") == 0)
		return get_path(x, v, key, &c->tls_cert);
	if (strcmp(key, "key") == 0)
		return get_path(x, v, key, &c->tls_key);
	if (strcmp(key, "client_certificates") == 0) {
		if (get_str(x, v, key, &s) != 0)
			return -1;
		r = 0;
		if (strcmp(s, "none") == 0)
			c->client_cert = XC_CLIENT_CERT_NONE;
		else if (strcmp(s, "optional") == 0)
			c->client_cert = XC_CLIENT_CERT_OPTIONAL;
		else if (strcmp(s, "required") == 0)
			c->client_cert = XC_CLIENT_CERT_REQUIRED;
		else
			r = cerr(x, v, "'client_certificates' must be none, optional or required");
		free(s);
		return r;
	}
	return UNKNOWN(x, k, "tls");
}

static int
limits_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_config *c = arg;
	long n;

	if (strcmp(key, "max_body") == 0) {
		if (get_long(x, v, key, 1024, 1048576, &n) != 0)
			return -1;
		c->max_body = (size_t)n;
		return 0;
	}
	if (strcmp(key, "max_headers") == 0) {
		if (get_long(x, v, key, 1024, 1048576, &n) != 0)
			return -1;
		c->max_headers = (size_t)n;
		return 0;
	}
	if (strcmp(key, "timeout") == 0)
		return get_int(x, v, key, 1, 3600, &c->timeout);
	if (strcmp(key, "request_timeout") == 0)
		return get_int(x, v, key, 0, 3600, &c->request_timeout);
	if (strcmp(key, "max_connections") == 0)
		return get_int(x, v, key, 0, 1000000, &c->max_connections);
	return UNKNOWN(x, k, "limits");
}

static int
signing_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_config *c = arg;
	size_t i;

	if (strcmp(key, "alg") == 0)
		return get_str(x, v, key, &c->alg);
	if (strcmp(key, "current") == 0)
		return get_path(x, v, key, &c->key_current);
	if (strcmp(key, "next") == 0)
		return get_path(x, v, key, &c->key_next);
	if (strcmp(key, "retired") == 0) {
		if (get_strlist(x, v, key, &c->keys_retired, &c->n_keys_retired) != 0)
			return -1;
		for (i = 0; i < c->n_keys_retired; i++) {
			char *p = NULL;
			yaml_node_t fake = *v;

			/* Resolve each entry like a path scalar. */
			fake.type = YAML_SCALAR_NODE;
			fake.data.scalar.value = (yaml_char_t *)c->keys_retired[i];
			fake.data.scalar.length = strlen(c->keys_retired[i]);
			if (get_path(x, &fake, key, &p) != 0)
				return -1;
			free(c->keys_retired[i]);
			c->keys_retired[i] = p;
		}
		return 0;
	}
	return UNKNOWN(x, k, "signing");
}

static int
tokens_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_config *c = arg;

	if (strcmp(key, "default_lifetime") == 0)
		return get_long(x, v, key, 1, 86400, &c->default_lifetime);
	if (strcmp(key, "max_lifetime") == 0)
		return get_long(x, v, key, 1, 86400, &c->max_lifetime);
	if (strcmp(key, "max_depth") == 0)
		return get_int(x, v, key, 1, 32, &c->max_depth);
	if (strcmp(key, "leeway") == 0)
		return get_long(x, v, key, 0, 300, &c->leeway);
	if (strcmp(key, "bind_mtls") == 0)
		return get_bool(x, v, key, &c->bind_mtls);
	return UNKNOWN(x, k, "tokens");
}

static int
td_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_trust_domain *td = arg;

	if (strcmp(key, "name") == 0)
		return get_str(x, v, key, &td->name);
	if (strcmp(key, "bundle_file") == 0)
		return get_path(x, v, key, &td->bundle_file);
	if (strcmp(key, "bundle_url") == 0)
		return get_https_url(x, v, key, &td->bundle_url);
	if (strcmp(key, "bundle_ca") == 0)
		return get_cafile(x, v, key, &td->bundle_ca);
	return UNKNOWN(x, k, "trust_domains");
}

static int
ext_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_external_issuer *e = arg;

	if (strcmp(key, "issuer") == 0)
		return get_str(x, v, key, &e->issuer);
	if (strcmp(key, "jwks_file") == 0)
		return get_path(x, v, key, &e->jwks_file);
	if (strcmp(key, "jwks_url") == 0)
		return get_https_url(x, v, key, &e->jwks_url);
	if (strcmp(key, "jwks_ca") == 0)
		return get_cafile(x, v, key, &e->jwks_ca);
	if (strcmp(key, "audience") == 0 || strcmp(key, "audiences") == 0)
		return get_strlist(x, v, key, &e->audiences, &e->n_audiences);
	if (strcmp(key, "subject_claim") == 0)
		return get_str(x, v, key, &e->subject_claim);
	return UNKNOWN(x, k, "external_issuers");
}

static int
key_refresh_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_config *c = arg;

	if (strcmp(key, "min_interval") == 0)
		return get_long(x, v, key, 1, 3600, &c->refresh_min);
	if (strcmp(key, "interval") == 0)
		return get_long(x, v, key, 1, 86400, &c->refresh_interval);
	return UNKNOWN(x, k, "key_refresh");
}

static int
storage_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_config *c = arg;

	if (strcmp(key, "driver") == 0) {
		if (get_str(x, v, key, &c->store_driver) != 0)
			return -1;
		if (strcmp(c->store_driver, "sqlite") != 0
		    && strcmp(c->store_driver, "postgres") != 0)
			return cerr(x, v, "'driver' must be sqlite or postgres");
		return 0;
	}
	if (strcmp(key, "path") == 0)
		return get_path(x, v, key, &c->store_path);
	if (strcmp(key, "conninfo") == 0)
		return get_str(x, v, key, &c->store_conninfo);
	return UNKNOWN(x, k, "storage");
}

static int
audit_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_config *c = arg;

	if (strcmp(key, "file") == 0)
		return get_path(x, v, key, &c->audit_file);
	if (strcmp(key, "key") == 0)
		return get_path(x, v, key, &c->audit_key);
	return UNKNOWN(x, k, "audit");
}

static int
status_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_config *c = arg;

	if (strcmp(key, "size") == 0)
		return get_long(x, v, key, 1024, 1L << 24, &c->status_list_size);
	if (strcmp(key, "ttl") == 0)
		return get_long(x, v, key, 1, 86400, &c->status_list_ttl);
	return UNKNOWN(x, k, "status_lists");
}

static int
dpop_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_config *c = arg;

	if (strcmp(key, "window") == 0)
		return get_long(x, v, key, 1, 3600, &c->dpop_window);
	return UNKNOWN(x, k, "dpop");
}

static int
ids_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	void **a = arg;

	if (strcmp(key, "ids") == 0)
		return get_strlist(x, v, key, (char ***)a[0], (size_t *)a[1]);
	return UNKNOWN(x, k, (const char *)a[2]);
}

static int
log_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_config *c = arg;

	if (strcmp(key, "target") == 0) {
		if (get_str(x, v, key, &c->log_target) != 0)
			return -1;
		if (strcmp(c->log_target, "stderr") != 0 && strcmp(c->log_target, "syslog") != 0)
			return cerr(x, v, "'target' must be stderr or syslog");
		return 0;
	}
	if (strcmp(key, "level") == 0) {
		if (get_str(x, v, key, &c->log_level) != 0)
			return -1;
		if (strcmp(c->log_level, "error") != 0 && strcmp(c->log_level, "warn") != 0
		    && strcmp(c->log_level, "info") != 0 && strcmp(c->log_level, "debug") != 0)
			return cerr(x, v, "'level' must be error, warn, info or debug");
		return 0;
	}
	return UNKNOWN(x, k, "log");
}

static int
rule_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_rule *r = arg;
	long n;

	if (strcmp(key, "name") == 0)
		return get_str(x, v, key, &r->name);
	if (strcmp(key, "agent") == 0 || strcmp(key, "agents") == 0)
		return get_strlist(x, v, key, &r->agents, &r->n_agents);
	if (strcmp(key, "subject") == 0 || strcmp(key, "subjects") == 0)
		return get_strlist(x, v, key, &r->subjects, &r->n_subjects);
	if (strcmp(key, "subject_issuer") == 0)
		return get_str(x, v, key, &r->subject_issuer);
	if (strcmp(key, "scopes") == 0)
		return get_strlist(x, v, key, &r->scopes, &r->n_scopes);
	if (strcmp(key, "audiences") == 0 || strcmp(key, "audience") == 0)
		return get_strlist(x, v, key, &r->audiences, &r->n_audiences);
	if (strcmp(key, "delegate_to") == 0)
		return get_strlist(x, v, key, &r->delegate_to, &r->n_delegate_to);
	if (strcmp(key, "clients") == 0)
		return get_strlist(x, v, key, &r->clients, &r->n_clients);
	if (strcmp(key, "max_lifetime") == 0)
		return get_long(x, v, key, 1, 86400, &r->max_lifetime);
	if (strcmp(key, "max_depth") == 0) {
		if (get_long(x, v, key, 1, 32, &n) != 0)
			return -1;
		r->max_depth = (int)n;
		return 0;
	}
	if (strcmp(key, "require_binding") == 0)
		return get_bool(x, v, key, &r->require_binding);
	return UNKNOWN(x, k, "policy");
}

static int
sect_list(struct cfgctx *x, yaml_node_t *v, const char *what, size_t elsz, void **arr, size_t *n,
    pair_fn fn, void (*init)(void *, int))
{
	yaml_node_item_t *it;
	size_t cnt;
	char *a;

	if (v->type != YAML_SEQUENCE_NODE)
		return cerr(x, v, "'%s' must be a list", what);
	cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (cnt > 1024)
		return cerr(x, v, "'%s' has too many entries", what);
	if (cnt == 0)
		return 0;
	if ((a = calloc(cnt, elsz)) == NULL)
		return cerr(x, v, "out of memory");
	*arr = a;
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(x->doc, *it);
		void *el = a + (*n) * elsz;

		(*n)++;
		if (init != NULL)
			init(el, (int)e->start_mark.line + 1);
		if (for_pairs(x, e, what, fn, el) != 0)
			return -1;
	}
	return 0;
}

static void
rule_init(void *p, int line)
{
	struct xc_rule *r = p;

	r->line = line;
	r->max_depth = -1;
}

static int
top_item(struct cfgctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct xc_config *c = arg;
	size_t i;

	if (strcmp(key, "listen") == 0)
		return sect_listen(x, c, v);
	if (strcmp(key, "tls") == 0)
		return for_pairs(x, v, key, tls_item, c);
	if (strcmp(key, "threads") == 0)
		return get_int(x, v, key, 0, 256, &c->threads);
	if (strcmp(key, "limits") == 0)
		return for_pairs(x, v, key, limits_item, c);
	if (strcmp(key, "issuer") == 0)
		return get_str(x, v, key, &c->issuer);
	if (strcmp(key, "token_endpoint") == 0)
		return get_str(x, v, key, &c->token_endpoint);
	if (strcmp(key, "audiences") == 0 || strcmp(key, "audience") == 0)
		return get_strlist(x, v, key, &c->audiences, &c->n_audiences);
	if (strcmp(key, "signing") == 0)
		return for_pairs(x, v, key, signing_item, c);
	if (strcmp(key, "tokens") == 0)
		return for_pairs(x, v, key, tokens_item, c);
	if (strcmp(key, "trust_domains") == 0) {
		if (sect_list(
		        x, v, key, sizeof(*c->tds), (void **)&c->tds, &c->n_tds, td_item, NULL)
		    != 0)
			return -1;
		for (i = 0; i < c->n_tds; i++) {
			const struct xc_trust_domain *td = &c->tds[i];

			if (td->name == NULL
			    || (td->bundle_file == NULL) == (td->bundle_url == NULL))
				return cerr(x, v,
				    "each trust domain needs 'name' and either "
				    "'bundle_file' or 'bundle_url'");
			if (td->bundle_ca != NULL && td->bundle_url == NULL)
				return cerr(x, v,
				    "trust domain %s: 'bundle_ca' applies to 'bundle_url'",
				    td->name);
		}
		return 0;
	}
	if (strcmp(key, "external_issuers") == 0) {
		if (sect_list(
		        x, v, key, sizeof(*c->ext), (void **)&c->ext, &c->n_ext, ext_item, NULL)
		    != 0)
			return -1;
		for (i = 0; i < c->n_ext; i++) {
			const struct xc_external_issuer *e = &c->ext[i];

			if (e->issuer == NULL || e->n_audiences == 0
			    || (e->jwks_file == NULL) == (e->jwks_url == NULL))
				return cerr(x, v,
				    "each external issuer needs 'issuer', 'audience' "
				    "and either 'jwks_file' or 'jwks_url'");
			if (e->jwks_ca != NULL && e->jwks_url == NULL)
				return cerr(x, v,
				    "external issuer %s: 'jwks_ca' applies to 'jwks_url'",
				    e->issuer);
		}
		return 0;
	}
	if (strcmp(key, "key_refresh") == 0)
		return for_pairs(x, v, key, key_refresh_item, c);
	if (strcmp(key, "storage") == 0)
		return for_pairs(x, v, key, storage_item, c);
	if (strcmp(key, "audit") == 0)
		return for_pairs(x, v, key, audit_item, c);
	if (strcmp(key, "status_lists") == 0)
		return for_pairs(x, v, key, status_item, c);
	if (strcmp(key, "dpop") == 0)
		return for_pairs(x, v, key, dpop_item, c);
	if (strcmp(key, "admin") == 0) {
		void *a[3] = { &c->admin_ids, &c->n_admin_ids, "admin" };
		return for_pairs(x, v, key, ids_item, a);
	}
	if (strcmp(key, "introspection") == 0) {
		void *a[3] = { &c->introspect_ids, &c->n_introspect_ids, "introspection" };
		return for_pairs(x, v, key, ids_item, a);
	}
	if (strcmp(key, "log") == 0)
		return for_pairs(x, v, key, log_item, c);
	if (strcmp(key, "policy") == 0)
		return sect_list(x, v, key, sizeof(*c->rules), (void **)&c->rules, &c->n_rules,
		    rule_item, rule_init);
	return cerr(x, k, "unknown top-level key '%s'", key);
}

static int
defaults_and_checks(struct cfgctx *x, struct xc_config *c)
{
	size_t i, len;

	if (c->n_listens == 0)
		return cerr(x, NULL, "'listen' is required");
	for (i = 0; i < c->n_listens; i++)
		if (c->listens[i].tls && (c->tls_cert == NULL || c->tls_key == NULL))
			return cerr(
			    x, NULL, "a TLS listener needs 'tls: {certificate: ..., key: ...}'");
	if (c->issuer == NULL)
		return cerr(x, NULL, "'issuer' is required (e.g. https://exchange.example:8443)");
	if (strncmp(c->issuer, "https://", 8) != 0 && strncmp(c->issuer, "http://", 7) != 0)
		return cerr(x, NULL, "'issuer' must be an https URL");
	len = strlen(c->issuer);
	while (len > 0 && c->issuer[len - 1] == '/')
		c->issuer[--len] = '\0';
	if (c->token_endpoint == NULL) {
		if ((c->token_endpoint = malloc(len + 7)) == NULL)
			return cerr(x, NULL, "out of memory");
		snprintf(c->token_endpoint, len + 7, "%s/token", c->issuer);
	}
	if (c->n_audiences == 0) {
		if ((c->audiences = calloc(2, sizeof(char *))) == NULL
		    || (c->audiences[0] = strdup(c->issuer)) == NULL
		    || (c->audiences[1] = strdup(c->token_endpoint)) == NULL)
			return cerr(x, NULL, "out of memory");
		c->n_audiences = 2;
	}
	if (c->key_current == NULL)
		return cerr(x, NULL, "'signing: {current: FILE}' is required");
	if (c->alg == NULL && (c->alg = strdup("ES256")) == NULL)
		return cerr(x, NULL, "out of memory");
	if (agentid_alg_from_name(c->alg, strlen(c->alg)) == AGENTID_ALG_UNKNOWN)
		return cerr(x, NULL, "signing alg '%s' is not supported", c->alg);
	if (c->max_lifetime == 0)
		c->max_lifetime = 3600;
	if (c->default_lifetime == 0)
		c->default_lifetime = c->max_lifetime < 300 ? c->max_lifetime : 300;
	if (c->default_lifetime > c->max_lifetime)
		return cerr(x, NULL, "default_lifetime exceeds max_lifetime");
	if (c->max_depth == 0)
		c->max_depth = 4;
	if (c->store_driver == NULL && (c->store_driver = strdup("sqlite")) == NULL)
		return cerr(x, NULL, "out of memory");
	if (strcmp(c->store_driver, "sqlite") == 0 && c->store_path == NULL)
		return cerr(x, NULL, "'storage: {path: FILE}' is required for sqlite");
	if (strcmp(c->store_driver, "postgres") == 0 && c->store_conninfo == NULL)
		return cerr(x, NULL, "'storage: {conninfo: ...}' is required for postgres");
	if (c->n_tds == 0)
		return cerr(x, NULL, "at least one entry in 'trust_domains' is required");
	if (c->n_rules == 0)
		return cerr(x, NULL, "'policy' has no rules: nothing would ever be granted");
	for (i = 0; i < c->n_rules; i++)
		if (c->rules[i].n_agents == 0 || c->rules[i].n_subjects == 0)
			return cerr(x, NULL, "policy rule at line %d needs 'agent' and 'subject'",
			    c->rules[i].line);
	return 0;
}

void
xc_config_free(struct xc_config *c)
{
	size_t i;

	if (c == NULL)
		return;
	xc_policy_free(c);
	free(c->path);
	for (i = 0; i < c->n_listens; i++) {
		free(c->listens[i].addr);
		free(c->listens[i].unix_path);
	}
	free(c->listens);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->issuer);
	free(c->token_endpoint);
	strlist_free(c->audiences, c->n_audiences);
	free(c->key_current);
	free(c->key_next);
	strlist_free(c->keys_retired, c->n_keys_retired);
	free(c->alg);
	for (i = 0; i < c->n_tds; i++) {
		free(c->tds[i].name);
		free(c->tds[i].bundle_file);
		free(c->tds[i].bundle_url);
		free(c->tds[i].bundle_ca);
	}
	free(c->tds);
	for (i = 0; i < c->n_ext; i++) {
		free(c->ext[i].issuer);
		free(c->ext[i].jwks_file);
		free(c->ext[i].jwks_url);
		free(c->ext[i].jwks_ca);
		strlist_free(c->ext[i].audiences, c->ext[i].n_audiences);
		free(c->ext[i].subject_claim);
	}
	free(c->ext);
	free(c->store_driver);
	free(c->store_path);
	free(c->store_conninfo);
	free(c->audit_file);
	free(c->audit_key);
	strlist_free(c->admin_ids, c->n_admin_ids);
	strlist_free(c->introspect_ids, c->n_introspect_ids);
	free(c->log_target);
	free(c->log_level);
	for (i = 0; i < c->n_rules; i++) {
		struct xc_rule *r = &c->rules[i];

		free(r->name);
		strlist_free(r->agents, r->n_agents);
		strlist_free(r->subjects, r->n_subjects);
		free(r->subject_issuer);
		strlist_free(r->scopes, r->n_scopes);
		strlist_free(r->audiences, r->n_audiences);
		strlist_free(r->delegate_to, r->n_delegate_to);
		strlist_free(r->clients, r->n_clients);
	}
	free(c->rules);
	free(c);
}

int
xc_config_load(const char *path, struct xc_config **out, char *errbuf, size_t errlen)
{
	struct cfgctx x = { .path = path, .errbuf = errbuf, .errlen = errlen };
	yaml_parser_t parser;
	yaml_document_t doc;
	struct xc_config *c = NULL;
	yaml_node_t *root;
	FILE *f = NULL;
	char *slash;
	int r = -1, have_doc = 0, have_parser = 0;

	*out = NULL;
	if (errlen > 0)
		errbuf[0] = '\0';
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(errbuf, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if ((x.dir = strdup(path)) == NULL)
		goto out;
	if ((slash = strrchr(x.dir, '/')) != NULL)
		*slash = '\0';
	else {
		free(x.dir);
		x.dir = NULL;
	}
	if (!yaml_parser_initialize(&parser)) {
		cerr(&x, NULL, "cannot initialise the YAML parser");
		goto out;
	}
	have_parser = 1;
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(errbuf, errlen, "%s:%lu: YAML syntax error: %s", path,
		    (unsigned long)parser.problem_mark.line + 1,
		    parser.problem != NULL ? parser.problem : "unknown");
		goto out;
	}
	have_doc = 1;
	x.doc = &doc;
	if ((root = yaml_document_get_root_node(&doc)) == NULL) {
		cerr(&x, NULL, "the file is empty");
		goto out;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->path = strdup(path)) == NULL) {
		cerr(&x, NULL, "out of memory");
		goto out;
	}
	c->max_body = 65536;
	c->max_headers = 16384;
	c->timeout = 10;
	c->request_timeout = 10;
	c->leeway = AGENTID_DEFAULT_LEEWAY;
	c->status_list_size = 65536;
	c->status_list_ttl = 60;
	c->dpop_window = 60;
	c->refresh_min = 5;
	c->refresh_interval = 300;
	c->client_cert = XC_CLIENT_CERT_OPTIONAL;
	if (for_pairs(&x, root, "top level", top_item, c) != 0)
		goto out;
	if (defaults_and_checks(&x, c) != 0)
		goto out;
	if (xc_policy_compile(c, errbuf, errlen) != 0)
		goto out;
	*out = c;
	c = NULL;
	r = 0;
out:
	if (r != 0 && errbuf[0] == '\0')
		snprintf(errbuf, errlen, "%s: out of memory", path);
	xc_config_free(c);
	if (have_doc)
		yaml_document_delete(&doc);
	if (have_parser)
		yaml_parser_delete(&parser);
	free(x.dir);
	if (f != NULL)
		fclose(f);
	return r;
}
