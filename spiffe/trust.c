/*
 * Trust: the bundles a verifier accepts, keyed by trust domain, plus
 * bundles bound to no trust domain (issuer JWKS).
 *
 * SPIFFE_Trust_Domain_and_Bundle.md section 3: a validator must choose the
 * bundle of the SVID's own trust domain.  So a JWT key is looked up in one
 * trust domain's bundle only, and adding a bundle replaces the previous
 * bundle of that trust domain instead of merging keys across them.
 */
#include "config.h"

#include <string.h>

#include <agentid/spiffe.h>

#include "internal.h"

struct agentid_trust {
	agentid_refcnt ref;
	struct agentid_bundle **v; /* in insertion order; a replaced bundle keeps its slot */
	size_t n;
	size_t cap;
};

AGENTID_EXPORT int
agentid_trust_new(struct agentid_trust **out)
{
	struct agentid_trust *t;

	if (out == NULL)
		return AGENTID_EINVAL;
	*out = NULL;
	if ((t = agentid_calloc(1, sizeof(*t))) == NULL)
		return AGENTID_ENOMEM;
	agentid_ref_init(&t->ref);
	*out = t;
	return 0;
}

static int
td_equal(const struct agentid_bundle *b, const char *td, size_t td_len)
{
	const char *btd = agentid_bundle_trust_domain(b);

	return btd != NULL && strlen(btd) == td_len && memcmp(btd, td, td_len) == 0;
}

AGENTID_EXPORT int
agentid_trust_add_bundle(struct agentid_trust *t, struct agentid_bundle *b)
{
	struct agentid_bundle **nv;
	const char *td;
	size_t i, ncap;

	if (t == NULL || b == NULL)
		return AGENTID_EINVAL;
	td = agentid_bundle_trust_domain(b);
	if (td != NULL) {
		for (i = 0; i < t->n; i++) {
			if (td_equal(t->v[i], td, strlen(td))) {
				agentid_bundle_ref(b);
				agentid_bundle_free(t->v[i]);
				t->v[i] = b;
				return 0;
			}
		}
	}
	if (t->n == t->cap) {
		ncap = t->cap == 0 ? 4 : t->cap * 2;
		if ((nv = agentid_realloc(t->v, ncap * sizeof(*nv))) == NULL)
			return AGENTID_ENOMEM;
		t->v = nv;
		t->cap = ncap;
	}
	t->v[t->n++] = agentid_bundle_ref(b);
	return 0;
}

AGENTID_EXPORT const struct agentid_bundle *
agentid_trust_find(const struct agentid_trust *t, const char *td, size_t td_len)
{
	size_t i;

	if (t == NULL || td == NULL)
		return NULL;
	for (i = 0; i < t->n; i++)
		if (td_equal(t->v[i], td, td_len))
			return t->v[i];
	return NULL;
}

AGENTID_EXPORT size_t
agentid_trust_count(const struct agentid_trust *t)
{
	return t != NULL ? t->n : 0;
}

AGENTID_EXPORT const struct agentid_bundle *
agentid_trust_get(const struct agentid_trust *t, size_t i)
{
	if (t == NULL || i >= t->n)
		return NULL;
	return t->v[i];
}

AGENTID_EXPORT const struct agentid_key *
agentid_trust_find_jwt_key(
    const struct agentid_trust *t, const char *td, size_t td_len, const char *kid, size_t kid_len)
{
	const struct agentid_bundle *b;
	const struct agentid_key *k;
	size_t i;

	if (t == NULL || kid == NULL)
		return NULL;
	if (td != NULL) {
		if ((b = agentid_trust_find(t, td, td_len)) == NULL)
			return NULL;
		return agentid_keyset_find(agentid_bundle_jwt_keys(b), kid, kid_len);
	}
	/*
	 * Without a trust domain only issuer keys (bundles bound to no trust
	 * domain) are searched: a trust domain's JWT-SVID authority must not be
	 * able to mint access tokens.
	 */
	for (i = 0; i < t->n; i++) {
		if (agentid_bundle_trust_domain(t->v[i]) != NULL)
			continue;
		if ((k = agentid_keyset_find(agentid_bundle_jwt_keys(t->v[i]), kid, kid_len))
		    != NULL)
			return k;
	}
	return NULL;
}

AGENTID_EXPORT struct agentid_trust *
agentid_trust_ref(struct agentid_trust *t)
{
	if (t != NULL)
		agentid_ref_get(&t->ref);
	return t;
}

AGENTID_EXPORT void
agentid_trust_free(struct agentid_trust *t)
{
	size_t i;

	if (t == NULL || !agentid_ref_put(&t->ref))
		return;
	for (i = 0; i < t->n; i++)
		agentid_bundle_free(t->v[i]);
	agentid_free(t->v);
	agentid_free(t);
}
