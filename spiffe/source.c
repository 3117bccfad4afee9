/*
 * Credentials delivered as files in the layout spiffe-helper writes:
 *
 *   svid.pem          X.509-SVID: leaf first, then intermediates
 *   svid_key.pem      its private key (PKCS#8 PEM)
 *   svid_bundle.pem   X.509 authorities (PEM); with include_federated_domains
 *                     also those of federated trust domains
 *   jwt_svid.token    one JWT-SVID (compact serialization)
 *   jwt_bundle.json   JWT authorities: a JSON object mapping each trust
 *                     domain name to the standard base64 of its JWK Set
 *
 * A file is re-read only when its inode, size or modification time (in
 * nanoseconds) changed, so polling is cheap.  spiffe-helper rewrites files
 * in place; a reader can therefore see a half-written file, which fails to
 * parse: the previous good value stays in use and the file is retried on
 * the next refresh (its stat data is only recorded after a good read).
 *
 * A source is not locked: one thread refreshes it, and consumers take
 * their own references (agentid_svid_source_trust, agentid_key_ref, ...)
 * before handing them to other threads.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <agentid/spiffe.h>

#include "internal.h"
#include "spiffe_int.h"

#define JWT_BUNDLE_FILE_MAX (4 * 1024 * 1024)

enum src_file { F_CERT, F_KEY, F_BUNDLE, F_JWT_SVID, F_JWT_BUNDLE, F__COUNT };

static const char *const default_names[F__COUNT]
    = { "svid.pem", "svid_key.pem", "svid_bundle.pem", "jwt_svid.token", "jwt_bundle.json" };

struct file_state {
	char *path;
	int known; /* the fields below describe the file we last read successfully */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct agentid_svid_source {
	struct file_state f[F__COUNT];
	char *td_conf; /* configured trust domain, or NULL */
	X509 *cert;
	STACK_OF(X509) *chain;
	char *spiffe_id;
	struct agentid_key *key;
	STACK_OF(X509) *bundle_certs;
	json_t *jwt_bundle;
	char *jwt_svid;
	struct agentid_trust *trust;
};

/* ---- building the trust from the bundle files ---- */

/* Bundles being assembled, one per trust domain (td NULL: unbound). */
struct bundle_list {
	struct agentid_bundle **v;
	size_t n;
};

