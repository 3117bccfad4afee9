/*
 * JWK Sets (RFC 7517 section 5).
 *
 * A set is built once, then shared read-only (reference counted) between
 * threads; refreshing keys means building a new set and swapping it in.
 * Keys that we cannot use (unknown "kty", unsupported curves, malformed
 * members) are skipped rather than failing the whole set, as RFC 7517
 * section 5 asks, so one odd key from an IdP does not lock everyone out.
 */
#include "config.h"

#include <string.h>

#include "jose_int.h"

struct agentid_keyset {
	agentid_refcnt ref;
	struct agentid_key **keys;
	size_t n, cap;
};

AGENTID_EXPORT int
agentid_keyset_new(struct agentid_keyset **out)
{
	struct agentid_keyset *ks;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	if ((ks = agentid_calloc(1, sizeof(*ks))) == NULL)
		return AGENTID_ENOMEM;
	agentid_ref_init(&ks->ref);
	*out = ks;
	return 0;
}

AGENTID_EXPORT int
agentid_keyset_add(struct agentid_keyset *ks, struct agentid_key *key)
{
	struct agentid_key **p;
	size_t cap;

	if (ks == NULL || key == NULL)
		return AGENTID_EINVAL;
	if (ks->n == ks->cap) {
		cap = ks->cap != 0 ? ks->cap * 2 : 4;
		if ((p = agentid_realloc(ks->keys, cap * sizeof(*p))) == NULL)
			return AGENTID_ENOMEM;
		ks->keys = p;
		ks->cap = cap;
	}
	ks->keys[ks->n++] = agentid_key_ref(key);
	return 0;
}

AGENTID_EXPORT int
agentid_keyset_parse_json(
    const json_t *jwks, struct agentid_keyset **out, struct agentid_error *err)
{
	struct agentid_keyset *ks = NULL;
	struct agentid_key *key = NULL;
	struct agentid_error kerr;
	const json_t *keys, *jwk;
	size_t i;
	int r;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || jwks == NULL)
		return AGENTID_EINVAL;
	if (!json_is_object(jwks))
		return agentid_error_set(err, AGENTID_R_BAD_JSON, "JWK Set is not a JSON object");
	if ((keys = json_object_get(jwks, "keys")) == NULL || !json_is_array(keys))
		return agentid_error_set(err, AGENTID_R_BAD_JSON, "JWK Set has no \"keys\" array");
	if ((r = agentid_keyset_new(&ks)) != 0)
		return r;
	json_array_foreach(keys, i, jwk)
	{
		agentid_error_clear(&kerr);
		r = agentid_key_from_jwk(jwk, &key, &kerr);
		if (r == AGENTID_ENOMEM)
			goto out;
		if (r != 0) {
			agentid_log(AGENTID_LOG_DEBUG, "JWK Set: skipping key %zu: %s (%s)", i,
			    r == AGENTID_EREJECTED || kerr.reason != AGENTID_R_OK
			        ? agentid_reason_code(kerr.reason)
			        : agentid_strerror(r),
			    kerr.detail);
			continue;
		}
		r = agentid_keyset_add(ks, key);
		agentid_key_free(key);
		key = NULL;
		if (r != 0)
			goto out;
	}
	*out = ks;
	ks = NULL;
	r = 0;
out:
	agentid_keyset_free(ks);
	return r;
}

AGENTID_EXPORT int
agentid_keyset_parse(
    const char *json, size_t len, struct agentid_keyset **out, struct agentid_error *err)
{
	json_t *v = NULL;
	int r;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || json == NULL)
		return AGENTID_EINVAL;
	if ((r = agentid_json_parse(json, len, AGENTID_DEFAULT_MAX_JSON_DEPTH, &v, err)) != 0)
		return r;
	r = agentid_keyset_parse_json(v, out, err);
	json_decref(v);
	return r;
}

AGENTID_EXPORT size_t
agentid_keyset_count(const struct agentid_keyset *ks)
{
	return ks != NULL ? ks->n : 0;
}

AGENTID_EXPORT const struct agentid_key *
agentid_keyset_get(const struct agentid_keyset *ks, size_t i)
{
	if (ks == NULL || i >= ks->n)
		return NULL;
	return ks->keys[i];
}

AGENTID_EXPORT const struct agentid_key *
agentid_keyset_find(const struct agentid_keyset *ks, const char *kid, size_t kid_len)
{
	const char *k;
	size_t i;

	if (ks == NULL || kid == NULL)
		return NULL;
	for (i = 0; i < ks->n; i++) {
		k = ks->keys[i]->kid;
		if (k != NULL && strlen(k) == kid_len && memcmp(k, kid, kid_len) == 0)
			return ks->keys[i];
	}
	return NULL;
}

AGENTID_EXPORT int
agentid_keyset_to_json(const struct agentid_keyset *ks, json_t **out)
{
	json_t *obj = NULL, *arr = NULL, *jwk;
	size_t i;
	int r;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || ks == NULL)
		return AGENTID_EINVAL;
	r = AGENTID_ENOMEM;
	if ((obj = json_object()) == NULL || (arr = json_array()) == NULL)
		goto out;
	for (i = 0; i < ks->n; i++) {
		if ((r = agentid_key_to_jwk(ks->keys[i], &jwk)) != 0)
			goto out;
		if (json_array_append_new(arr, jwk) != 0) {
			r = AGENTID_ENOMEM;
			goto out;
		}
	}
	if (json_object_set(obj, "keys", arr) != 0) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	*out = obj;
	obj = NULL;
	r = 0;
out:
	json_decref(arr);
	json_decref(obj);
	return r;
}

AGENTID_EXPORT struct agentid_keyset *
agentid_keyset_ref(struct agentid_keyset *ks)
{
	if (ks != NULL)
		agentid_ref_get(&ks->ref);
	return ks;
}

AGENTID_EXPORT void
agentid_keyset_free(struct agentid_keyset *ks)
{
	size_t i;

	if (ks == NULL || !agentid_ref_put(&ks->ref))
		return;
	for (i = 0; i < ks->n; i++)
		agentid_key_free(ks->keys[i]);
	agentid_free(ks->keys);
	agentid_free(ks);
}
