/*
 * Claim checks of the verifier: time claims, iss, aud, typ, required
 * claims, scopes and required claim values, each one step of the fixed
 * order in include/agentid/verify.h (driven from verifier.c).
 *
 * Rejection details name claims and configured values, never the content
 * of the token.
 */
#include "config.h"

#include <string.h>

#include <agentid/verify.h>

#include "internal.h"
#include "verify_int.h"

#define TIME_MAX ((int64_t)1 << 53) /* NumericDates beyond this are not plausible */

int
agentid_strv_find(const struct agentid_strv *s, const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->len[i] == len && memcmp(s->v[i], p, len) == 0)
			return 1;
	return 0;
}

/* Case-insensitive ASCII comparison of at most n bytes, independent of the locale. */
static int
ascii_ncasecmp(const char *a, const char *b, size_t n)
{
	unsigned char ca, cb;

	for (; n != 0; n--) {
		ca = (unsigned char)*a++;
		cb = (unsigned char)*b++;
		if (ca >= 'A' && ca <= 'Z')
			ca = (unsigned char)(ca - 'A' + 'a');
		if (cb >= 'A' && cb <= 'Z')
			cb = (unsigned char)(cb - 'A' + 'a');
		if (ca != cb)
			return 1;
		if (ca == '\0')
			break;
	}
	return 0;
}

/*
 * RFC 9068 section 4: typ "at+jwt" or "application/at+jwt".  RFC 7515
 * section 4.1.9 makes media type names case-insensitive.
 */
int
agentid_typ_is_access(const char *typ)
{
	if (typ == NULL)
		return 0;
	if (ascii_ncasecmp(typ, "application/", 12) == 0)
		typ += 12;
	return ascii_ncasecmp(typ, "at+jwt", 7) == 0;
}

/*
 * Looks up a claim that must be a string when present.  *s is NULL when
 * absent; a string with an embedded NUL counts as the wrong type.
 */
int
agentid_claim_string(
    const json_t *claims, const char *name, const char **s, size_t *len, struct agentid_error *err)
{
	const json_t *j;

	*s = NULL;
	if (len != NULL)
		*len = 0;
	if ((j = json_object_get(claims, name)) == NULL)
		return 0;
	if (!json_is_string(j) || memchr(json_string_value(j), '\0', json_string_length(j)) != NULL)
		return agentid_error_set(err, AGENTID_R_BAD_CLAIM, "%s is not a string", name);
	*s = json_string_value(j);
	if (len != NULL)
		*len = json_string_length(j);
	return 0;
}

/*
 * Reads a NumericDate (RFC 7519 section 2): an integer or a real number of
 * seconds.  Fractions round towards rejection: down for exp, up for nbf and
 * iat.
 */
static int
claim_time(const json_t *claims, const char *name, int round_up, int64_t *out, int *present,
    struct agentid_error *err)
{
	const json_t *j;
	json_int_t i;
	double d;
	int64_t t;

	*present = 0;
	*out = -1;
	if ((j = json_object_get(claims, name)) == NULL)
		return 0;
	if (json_is_integer(j)) {
		i = json_integer_value(j);
		if (i > TIME_MAX || i < -TIME_MAX)
			return agentid_error_set(
			    err, AGENTID_R_BAD_CLAIM, "%s is out of range", name);
		t = (int64_t)i;
	} else if (json_is_real(j)) {
		d = json_real_value(j);
		if (!(d <= (double)TIME_MAX && d >= -(double)TIME_MAX))
			return agentid_error_set(
			    err, AGENTID_R_BAD_CLAIM, "%s is out of range", name);
		t = (int64_t)d;
		if (round_up && (double)t < d)
			t++;
		else if (!round_up && (double)t > d)
			t--;
	} else
		return agentid_error_set(err, AGENTID_R_BAD_CLAIM, "%s is not a number", name);
	*out = t;
	*present = 1;
	return 0;
}

/*
 * exp, nbf and iat of claims against now with leeway, parsed into *exp,
 * *nbf and *iat; without exp the token is refused when require_exp is set
 * and otherwise only nbf and iat are judged.
 */