static void
bundle_list_free(struct bundle_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		agentid_bundle_free(l->v[i]);
	agentid_free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int
bundle_for(struct bundle_list *l, const char *td, struct agentid_bundle **out)
{
	struct agentid_bundle **nv, *b = NULL;
	const char *btd;
	size_t i;
	int r;

	*out = NULL;
	for (i = 0; i < l->n; i++) {
		btd = agentid_bundle_trust_domain(l->v[i]);
		if ((btd == NULL && td == NULL)
		    || (btd != NULL && td != NULL && strcmp(btd, td) == 0)) {
			*out = l->v[i];
			return 0;
		}
	}
	if ((r = agentid_bundle_new(td, &b)) != 0)
		return r;
	if ((nv = agentid_realloc(l->v, (l->n + 1) * sizeof(*nv))) == NULL) {
		agentid_bundle_free(b);
		return AGENTID_ENOMEM;
	}
	l->v = nv;
	l->v[l->n++] = b;
	*out = b;
	return 0;
}

/* Adds the content of a parsed bundle to the bundle of its trust domain in l. */
static int
merge_bundle(struct bundle_list *l, const struct agentid_bundle *from)
{
	const struct agentid_keyset *ks = agentid_bundle_jwt_keys(from);
	STACK_OF(X509) *x = agentid_bundle_x509_authorities(from);
	struct agentid_bundle *to;
	size_t i;
	int j, r;

	if ((r = bundle_for(l, agentid_bundle_trust_domain(from), &to)) != 0)
		return r;
	for (j = 0; j < sk_X509_num(x); j++)
		if ((r = agentid_bundle_add_x509_authority(to, sk_X509_value(x, j))) != 0)
			return r;
	/* Keys are immutable and reference counted; adding one only takes a reference. */
	for (i = 0; i < agentid_keyset_count(ks); i++)
		if ((r = agentid_bundle_add_jwt_key(
		         to, (struct agentid_key *)agentid_keyset_get(ks, i)))
		    != 0)
			return r;
	if (agentid_bundle_sequence(from) >= 0)
		agentid_bundle_set_sequence(to, agentid_bundle_sequence(from));
	if (agentid_bundle_refresh_hint(from) >= 0)
		agentid_bundle_set_refresh_hint(to, agentid_bundle_refresh_hint(from));
	return 0;
}

/* One member of spiffe-helper's JWT bundle set: td -> base64(JWK Set) (or the JWK Set itself). */
static int
add_jwt_set_member(
    struct bundle_list *l, const char *td, const json_t *v, struct agentid_error *err)
{
	struct agentid_bundle *b = NULL;
	unsigned char *dec = NULL;
	size_t declen;
	int r;

	if ((r = agentid_trust_domain_validate(td, strlen(td), err)) != 0)
		return r;
	if (json_is_string(v)) {
		if (agentid_b64std_decode(
		        json_string_value(v), json_string_length(v), &dec, &declen)
		    != 0)
			return agentid_error_set(err, AGENTID_R_BAD_ENCODING,
			    "JWT bundle of %s is not valid base64", td);
		r = agentid_bundle_parse(td, (const char *)dec, declen, &b, err);
	} else if (json_is_object(v)) {
		r = agentid_bundle_parse_json(td, v, &b, err);
	} else {
		r = agentid_error_set(err, AGENTID_R_BAD_JSON,
		    "JWT bundle of %s is neither a string nor an object", td);
	}
	if (r == 0)
		r = merge_bundle(l, b);
	agentid_bundle_free(b);
	agentid_free(dec);
	return r;
}

static int
add_jwt_bundle(
    struct bundle_list *l, const json_t *root, const char *default_td, struct agentid_error *err)
{
	struct agentid_bundle *b = NULL;
	const char *name;
	json_t *v;
	int r;

	if (!json_is_object(root))
		return agentid_error_set(
		    err, AGENTID_R_BAD_JSON, "JWT bundle is not a JSON object");
	/* A plain JWK Set or SPIFFE bundle rather than a set of them. */
	if (json_object_get(root, "keys") != NULL) {
		if ((r = agentid_bundle_parse_json(default_td, root, &b, err)) == 0)
			r = merge_bundle(l, b);
		agentid_bundle_free(b);
		return r;
	}
	json_object_foreach((json_t *)root, name, v)
	{
		if ((r = add_jwt_set_member(l, name, v, err)) != 0)
			return r;
	}
	return 0;
}

static int
add_x509_bundle(struct bundle_list *l, STACK_OF(X509) *certs, const char *default_td)
{
	char td[AGENTID_TRUST_DOMAIN_MAX + 1];
	struct agentid_bundle *b;
	X509 *c;
	int i, r;

	for (i = 0; i < sk_X509_num(certs); i++) {
		c = sk_X509_value(certs, i);
		/*
		 * spiffe-helper puts federated trust domains' authorities into the
		 * same file; their URI SAN tells them apart.  Certificates that
		 * name no trust domain belong to the SVID's own.
		 */
		r = agentid_x509_spiffe_td(c, td, sizeof(td), NULL);
		if (r < 0 && r != AGENTID_EREJECTED)
			return r;
		if ((r = bundle_for(l, r == 1 ? td : default_td, &b)) != 0)
			return r;
		if ((r = agentid_bundle_add_x509_authority(b, c)) != 0)
			return r;
	}
	return 0;
}

/* The trust domain bundles without a trust domain of their own belong to. */
static const char *
default_td(const struct agentid_svid_source *src, char *buf, size_t bufsz)
{
	struct agentid_spiffe_id id;

	if (src->td_conf != NULL)
		return src->td_conf;
	if (src->spiffe_id == NULL
	    || agentid_spiffe_id_parse(src->spiffe_id, strlen(src->spiffe_id), &id, NULL) != 0
	    || id.td_len >= bufsz)
		return NULL;
	memcpy(buf, id.td, id.td_len);
	buf[id.td_len] = '\0';
	return buf;
}

static int
build_trust(const struct agentid_svid_source *src, STACK_OF(X509) *certs, const json_t *jwt,
    struct agentid_trust **out, struct agentid_error *err)
{
	char tdbuf[AGENTID_TRUST_DOMAIN_MAX + 1];
	struct bundle_list l = { NULL, 0 };
	struct agentid_trust *t = NULL;
	const char *td = default_td(src, tdbuf, sizeof(tdbuf));
	size_t i;
	int r;

	*out = NULL;
	if (certs == NULL && jwt == NULL)
		return 0;
	if (certs != NULL && (r = add_x509_bundle(&l, certs, td)) != 0)
		goto out;
	if (jwt != NULL && (r = add_jwt_bundle(&l, jwt, td, err)) != 0)
		goto out;
	if ((r = agentid_trust_new(&t)) != 0)
		goto out;
	for (i = 0; i < l.n; i++)
		if ((r = agentid_trust_add_bundle(t, l.v[i])) != 0)
			goto out;
	*out = t;
	t = NULL;
	r = 0;
out:
	agentid_trust_free(t);
	bundle_list_free(&l);
	return r;
}

/* ---- reading single files ---- */

struct cert_value {
	X509 *cert;
	STACK_OF(X509) *chain;
	char *spiffe_id;
};

static int
read_cert(const char *path, struct cert_value *v, struct agentid_error *err)
{
	int r;

	memset(v, 0, sizeof(*v));
	if ((r = agentid_x509_load_pem_file(path, &v->cert, &v->chain, err)) != 0)
		return r;
	if ((r = agentid_x509svid_id_unverified(v->cert, &v->spiffe_id, err)) != 0) {
		X509_free(v->cert);
		sk_X509_pop_free(v->chain, X509_free);
		memset(v, 0, sizeof(*v));
	}
	return r;
}

static int
read_key(const char *path, struct agentid_key **out, struct agentid_error *err)
{
	int r;

	if ((r = agentid_key_load_file(path, out, err)) != 0)
		return r;
	if (!agentid_key_is_private(*out)) {
		agentid_key_free(*out);
		*out = NULL;
		return agentid_error_set(err, AGENTID_R_BAD_KEY, "%s holds no private key", path);
	}
	return 0;
}

static int
read_bundle_certs(const char *path, STACK_OF(X509) **out, struct agentid_error *err)
{
	X509 *first = NULL;
	STACK_OF(X509) *rest = NULL;
	int r;

	*out = NULL;
	if ((r = agentid_x509_load_pem_file(path, &first, &rest, err)) != 0)
		return r;
	/* One stack, in file order. */
	if (!sk_X509_insert(rest, first, 0)) {
		X509_free(first);
		sk_X509_pop_free(rest, X509_free);
		return AGENTID_ENOMEM;
	}
	*out = rest;
	return 0;
}

static int
read_jwt_svid(const char *path, char **out, struct agentid_error *err)
{
	struct agentid_jws *jws = NULL;
	char *buf = NULL;
	size_t len = 0, start = 0, bufsz;
	int r;

	*out = NULL;
	if ((r = agentid_read_file(path, AGENTID_DEFAULT_MAX_TOKEN_LEN + 64, &buf, &len)) != 0)
		return r;
	bufsz = len + 1;
	while (start < len && strchr(" \t\r\n", buf[start]) != NULL && buf[start] != '\0')
		start++;
	while (len > start && strchr(" \t\r\n", buf[len - 1]) != NULL && buf[len - 1] != '\0')
		len--;
	buf[len] = '\0';
	/* Structure only: the token is ours to present, others verify it. */
	if ((r = agentid_jws_parse(buf + start, len - start, NULL, &jws, err)) != 0)
		goto out;
	if (start > 0)
		memmove(buf, buf + start, len - start + 1);
	*out = buf;
	buf = NULL;
out:
	agentid_jws_free(jws);
	if (buf != NULL)
		agentid_freezero(buf, bufsz);
	return r;
}

static int
read_json(const char *path, json_t **out, struct agentid_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = agentid_read_file(path, JWT_BUNDLE_FILE_MAX, &buf, &len)) != 0)
		return r;
	r = agentid_json_parse(buf, len, AGENTID_DEFAULT_MAX_JSON_DEPTH, out, err);
	agentid_free(buf);
	return r;
}

