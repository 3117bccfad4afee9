/*
 * Token Status Lists (draft-ietf-oauth-status-list): the packed list, its
 * zlib/base64url encoding, the signed statuslist+jwt, and the verifier's
 * checker that keeps fresh lists in memory for O(1) checks.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <zlib.h>

#include "internal.h"

#include <agentid/status.h>

struct agentid_status_list {
	size_t size;
	unsigned bits;
	unsigned char *bytes;
	size_t len;
};

/* ---- the list ---- */

static int
bits_valid(unsigned bits)
{
	return bits == 1 || bits == 2 || bits == 4 || bits == 8;
}

AGENTID_EXPORT int
agentid_status_list_new(size_t size, unsigned bits, struct agentid_status_list **out)
{
	struct agentid_status_list *l;
	size_t per = 8 / (bits != 0 ? bits : 1);

	*out = NULL;
	if (!bits_valid(bits) || size == 0 || size > SIZE_MAX - per)
		return AGENTID_EINVAL;
	if ((l = agentid_calloc(1, sizeof(*l))) == NULL)
		return AGENTID_ENOMEM;
	l->bits = bits;
	l->size = size;
	l->len = (size + per - 1) / per;
	if ((l->bytes = agentid_calloc(l->len, 1)) == NULL) {
		agentid_free(l);
		return AGENTID_ENOMEM;
	}
	*out = l;
	return 0;
}

AGENTID_EXPORT int
agentid_status_list_from_bytes(
    const unsigned char *bytes, size_t len, unsigned bits, struct agentid_status_list **out)
{
	struct agentid_status_list *l;

	*out = NULL;
	if (!bits_valid(bits) || len == 0 || len > SIZE_MAX / 8)
		return AGENTID_EINVAL;
	if ((l = agentid_calloc(1, sizeof(*l))) == NULL)
		return AGENTID_ENOMEM;
	if ((l->bytes = agentid_malloc(len)) == NULL) {
		agentid_free(l);
		return AGENTID_ENOMEM;
	}
	memcpy(l->bytes, bytes, len);
	l->len = len;
	l->bits = bits;
	l->size = len * (8 / bits);
	*out = l;
	return 0;
}

AGENTID_EXPORT size_t
agentid_status_list_size(const struct agentid_status_list *l)
{
	return l != NULL ? l->size : 0;
}

AGENTID_EXPORT unsigned
agentid_status_list_bits(const struct agentid_status_list *l)
{
	return l != NULL ? l->bits : 0;
}

AGENTID_EXPORT const unsigned char *
agentid_status_list_bytes(const struct agentid_status_list *l, size_t *len)
{
	if (len != NULL)
		*len = l != NULL ? l->len : 0;
	return l != NULL ? l->bytes : NULL;
}

/*
 * Entry idx lives in byte idx / (8 / bits), starting at bit
 * (idx % (8 / bits)) * bits counted from the least significant bit.
 */
static inline unsigned
list_get(const struct agentid_status_list *l, size_t idx)
{
	size_t per = 8 / l->bits;
	unsigned shift = (unsigned)(idx % per) * l->bits;

	return (l->bytes[idx / per] >> shift) & ((1u << l->bits) - 1);
}

AGENTID_EXPORT int
agentid_status_list_set(struct agentid_status_list *l, size_t idx, unsigned value)
{
	size_t per;
	unsigned shift, mask;

	if (l == NULL || idx >= l->size || value >= (1u << l->bits))
		return AGENTID_ERANGE;
	per = 8 / l->bits;
	shift = (unsigned)(idx % per) * l->bits;
	mask = ((1u << l->bits) - 1) << shift;
	l->bytes[idx / per] = (unsigned char)((l->bytes[idx / per] & ~mask) | (value << shift));
	return 0;
}

AGENTID_EXPORT int
agentid_status_list_get(const struct agentid_status_list *l, size_t idx, unsigned *value)
{
	if (l == NULL || idx >= l->size)
		return AGENTID_ERANGE;
	*value = list_get(l, idx);
	return 0;
}

AGENTID_EXPORT void
agentid_status_list_free(struct agentid_status_list *l)
{
	if (l == NULL)
		return;
	agentid_free(l->bytes);
	agentid_free(l);
}

/* ---- encoding ---- */