static int
check_lifetime(const json_t *claims, int64_t now, int64_t leeway, int require_exp, int64_t *exp,
    int64_t *nbf, int64_t *iat, struct agentid_error *err)
{
	int has_exp, has_nbf, has_iat, r;

	if ((r = claim_time(claims, "exp", 0, exp, &has_exp, err)) != 0
	    || (r = claim_time(claims, "nbf", 1, nbf, &has_nbf, err)) != 0
	    || (r = claim_time(claims, "iat", 1, iat, &has_iat, err)) != 0)
		return r;
	if (!has_exp && require_exp)
		return agentid_error_set(err, AGENTID_R_MISSING_CLAIM, "exp is missing");
	/* RFC 7519 section 4.1.4: not accepted on or after exp. */
	if (has_exp && now >= *exp + leeway)
		return agentid_error_set(
		    err, AGENTID_R_EXPIRED, "token expired %lld s ago", (long long)(now - *exp));
	if (has_nbf && *nbf > now + leeway)
		return agentid_error_set(err, AGENTID_R_NOT_YET_VALID,
		    "token is valid only in %lld s", (long long)(*nbf - now));
	if (has_iat && *iat > now + leeway)
		return agentid_error_set(err, AGENTID_R_IAT_IN_FUTURE,
		    "token was issued %lld s in the future", (long long)(*iat - now));
	return 0;
}

int
agentid_claims_check_time(struct agentid_vctx *c, struct agentid_error *err)
{
	return check_lifetime(c->claims, c->now, c->v->leeway, 1, &c->exp, &c->nbf, &c->iat, err);
}

AGENTID_EXPORT int
agentid_claims_check_lifetime(
    const json_t *claims, time_t now, long leeway, struct agentid_error *err)
{
	int64_t exp, nbf, iat;

	return check_lifetime(claims, (int64_t)now, leeway, 0, &exp, &nbf, &iat, err);
}

int
agentid_claims_check_iss(struct agentid_vctx *c, struct agentid_error *err)
{
	size_t len;
	int r;

	if ((r = agentid_claim_string(c->claims, "iss", &c->iss, &len, err)) != 0)
		return r;
	if (c->iss == NULL) {
		if (c->profile == AGENTID_PROFILE_ACCESS || c->v->issuers.n != 0)
			return agentid_error_set(err, AGENTID_R_MISSING_CLAIM, "iss is missing");
		return 0;
	}
	if (c->v->issuers.n != 0 && !agentid_strv_find(&c->v->issuers, c->iss, len))
		return agentid_error_set(
		    err, AGENTID_R_ISS_MISMATCH, "iss is not an accepted issuer");
	return 0;
}

int
agentid_claims_check_aud(struct agentid_vctx *c, struct agentid_error *err)
{
	const json_t *aud, *e;
	size_t i;
	int found = 0;

	if ((aud = json_object_get(c->claims, "aud")) == NULL)
		return agentid_error_set(err, AGENTID_R_MISSING_CLAIM, "aud is missing");
	if (json_is_string(aud)) {
		found = agentid_strv_find(
		    &c->v->audiences, json_string_value(aud), json_string_length(aud));
	} else if (json_is_array(aud)) {
		/* Every element is checked for type, so a malformed array never passes. */
		json_array_foreach(aud, i, e)
		{
			if (!json_is_string(e))
				return agentid_error_set(
				    err, AGENTID_R_BAD_CLAIM, "aud element %zu is not a string", i);
			if (!found)
				found = agentid_strv_find(
				    &c->v->audiences, json_string_value(e), json_string_length(e));
		}
	} else
		return agentid_error_set(
		    err, AGENTID_R_BAD_CLAIM, "aud is neither a string nor an array");
	if (!found)
		return agentid_error_set(
		    err, AGENTID_R_AUD_MISMATCH, "aud does not contain an accepted audience");
	return 0;
}

int
agentid_claims_check_typ(struct agentid_vctx *c, struct agentid_error *err)
{
	const char *typ = c->jws->typ;

	if (c->profile == AGENTID_PROFILE_ACCESS) {
		if (!agentid_typ_is_access(typ))
			return agentid_error_set(
			    err, AGENTID_R_TYP_MISMATCH, "access tokens must have typ at+jwt");
		return 0;
	}
	/* JWT-SVID.md section 2: typ, when present, is JWT or JOSE. */
	if (typ != NULL && strcmp(typ, "JWT") != 0 && strcmp(typ, "JOSE") != 0)
		return agentid_error_set(
		    err, AGENTID_R_TYP_MISMATCH, "JWT-SVIDs must have typ JWT or JOSE");
	return 0;
}