/* ---- refresh ---- */

static int
same_file(const struct file_state *f, const struct stat *st)
{
	return f->known && f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size
	    && f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static void
remember(struct file_state *f, const struct stat *st)
{
	f->known = 1;
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->size = st->st_size;
	f->mtime = st->st_mtim;
}

static void
warn_key_mismatch(const struct agentid_svid_source *src)
{
	EVP_PKEY *pub;

	if (src->cert == NULL || src->key == NULL)
		return;
	pub = X509_get0_pubkey(src->cert);
	if (pub == NULL || EVP_PKEY_eq(pub, agentid_key_evp(src->key)) != 1)
		agentid_log(AGENTID_LOG_WARN,
		    "X.509-SVID %s and its private key do not match (renewal in progress?)",
		    src->spiffe_id != NULL ? src->spiffe_id : "");
}

/*
 * Reads file i when it changed.  Returns 1 when a new value was installed,
 * 0 when nothing changed, or an error (the previous value stays).
 */
static int
refresh_one(struct agentid_svid_source *src, enum src_file i, struct agentid_error *err)
{
	struct file_state *f = &src->f[i];
	struct cert_value cv;
	struct agentid_key *key = NULL;
	STACK_OF(X509) *certs = NULL;
	json_t *root = NULL;
	char *tok = NULL;
	struct agentid_trust *t = NULL;
	struct stat st;
	int r;

	if (stat(f->path, &st) != 0) {
		if (errno == ENOENT)
			return 0; /* never there, or removed: keep what we have */
		agentid_log(AGENTID_LOG_WARN, "cannot stat %s: %s", f->path, strerror(errno));
		return AGENTID_EIO;
	}
	if (same_file(f, &st))
		return 0;
	switch (i) {
	case F_CERT:
		if ((r = read_cert(f->path, &cv, err)) != 0)
			break;
		X509_free(src->cert);
		sk_X509_pop_free(src->chain, X509_free);
		agentid_free(src->spiffe_id);
		src->cert = cv.cert;
		src->chain = cv.chain;
		src->spiffe_id = cv.spiffe_id;
		break;
	case F_KEY:
		if ((r = read_key(f->path, &key, err)) != 0)
			break;
		agentid_key_free(src->key);
		src->key = key;
		break;
	case F_BUNDLE:
		if ((r = read_bundle_certs(f->path, &certs, err)) != 0)
			break;
		/* Checked by building the trust it would give. */
		if ((r = build_trust(src, certs, src->jwt_bundle, &t, err)) != 0) {
			sk_X509_pop_free(certs, X509_free);
			break;
		}
		agentid_trust_free(t);
		sk_X509_pop_free(src->bundle_certs, X509_free);
		src->bundle_certs = certs;
		break;
	case F_JWT_SVID:
		if ((r = read_jwt_svid(f->path, &tok, err)) != 0)
			break;
		if (src->jwt_svid != NULL)
			agentid_freezero(src->jwt_svid, strlen(src->jwt_svid));
		src->jwt_svid = tok;
		break;
	case F_JWT_BUNDLE:
		if ((r = read_json(f->path, &root, err)) != 0)
			break;
		if ((r = build_trust(src, src->bundle_certs, root, &t, err)) != 0) {
			json_decref(root);
			break;
		}
		agentid_trust_free(t);
		json_decref(src->jwt_bundle);
		src->jwt_bundle = root;
		break;
	default:
		r = AGENTID_EINVAL;
		break;
	}
	if (r != 0) {
		agentid_log(AGENTID_LOG_WARN, "%s: %s%s%s; keeping the previous value", f->path,
		    agentid_strerror(r), r == AGENTID_EREJECTED && err != NULL ? ": " : "",
		    r == AGENTID_EREJECTED && err != NULL ? err->detail : "");
		return r;
	}
	remember(f, &st);
	return 1;
}

static int
refresh(struct agentid_svid_source *src, int strict, int *changed, struct agentid_error *err)
{
	struct agentid_trust *t = NULL;
	struct agentid_error one;
	int i, r, first = 0, trust_dirty = 0;

	*changed = 0;
	for (i = 0; i < F__COUNT; i++) {
		agentid_error_clear(&one);
		r = refresh_one(src, (enum src_file)i, &one);
		if (r < 0) {
			if (first == 0) {
				first = r;
				if (err != NULL)
					*err = one;
			}
			if (strict)
				return r;
			continue;
		}
		if (r == 1) {
			*changed = 1;
			if (i == F_CERT || i == F_BUNDLE || i == F_JWT_BUNDLE)
				trust_dirty = 1;
		}
	}
	if (*changed)
		warn_key_mismatch(src);
	if (trust_dirty) {
		agentid_error_clear(&one);
		if ((r = build_trust(src, src->bundle_certs, src->jwt_bundle, &t, &one)) != 0) {
			if (first == 0) {
				first = r;
				if (err != NULL)
					*err = one;
			}
		} else {
			agentid_trust_free(src->trust);
			src->trust = t;
		}
	}
	return first;
}

/* ---- public API ---- */

static char *
join_path(const char *dir, const char *name)
{
	struct agentid_buf b;

	if (dir == NULL || dir[0] == '\0' || name[0] == '/')
		return agentid_strdup(name);
	agentid_buf_init(&b, 0);
	if (agentid_buf_append_str(&b, dir) != 0
	    || (dir[strlen(dir) - 1] != '/' && agentid_buf_append_str(&b, "/") != 0)
	    || agentid_buf_append_str(&b, name) != 0) {
		agentid_buf_free(&b);
		return NULL;
	}
	return agentid_buf_steal(&b, NULL);
}

AGENTID_EXPORT int
agentid_svid_source_open(const struct agentid_svid_files *files, struct agentid_svid_source **out,
    struct agentid_error *err)
{
	struct agentid_svid_source *src = NULL;
	const char *names[F__COUNT];
	int i, r, changed, any = 0;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	if (files == NULL)
		return AGENTID_EINVAL;
	if (files->trust_domain != NULL
	    && (r = agentid_trust_domain_validate(
	            files->trust_domain, strlen(files->trust_domain), err))
	        != 0)
		return r;
	names[F_CERT] = files->cert_file;
	names[F_KEY] = files->key_file;
	names[F_BUNDLE] = files->bundle_file;
	names[F_JWT_SVID] = files->jwt_svid_file;
	names[F_JWT_BUNDLE] = files->jwt_bundle_file;
	if ((src = agentid_calloc(1, sizeof(*src))) == NULL)
		return AGENTID_ENOMEM;
	for (i = 0; i < F__COUNT; i++) {
		src->f[i].path
		    = join_path(files->dir, names[i] != NULL ? names[i] : default_names[i]);
		if (src->f[i].path == NULL) {
			r = AGENTID_ENOMEM;
			goto out;
		}
	}
	if (files->trust_domain != NULL
	    && (src->td_conf = agentid_strdup(files->trust_domain)) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	if ((r = refresh(src, 1, &changed, err)) != 0)
		goto out;
	for (i = 0; i < F__COUNT; i++)
		any |= src->f[i].known;
	if (!any) {
		agentid_log(AGENTID_LOG_ERROR, "no SVID or bundle file found (looked for %s, ...)",
		    src->f[F_CERT].path);
		r = AGENTID_ENOTFOUND;
		goto out;
	}
	*out = src;
	src = NULL;
	r = 0;
out:
	agentid_svid_source_free(src);
	return r;
}

AGENTID_EXPORT int
agentid_svid_source_refresh(
    struct agentid_svid_source *src, int *changed, struct agentid_error *err)
{
	int dummy;

	if (changed == NULL)
		changed = &dummy;
	*changed = 0;
	if (src == NULL)
		return AGENTID_EINVAL;
	return refresh(src, 0, changed, err);
}

AGENTID_EXPORT X509 *
agentid_svid_source_cert(const struct agentid_svid_source *src)
{
	return src != NULL ? src->cert : NULL;
}

AGENTID_EXPORT STACK_OF(X509) *
agentid_svid_source_chain(const struct agentid_svid_source *src)
{
	return src != NULL ? src->chain : NULL;
}

AGENTID_EXPORT const struct agentid_key *
agentid_svid_source_key(const struct agentid_svid_source *src)
{
	return src != NULL ? src->key : NULL;
}

AGENTID_EXPORT const char *
agentid_svid_source_spiffe_id(const struct agentid_svid_source *src)
{
	return src != NULL ? src->spiffe_id : NULL;
}

AGENTID_EXPORT const char *
agentid_svid_source_jwt_svid(const struct agentid_svid_source *src)
{
	return src != NULL ? src->jwt_svid : NULL;
}

AGENTID_EXPORT struct agentid_trust *
agentid_svid_source_trust(const struct agentid_svid_source *src)
{
	return src != NULL ? agentid_trust_ref(src->trust) : NULL;
}

AGENTID_EXPORT void
agentid_svid_source_free(struct agentid_svid_source *src)
{
	int i;

	if (src == NULL)
		return;
	for (i = 0; i < F__COUNT; i++)
		agentid_free(src->f[i].path);
	agentid_free(src->td_conf);
	X509_free(src->cert);
	sk_X509_pop_free(src->chain, X509_free);
	agentid_free(src->spiffe_id);
	agentid_key_free(src->key);
	sk_X509_pop_free(src->bundle_certs, X509_free);
	json_decref(src->jwt_bundle);
	if (src->jwt_svid != NULL)
		agentid_freezero(src->jwt_svid, strlen(src->jwt_svid));
	agentid_trust_free(src->trust);
	agentid_free(src);
}