AGENTID_EXPORT int
agentid_status_list_encode(const struct agentid_status_list *l, json_t **out)
{
	unsigned char *z = NULL;
	uLongf zlen;
	char *lst = NULL;
	json_t *o = NULL;
	int r;

	*out = NULL;
	if (l == NULL || l->len > (size_t)ULONG_MAX / 2)
		return AGENTID_EINVAL;
	zlen = compressBound((uLong)l->len);
	if ((z = agentid_malloc(zlen)) == NULL)
		return AGENTID_ENOMEM;
	/* Level 9 with zlib's defaults (window 15, memLevel 8) is what the draft's examples use. */
	if (compress2(z, &zlen, l->bytes, (uLong)l->len, 9) != Z_OK) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	if ((r = agentid_b64url_encode_alloc(z, zlen, &lst)) != 0)
		goto out;
	r = AGENTID_ENOMEM;
	if ((o = json_object()) == NULL
	    || json_object_set_new(o, "bits", json_integer((json_int_t)l->bits)) != 0
	    || json_object_set_new(o, "lst", json_string(lst)) != 0)
		goto out;
	*out = o;
	o = NULL;
	r = 0;
out:
	json_decref(o);
	agentid_free(z);
	agentid_free(lst);
	return r;
}

/* Inflates a complete zlib stream of at most max bytes. */
static int
inflate_bounded(const unsigned char *in, size_t inlen, size_t max, unsigned char **out,
    size_t *outlen, struct agentid_error *err)
{
	z_stream zs;
	unsigned char *buf = NULL, *nb;
	size_t cap = 0;
	int zr, r;

	*out = NULL;
	*outlen = 0;
	memset(&zs, 0, sizeof(zs));
	if (inlen > UINT_MAX)
		return agentid_error_set(err, AGENTID_R_TOO_LARGE, "compressed list too large");
	if (inflateInit(&zs) != Z_OK)
		return AGENTID_ENOMEM;
	zs.next_in = (unsigned char *)in;
	zs.avail_in = (uInt)inlen;
	for (;;) {
		if (zs.total_out == cap) {
			size_t ncap = cap != 0 ? cap * 2 : 4096;
			if (cap == max + 1) {
				r = agentid_error_set(err, AGENTID_R_TOO_LARGE,
				    "status list larger than %zu bytes", max);
				goto out;
			}
			/* One byte past max tells "exactly max" from "more". */
			if (ncap > max + 1)
				ncap = max + 1;
			if ((nb = agentid_realloc(buf, ncap)) == NULL) {
				r = AGENTID_ENOMEM;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		zs.next_out = buf + zs.total_out;
		zs.avail_out = (uInt)(cap - zs.total_out);
		zr = inflate(&zs, Z_NO_FLUSH);
		if (zr == Z_STREAM_END)
			break;
		if (zr != Z_OK && !(zr == Z_BUF_ERROR && zs.avail_out == 0)) {
			r = agentid_error_set(
			    err, AGENTID_R_BAD_ENCODING, "status list is not a valid zlib stream");
			goto out;
		}
		if (zs.avail_in == 0 && zs.avail_out != 0) {
			r = agentid_error_set(
			    err, AGENTID_R_BAD_ENCODING, "status list zlib stream is truncated");
			goto out;
		}
	}
	if (zs.avail_in != 0) {
		r = agentid_error_set(
		    err, AGENTID_R_BAD_ENCODING, "trailing data after the status list zlib stream");
		goto out;
	}
	if (zs.total_out > max) {
		r = agentid_error_set(
		    err, AGENTID_R_TOO_LARGE, "status list larger than %zu bytes", max);
		goto out;
	}
	*outlen = zs.total_out;
	*out = buf;
	buf = NULL;
	r = 0;
out:
	inflateEnd(&zs);
	agentid_free(buf);
	return r;
}

AGENTID_EXPORT int
agentid_status_list_decode(const json_t *obj, size_t max_bytes, struct agentid_status_list **out,
    struct agentid_error *err)
{
	const json_t *jbits, *jlst;
	const char *lst;
	unsigned char *z = NULL, *raw = NULL;
	size_t lstlen, zlen = 0, rawlen = 0;
	json_int_t bits;
	int r;

	*out = NULL;
	if (max_bytes == 0)
		max_bytes = AGENTID_STATUS_DEFAULT_MAX_LIST_BYTES;
	if (!json_is_object(obj))
		return agentid_error_set(err, AGENTID_R_MALFORMED, "status_list is not an object");
	jbits = json_object_get(obj, "bits");
	jlst = json_object_get(obj, "lst");
	if (!json_is_integer(jbits) || !bits_valid((unsigned)(bits = json_integer_value(jbits)))
	    || bits > 8)
		return agentid_error_set(
		    err, AGENTID_R_MALFORMED, "status_list bits must be 1, 2, 4 or 8");
	if (!json_is_string(jlst))
		return agentid_error_set(
		    err, AGENTID_R_MALFORMED, "status_list lst is not a string");
	lst = json_string_value(jlst);
	lstlen = json_string_length(jlst);
	if (agentid_b64url_decoded_max(lstlen) > max_bytes + 1024)
		return agentid_error_set(err, AGENTID_R_TOO_LARGE, "status list too large");
	if ((z = agentid_malloc(agentid_b64url_decoded_max(lstlen) + 1)) == NULL)
		return AGENTID_ENOMEM;
	if (agentid_b64url_decode(lst, lstlen, z, agentid_b64url_decoded_max(lstlen) + 1, &zlen)
	    != 0) {
		r = agentid_error_set(
		    err, AGENTID_R_BAD_ENCODING, "status_list lst is not base64url");
		goto out;
	}
	if ((r = inflate_bounded(z, zlen, max_bytes, &raw, &rawlen, err)) != 0)
		goto out;
	if (rawlen == 0) {
		r = agentid_error_set(err, AGENTID_R_MALFORMED, "status list is empty");
		goto out;
	}
	r = agentid_status_list_from_bytes(raw, rawlen, (unsigned)bits, out);
out:
	agentid_free(z);
	agentid_free(raw);
	return r;
}

/* ---- the Status List Token ---- */

AGENTID_EXPORT int
agentid_status_list_sign(const struct agentid_status_list *l, const struct agentid_key *key,
    enum agentid_alg alg, const struct agentid_status_list_claims *c, char **out)
{
	json_t *hdr = NULL, *payload = NULL, *sl = NULL;
	int r;

	*out = NULL;
	if (l == NULL || key == NULL || c == NULL || c->uri == NULL || c->iat <= 0)
		return AGENTID_EINVAL;
	if ((r = agentid_status_list_encode(l, &sl)) != 0)
		return r;
	r = AGENTID_ENOMEM;
	if ((hdr = json_pack("{s:s}", "typ", AGENTID_STATUS_LIST_TYP)) == NULL
	    || (payload = json_pack("{s:s, s:I}", "sub", c->uri, "iat", (json_int_t)c->iat))
	        == NULL)
		goto out;
	if (c->iss != NULL && json_object_set_new(payload, "iss", json_string(c->iss)) != 0)
		goto out;
	if (c->exp > 0 && json_object_set_new(payload, "exp", json_integer(c->exp)) != 0)
		goto out;
	if (c->ttl > 0 && json_object_set_new(payload, "ttl", json_integer(c->ttl)) != 0)
		goto out;
	if (json_object_set(payload, "status_list", sl) != 0)
		goto out;
	r = agentid_jws_sign(key, alg, hdr, payload, out);
out:
	json_decref(hdr);
	json_decref(payload);
	json_decref(sl);
	return r;
}

AGENTID_EXPORT void
agentid_status_list_token_free(struct agentid_status_list_token *t)
{
	if (t == NULL)
		return;
	agentid_status_list_free(t->list);
	agentid_free(t->sub);
	agentid_free(t->iss);
	agentid_free(t);
}

/* The signature of jws by the key with its kid in keys, or by any key of keys without kid. */
static int
verify_signature(
    const struct agentid_jws *jws, const struct agentid_keyset *keys, struct agentid_error *err)
{
	const struct agentid_key *k;
	size_t i, n;
	int tried = 0;

	if (keys == NULL || agentid_keyset_count(keys) == 0)
		return agentid_error_set(err, AGENTID_R_NO_KEYS, "no keys to verify status lists");
	if (jws->kid != NULL) {
		if ((k = agentid_keyset_find(keys, jws->kid, strlen(jws->kid))) == NULL)
			return agentid_error_set(
			    err, AGENTID_R_UNKNOWN_KID, "status list signed by unknown kid");
		if (!agentid_key_supports_alg(k, jws->alg))
			return agentid_error_set(
			    err, AGENTID_R_KEY_MISMATCH, "status list key does not match the alg");
		return agentid_jws_verify(jws, k, err);
	}
	n = agentid_keyset_count(keys);
	for (i = 0; i < n; i++) {
		k = agentid_keyset_get(keys, i);
		if (!agentid_key_supports_alg(k, jws->alg))
			continue;
		tried++;
		if (agentid_jws_verify(jws, k, NULL) == 0)
			return 0;
	}
	if (tried == 0)
		return agentid_error_set(
		    err, AGENTID_R_KEY_MISMATCH, "no status list key supports the alg");
	return agentid_error_set(
	    err, AGENTID_R_BAD_SIGNATURE, "status list signature does not verify");
}

static int
typ_ok(const char *typ)
{
	if (typ == NULL)
		return 0;
	/* RFC 7515 section 4.1.9: the "application/" prefix may be left out; media types ignore
	 * case. */
	if (strncasecmp(typ, "application/", 12) == 0)
		typ += 12;
	return strcasecmp(typ, AGENTID_STATUS_LIST_TYP) == 0;
}

static int
claim_int(const json_t *claims, const char *name, int64_t *out, int *present)
{
	const json_t *v = json_object_get(claims, name);

	*present = v != NULL;
	*out = 0;
	if (v == NULL)
		return 0;
	if (!json_is_integer(v))
		return -1;
	*out = json_integer_value(v);
	return 0;
}

AGENTID_EXPORT int
agentid_status_list_verify_jwt(const char *jwt, size_t len, const struct agentid_keyset *keys,
    unsigned algs, const char *uri, const char *iss, time_t now, long leeway, size_t max_bytes,
    struct agentid_status_list_token **out, struct agentid_error *err)
{
	struct agentid_status_list_token *t = NULL;
	struct agentid_jws *jws = NULL;
	struct agentid_limits lim;
	const char *sub, *tiss;
	int64_t iat, exp, ttl;
	int r, present;

	*out = NULL;
	if (max_bytes == 0)
		max_bytes = AGENTID_STATUS_DEFAULT_MAX_LIST_BYTES;
	agentid_limits_init(&lim);
	/* A list token is as large as its (compressed) list: allow the list's bound. */
	lim.max_token_len = max_bytes + 65536;
	while (len > 0 && (jwt[len - 1] == '\n' || jwt[len - 1] == '\r' || jwt[len - 1] == ' '))
		len--;
	if ((r = agentid_jws_parse(jwt, len, &lim, &jws, err)) != 0)
		return r;
	if ((AGENTID_ALG_BIT(jws->alg) & (algs != 0 ? algs : AGENTID_ALGS_ALL)) == 0) {
		r = agentid_error_set(
		    err, AGENTID_R_ALG_NOT_ALLOWED, "status list alg not allowed");
		goto out;
	}
	if ((r = verify_signature(jws, keys, err)) != 0)
		goto out;
	if (claim_int(jws->payload, "exp", &exp, &present) != 0) {
		r = agentid_error_set(
		    err, AGENTID_R_BAD_CLAIM, "status list exp is not an integer");
		goto out;
	}
	if (present && (int64_t)now > exp + leeway) {
		r = agentid_error_set(err, AGENTID_R_EXPIRED, "status list has expired");
		goto out;
	}
	if (claim_int(jws->payload, "iat", &iat, &present) != 0 || !present) {
		r = agentid_error_set(err, present ? AGENTID_R_BAD_CLAIM : AGENTID_R_MISSING_CLAIM,
		    "status list needs an integer iat");
		goto out;
	}
	if (claim_int(jws->payload, "ttl", &ttl, &present) != 0 || (present && ttl <= 0)) {
		r = agentid_error_set(err, AGENTID_R_BAD_CLAIM, "status list ttl must be positive");
		goto out;
	}
	tiss = json_string_value(json_object_get(jws->payload, "iss"));
	if (iss != NULL && (tiss == NULL || strcmp(iss, tiss) != 0)) {
		r = agentid_error_set(
		    err, AGENTID_R_ISS_MISMATCH, "status list issuer not accepted");
		goto out;
	}
	if (!typ_ok(jws->typ)) {
		r = agentid_error_set(err, AGENTID_R_TYP_MISMATCH, "status list typ must be %s",
		    AGENTID_STATUS_LIST_TYP);
		goto out;
	}
	if ((sub = json_string_value(json_object_get(jws->payload, "sub"))) == NULL) {
		r = agentid_error_set(err, AGENTID_R_MISSING_CLAIM, "status list has no sub");
		goto out;
	}
	if (uri != NULL && strcmp(sub, uri) != 0) {
		r = agentid_error_set(err, AGENTID_R_CLAIM_MISMATCH,
		    "status list sub is not the URI it was fetched as");
		goto out;
	}
	if ((t = agentid_calloc(1, sizeof(*t))) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	t->iat = iat;
	claim_int(jws->payload, "exp", &t->exp, &present);
	t->ttl = ttl;
	if ((t->sub = agentid_strdup(sub)) == NULL
	    || (tiss != NULL && (t->iss = agentid_strdup(tiss)) == NULL)) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	if ((r = agentid_status_list_decode(
	         json_object_get(jws->payload, "status_list"), max_bytes, &t->list, err))
	    != 0)
		goto out;
	*out = t;
	t = NULL;
out:
	agentid_status_list_token_free(t);
	agentid_jws_free(jws);
	return r;
}

/* ---- the checker ---- */

/* What a check reads: replaced as a whole on refresh. */
struct snapshot {
	struct agentid_status_list *list;
	time_t
	    verified_at; /* last time the list was fetched (or confirmed unchanged) and verified */
	int64_t exp; /* 0: none */
};

struct source {
	char *uri;
	size_t uri_len;
	char *file;
	struct snapshot *snap; /* under chk->lock */
	/* Refresh state, only touched with chk->refresh_mu held. */
	char *etag;
	time_t next_refresh;
	long backoff;
	dev_t st_dev;
	ino_t st_ino;
	off_t st_size;
	struct timespec st_mtim;
};

struct agentid_status_checker {
	pthread_rwlock_t lock; /* sources array and snapshots; never held during I/O */
	pthread_mutex_t refresh_mu; /* one refresh at a time */
	struct source **src;
	size_t nsrc, cap;
	struct agentid_keyset *keys;
	char *issuer;
	unsigned algs;
	long leeway, max_age, min_refresh, max_refresh, retry;
	int fail_closed, require_status;
	size_t max_list_bytes;
	struct agentid_fetch_opts fetch;
	char *cafile, *capath;
	/* background refresh */
	pthread_mutex_t th_mu;
	pthread_cond_t th_cv;
	pthread_t th;
	int running, stop;
};

AGENTID_EXPORT void
agentid_status_checker_config_init(struct agentid_status_checker_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->leeway = AGENTID_DEFAULT_LEEWAY;
	cfg->max_age = 3600;
	cfg->min_refresh = 10;
	cfg->max_refresh = 300;
	cfg->retry_seconds = 10;
	cfg->fail_closed = 1;
	agentid_fetch_opts_init(&cfg->fetch);
	cfg->fetch.accept = "application/statuslist+jwt";
}

static void
snapshot_free(struct snapshot *s)
{
	if (s == NULL)
		return;
	agentid_status_list_free(s->list);
	agentid_free(s);
}

AGENTID_EXPORT int
agentid_status_checker_new(const struct agentid_status_checker_config *cfg,
    struct agentid_status_checker **out, struct agentid_error *err)
{
	struct agentid_status_checker *c;

	*out = NULL;
	if (cfg == NULL || cfg->keys == NULL) {
		agentid_error_set(err, AGENTID_R_NO_KEYS, "status lists need the issuer's keys");
		return AGENTID_EINVAL;
	}
	if ((c = agentid_calloc(1, sizeof(*c))) == NULL)
		return AGENTID_ENOMEM;
	pthread_rwlock_init(&c->lock, NULL);
	pthread_mutex_init(&c->refresh_mu, NULL);
	pthread_mutex_init(&c->th_mu, NULL);
	pthread_cond_init(&c->th_cv, NULL);
	c->keys = agentid_keyset_ref((struct agentid_keyset *)cfg->keys);
	c->algs = cfg->algs;
	c->leeway = cfg->leeway;
	c->max_age = cfg->max_age > 0 ? cfg->max_age : 3600;
	c->min_refresh = cfg->min_refresh > 0 ? cfg->min_refresh : 1;
	c->max_refresh = cfg->max_refresh >= c->min_refresh ? cfg->max_refresh : c->min_refresh;
	c->retry = cfg->retry_seconds > 0 ? cfg->retry_seconds : 10;
	c->fail_closed = cfg->fail_closed;
	c->require_status = cfg->require_status;
	c->max_list_bytes = cfg->max_list_bytes != 0 ? cfg->max_list_bytes
	                                             : AGENTID_STATUS_DEFAULT_MAX_LIST_BYTES;
	c->fetch = cfg->fetch;
	c->fetch.etag = NULL;
	if ((cfg->issuer != NULL && (c->issuer = agentid_strdup(cfg->issuer)) == NULL)
	    || (cfg->fetch.cafile != NULL
	        && (c->cafile = agentid_strdup(cfg->fetch.cafile)) == NULL)
	    || (cfg->fetch.capath != NULL
	        && (c->capath = agentid_strdup(cfg->fetch.capath)) == NULL)) {
		agentid_status_checker_free(c);
		return AGENTID_ENOMEM;
	}
	c->fetch.cafile = c->cafile;
	c->fetch.capath = c->capath;
	/* The configuration's accept string may not outlive it. */
	c->fetch.accept = "application/statuslist+jwt";
	*out = c;
	return 0;
}

AGENTID_EXPORT int
agentid_status_checker_add_source(
    struct agentid_status_checker *chk, const char *uri, const char *file)
{
	struct source *s, **ns;
	int r = 0;

	if (chk == NULL || uri == NULL || uri[0] == '\0')
		return AGENTID_EINVAL;
	if ((s = agentid_calloc(1, sizeof(*s))) == NULL)
		return AGENTID_ENOMEM;
	if ((s->uri = agentid_strdup(uri)) == NULL
	    || (file != NULL && (s->file = agentid_strdup(file)) == NULL)) {
		r = AGENTID_ENOMEM;
		goto fail;
	}
	s->uri_len = strlen(uri);
	pthread_rwlock_wrlock(&chk->lock);
	if (chk->nsrc == chk->cap) {
		size_t ncap = chk->cap != 0 ? chk->cap * 2 : 4;
		if ((ns = agentid_realloc(chk->src, ncap * sizeof(*ns))) == NULL) {
			pthread_rwlock_unlock(&chk->lock);
			r = AGENTID_ENOMEM;
			goto fail;
		}
		chk->src = ns;
		chk->cap = ncap;
	}
	chk->src[chk->nsrc++] = s;
	pthread_rwlock_unlock(&chk->lock);
	return 0;
fail:
	agentid_free(s->uri);
	agentid_free(s->file);
	agentid_free(s);
	return r;
}

/* Source i, or NULL past the end (sources are never removed before free). */
static struct source *
source_at(struct agentid_status_checker *chk, size_t i)
{
	struct source *s = NULL;

	pthread_rwlock_rdlock(&chk->lock);
	if (i < chk->nsrc)
		s = chk->src[i];
	pthread_rwlock_unlock(&chk->lock);
	return s;
}

static void
swap_snapshot(struct agentid_status_checker *chk, struct source *s, struct snapshot *ns)
{
	struct snapshot *old;

	pthread_rwlock_wrlock(&chk->lock);
	old = s->snap;
	s->snap = ns;
	pthread_rwlock_unlock(&chk->lock);
	snapshot_free(old);
}

/* The list is unchanged since the last refresh: it counts as confirmed now. */
static void
confirm_snapshot(struct agentid_status_checker *chk, struct source *s, time_t now)
{
	pthread_rwlock_wrlock(&chk->lock);
	if (s->snap != NULL)
		s->snap->verified_at = now;
	pthread_rwlock_unlock(&chk->lock);
}

static long
clamp_refresh(struct agentid_status_checker *chk, int64_t ttl)
{
	if (ttl <= 0 || ttl > chk->max_refresh)
		return chk->max_refresh;
	return ttl < chk->min_refresh ? chk->min_refresh : (long)ttl;
}

/* Fetches or reads the list of s, verifies it and swaps it in.  refresh_mu held. */
static int
refresh_source(
    struct agentid_status_checker *chk, struct source *s, time_t now, struct agentid_error *err)
{
	struct agentid_fetch_result res;
	struct agentid_fetch_opts fo = chk->fetch;
	struct agentid_status_list_token *t = NULL;
	struct snapshot *ns = NULL;
	struct stat st;
	char *body = NULL;
	size_t len = 0;
	int r, have_snap;

	memset(&res, 0, sizeof(res));
	pthread_rwlock_rdlock(&chk->lock);
	have_snap = s->snap != NULL;
	pthread_rwlock_unlock(&chk->lock);
	if (s->file != NULL) {
		if (stat(s->file, &st) != 0) {
			agentid_error_set(err, AGENTID_R_STATUS_UNAVAILABLE,
			    "cannot read status list file for %s", s->uri);
			r = AGENTID_EIO;
			goto out;
		}
		if (have_snap && st.st_dev == s->st_dev && st.st_ino == s->st_ino
		    && st.st_size == s->st_size && st.st_mtim.tv_sec == s->st_mtim.tv_sec
		    && st.st_mtim.tv_nsec == s->st_mtim.tv_nsec) {
			confirm_snapshot(chk, s, now);
			r = 0;
			goto out;
		}
		if ((r = agentid_read_file(s->file, chk->max_list_bytes + 65536, &body, &len))
		    != 0) {
			agentid_error_set(err,
			    r == AGENTID_ERANGE ? AGENTID_R_TOO_LARGE
			                        : AGENTID_R_STATUS_UNAVAILABLE,
			    "cannot read status list file for %s", s->uri);
			goto out;
		}
	} else {
		fo.etag = have_snap ? s->etag : NULL;
		if ((r = agentid_fetch(s->uri, &fo, &res, err)) != 0)
			goto out;
		if (res.not_modified) {
			confirm_snapshot(chk, s, now);
			goto out;
		}
		body = res.body;
		len = res.len;
		res.body = NULL;
	}
	if ((r = agentid_status_list_verify_jwt(body, len, chk->keys, chk->algs, s->uri,
	         chk->issuer, now, chk->leeway, chk->max_list_bytes, &t, err))
	    != 0)
		goto out;
	if ((ns = agentid_calloc(1, sizeof(*ns))) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	ns->list = t->list;
	t->list = NULL;
	ns->verified_at = now;
	ns->exp = t->exp;
	swap_snapshot(chk, s, ns);
	if (s->file != NULL) {
		s->st_dev = st.st_dev;
		s->st_ino = st.st_ino;
		s->st_size = st.st_size;
		s->st_mtim = st.st_mtim;
	} else {
		agentid_free(s->etag);
		s->etag = res.etag;
		res.etag = NULL;
	}
	s->next_refresh = now + clamp_refresh(chk, t->ttl);
	s->backoff = 0;
	agentid_log(AGENTID_LOG_DEBUG, "status list %s refreshed (%zu entries)", s->uri,
	    agentid_status_list_size(ns->list));
out:
	if (r != 0) {
		/* Keep the previous list (until it goes stale) and retry with a growing delay. */
		s->backoff = s->backoff == 0
		    ? chk->retry
		    : (s->backoff * 2 > chk->max_refresh ? chk->max_refresh : s->backoff * 2);
		s->next_refresh = now + s->backoff;
		agentid_log(AGENTID_LOG_WARN, "status list %s: refresh failed: %s", s->uri,
		    err != NULL && err->detail[0] != '\0' ? err->detail : agentid_strerror(r));
	} else if (s->next_refresh <= now) {
		s->next_refresh = now + clamp_refresh(chk, 0);
	}
	agentid_status_list_token_free(t);
	agentid_fetch_result_free(&res);
	agentid_free(body);
	return r;
}

AGENTID_EXPORT int
agentid_status_checker_refresh(
    struct agentid_status_checker *chk, time_t now, int force, struct agentid_error *err)
{
	struct agentid_error e1;
	struct source *s;
	size_t i;
	int r, first = 0;

	if (chk == NULL)
		return AGENTID_EINVAL;
	pthread_mutex_lock(&chk->refresh_mu);
	for (i = 0; (s = source_at(chk, i)) != NULL; i++) {
		if (!force && s->next_refresh > now)
			continue;
		agentid_error_clear(&e1);
		if ((r = refresh_source(chk, s, now, &e1)) != 0 && first == 0) {
			first = r;
			agentid_error_set(err, e1.reason, "%s: %s", s->uri, e1.detail);
		}
	}
	pthread_mutex_unlock(&chk->refresh_mu);
	return first;
}

AGENTID_EXPORT time_t
agentid_status_checker_next_refresh(struct agentid_status_checker *chk)
{
	struct source *s;
	time_t next = 0;
	size_t i;

	pthread_mutex_lock(&chk->refresh_mu);
	for (i = 0; (s = source_at(chk, i)) != NULL; i++)
		if (next == 0 || s->next_refresh < next)
			next = s->next_refresh;
	pthread_mutex_unlock(&chk->refresh_mu);
	return next;
}

static void *
refresh_thread(void *arg)
{
	struct agentid_status_checker *chk = arg;
	struct timespec until;
	time_t now, next;

	pthread_mutex_lock(&chk->th_mu);
	while (!chk->stop) {
		pthread_mutex_unlock(&chk->th_mu);
		now = time(NULL);
		agentid_status_checker_refresh(chk, now, 0, NULL);
		next = agentid_status_checker_next_refresh(chk);
		now = time(NULL);
		if (next <= now)
			next = now + 1;
		if (next > now + chk->max_refresh)
			next = now + chk->max_refresh;
		until.tv_sec = next;
		until.tv_nsec = 0;
		pthread_mutex_lock(&chk->th_mu);
		while (!chk->stop && time(NULL) < next)
			if (pthread_cond_timedwait(&chk->th_cv, &chk->th_mu, &until) == ETIMEDOUT)
				break;
	}
	pthread_mutex_unlock(&chk->th_mu);
	return NULL;
}

AGENTID_EXPORT int
agentid_status_checker_start(struct agentid_status_checker *chk)
{
	int r = 0;

	if (chk == NULL)
		return AGENTID_EINVAL;
	pthread_mutex_lock(&chk->th_mu);
	if (!chk->running) {
		chk->stop = 0;
		if (pthread_create(&chk->th, NULL, refresh_thread, chk) != 0)
			r = AGENTID_ENOMEM;
		else
			chk->running = 1;
	}
	pthread_mutex_unlock(&chk->th_mu);
	return r;
}

AGENTID_EXPORT void
agentid_status_checker_stop(struct agentid_status_checker *chk)
{
	int running;

	if (chk == NULL)
		return;
	pthread_mutex_lock(&chk->th_mu);
	running = chk->running;
	chk->stop = 1;
	pthread_cond_broadcast(&chk->th_cv);
	pthread_mutex_unlock(&chk->th_mu);
	if (running) {
		pthread_join(chk->th, NULL);
		pthread_mutex_lock(&chk->th_mu);
		chk->running = 0;
		pthread_mutex_unlock(&chk->th_mu);
	}
}

AGENTID_EXPORT int
agentid_status_check(struct agentid_status_checker *chk, const char *uri, size_t uri_len,
    uint64_t idx, time_t now, struct agentid_error *err)
{
	const struct snapshot *sn = NULL;
	struct source *s = NULL;
	unsigned v;
	size_t i;
	int r = 0, stale;

	if (chk == NULL || uri == NULL)
		return AGENTID_EINVAL;
	pthread_rwlock_rdlock(&chk->lock);
	for (i = 0; i < chk->nsrc; i++)
		if (chk->src[i]->uri_len == uri_len
		    && memcmp(chk->src[i]->uri, uri, uri_len) == 0) {
			s = chk->src[i];
			break;
		}
	if (s == NULL) {
		if (chk->fail_closed)
			r = agentid_error_set(err, AGENTID_R_STATUS_UNAVAILABLE,
			    "token refers to an unknown status list");
		goto out;
	}
	if ((sn = s->snap) == NULL) {
		if (chk->fail_closed)
			r = agentid_error_set(
			    err, AGENTID_R_STATUS_UNAVAILABLE, "status list not fetched yet");
		goto out;
	}
	stale = now - sn->verified_at > chk->max_age
	    || (sn->exp != 0 && (int64_t)now > sn->exp + chk->leeway);
	/* Open fail mode keeps answering from the last list it verified. */
	if (stale && chk->fail_closed) {
		r = agentid_error_set(err, AGENTID_R_STATUS_UNAVAILABLE, "status list is stale");
		goto out;
	}
	if (idx >= sn->list->size) {
		r = agentid_error_set(err, AGENTID_R_BAD_CLAIM, "status index beyond the list");
		goto out;
	}
	v = list_get(sn->list, (size_t)idx);
	if (v == AGENTID_STATUS_SUSPENDED)
		r = agentid_error_set(err, AGENTID_R_SUSPENDED, "token is suspended");
	else if (v != AGENTID_STATUS_VALID)
		r = agentid_error_set(err, AGENTID_R_REVOKED, "token status is 0x%02x", v);
out:
	pthread_rwlock_unlock(&chk->lock);
	return r;
}

AGENTID_EXPORT int
agentid_status_check_claims(
    struct agentid_status_checker *chk, const json_t *claims, time_t now, struct agentid_error *err)
{
	const json_t *status, *sl, *idx, *uri;

	status = json_object_get(claims, "status");
	sl = json_is_object(status) ? json_object_get(status, "status_list") : NULL;
	if (status != NULL && !json_is_object(status))
		return agentid_error_set(err, AGENTID_R_BAD_CLAIM, "status is not an object");
	if (sl == NULL) {
		if (chk != NULL && chk->require_status)
			return agentid_error_set(
			    err, AGENTID_R_MISSING_CLAIM, "token has no status list entry");
		return 0;
	}
	idx = json_object_get(sl, "idx");
	uri = json_object_get(sl, "uri");
	if (!json_is_object(sl) || !json_is_integer(idx) || json_integer_value(idx) < 0
	    || !json_is_string(uri))
		return agentid_error_set(err, AGENTID_R_BAD_CLAIM,
		    "status.status_list needs an integer idx and a string uri");
	return agentid_status_check(chk, json_string_value(uri), json_string_length(uri),
	    (uint64_t)json_integer_value(idx), now, err);
}

AGENTID_EXPORT void
agentid_status_checker_free(struct agentid_status_checker *chk)
{
	size_t i;

	if (chk == NULL)
		return;
	agentid_status_checker_stop(chk);
	for (i = 0; i < chk->nsrc; i++) {
		snapshot_free(chk->src[i]->snap);
		agentid_free(chk->src[i]->uri);
		agentid_free(chk->src[i]->file);
		agentid_free(chk->src[i]->etag);
		agentid_free(chk->src[i]);
	}
	agentid_free(chk->src);
	agentid_keyset_free(chk->keys);
	agentid_free(chk->issuer);
	agentid_free(chk->cafile);
	agentid_free(chk->capath);
	pthread_rwlock_destroy(&chk->lock);
	pthread_mutex_destroy(&chk->refresh_mu);
	pthread_mutex_destroy(&chk->th_mu);
	pthread_cond_destroy(&chk->th_cv);
	agentid_free(chk);
}