int
agentid_claims_check_required(struct agentid_vctx *c, struct agentid_error *err)
{
	const struct agentid_strv *req = &c->v->required_claims;
	size_t i;
	int r;

	if (c->sub == NULL
	    && (r = agentid_claim_string(c->claims, "sub", &c->sub, &c->sub_len, err)) != 0)
		return r;
	if ((r = agentid_claim_string(c->claims, "jti", &c->jti, NULL, err)) != 0
	    || (r = agentid_claim_string(c->claims, "client_id", &c->client_id, NULL, err)) != 0)
		return r;
	if (c->sub == NULL)
		return agentid_error_set(err, AGENTID_R_MISSING_CLAIM, "sub is missing");
	if (c->profile == AGENTID_PROFILE_ACCESS) {
		/* RFC 9068 section 2.2; iss, exp and aud were required above. */
		if (c->client_id == NULL)
			return agentid_error_set(
			    err, AGENTID_R_MISSING_CLAIM, "client_id is missing");
		if (json_object_get(c->claims, "iat") == NULL)
			return agentid_error_set(err, AGENTID_R_MISSING_CLAIM, "iat is missing");
		if (c->jti == NULL)
			return agentid_error_set(err, AGENTID_R_MISSING_CLAIM, "jti is missing");
	}
	for (i = 0; i < req->n; i++)
		if (json_object_get(c->claims, req->v[i]) == NULL)
			return agentid_error_set(
			    err, AGENTID_R_MISSING_CLAIM, "%s is missing", req->v[i]);
	return 0;
}

/* Appends s to the NUL-terminated string in buf, truncating at bufsz. */
static void
detail_append(char *buf, size_t bufsz, const char *s)
{
	size_t have = strlen(buf), n = strlen(s);

	if (have + 1 >= bufsz)
		return;
	if (n > bufsz - have - 1)
		n = bufsz - have - 1;
	memcpy(buf + have, s, n);
	buf[have + n] = '\0';
}

int
agentid_claims_parse_scopes(struct agentid_vctx *c, struct agentid_error *err)
{
	const char *s;
	size_t len;
	int r;

	if ((r = agentid_claim_string(c->claims, "scope", &s, &len, err)) != 0)
		return r;
	if (s != NULL)
		return agentid_scopes_parse(s, len, &c->scopes, err);
	return agentid_scopes_new(&c->scopes);
}

int
agentid_claims_check_scopes(struct agentid_vctx *c, struct agentid_error *err)
{
	const struct agentid_strv *req = &c->v->required_scopes;
	char names[AGENTID_ERROR_DETAIL_MAX - 32];
	size_t i;
	int r;

	if ((r = agentid_claims_parse_scopes(c, err)) != 0)
		return r;
	if (req->n == 0)
		return 0;
	if (!c->v->scope_any) {
		for (i = 0; i < req->n; i++)
			if (!agentid_scopes_has(c->scopes, req->v[i], req->len[i]))
				return agentid_error_set(err, AGENTID_R_INSUFFICIENT_SCOPE,
				    "missing scope %s", req->v[i]);
		return 0;
	}
	if (agentid_scopes_has_any(c->scopes, (const char *const *)req->v, req->n))
		return 0;
	names[0] = '\0';
	for (i = 0; i < req->n; i++) {
		if (i != 0)
			detail_append(names, sizeof(names), " ");
		detail_append(names, sizeof(names), req->v[i]);
	}
	return agentid_error_set(
	    err, AGENTID_R_INSUFFICIENT_SCOPE, "missing any of scopes %s", names);
}

int
agentid_claims_check_values(struct agentid_vctx *c, struct agentid_error *err)
{
	const struct agentid_strv *names = &c->v->claim_names, *vals = &c->v->claim_values;
	const json_t *j, *e;
	size_t i, k;
	int ok;

	for (i = 0; i < names->n; i++) {
		j = json_object_get(c->claims, names->v[i]);
		ok = 0;
		if (json_is_string(j))
			ok = json_string_length(j) == vals->len[i]
			    && memcmp(json_string_value(j), vals->v[i], vals->len[i]) == 0;
		else if (json_is_array(j)) {
			json_array_foreach(j, k, e)
			{
				if (json_is_string(e) && json_string_length(e) == vals->len[i]
				    && memcmp(json_string_value(e), vals->v[i], vals->len[i])
				        == 0) {
					ok = 1;
					break;
				}
			}
		}
		if (!ok)
			return agentid_error_set(err, AGENTID_R_CLAIM_MISMATCH,
			    "claim %s does not have the required value", names->v[i]);
	}
	return 0;
}
