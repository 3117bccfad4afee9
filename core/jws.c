/*
 * JWS compact serialization (RFC 7515 section 7.1): structural parse,
 * signature check and signing, and the algorithm names of RFC 7518,
 * RFC 8037 ("EdDSA") and RFC 9864 ("Ed25519").
 *
 * The parse is strict and ordered so that the cheapest checks run first:
 * the size limit, then the three-part shape, then strict base64url, then
 * strict JSON, then the header rules.  Nothing in the header is trusted
 * to choose how the token is verified except "alg", and only among the
 * asymmetric algorithms we implement.
 */
#include "config.h"

#include <string.h>

#include "jose_int.h"

static const char *const alg_names[AGENTID_ALG__COUNT] = {
	[AGENTID_ALG_UNKNOWN] = NULL,
	[AGENTID_ALG_ES256] = "ES256",
	[AGENTID_ALG_ES384] = "ES384",
	[AGENTID_ALG_ES512] = "ES512",
	[AGENTID_ALG_RS256] = "RS256",
	[AGENTID_ALG_RS384] = "RS384",
	[AGENTID_ALG_RS512] = "RS512",
	[AGENTID_ALG_PS256] = "PS256",
	[AGENTID_ALG_PS384] = "PS384",
	[AGENTID_ALG_PS512] = "PS512",
	[AGENTID_ALG_EDDSA] = "EdDSA",
	[AGENTID_ALG_ED25519] = "Ed25519",
};

AGENTID_EXPORT enum agentid_alg
agentid_alg_from_name(const char *name, size_t len)
{
	int i;

	if (name == NULL)
		return AGENTID_ALG_UNKNOWN;
	/* Exact, case-sensitive match (RFC 7515 section 4.1.1). */
	for (i = 1; i < AGENTID_ALG__COUNT; i++)
		if (strlen(alg_names[i]) == len && memcmp(alg_names[i], name, len) == 0)
			return (enum agentid_alg)i;
	return AGENTID_ALG_UNKNOWN;
}

AGENTID_EXPORT const char *
agentid_alg_name(enum agentid_alg alg)
{
	if ((unsigned)alg >= AGENTID_ALG__COUNT)
		return NULL;
	return alg_names[alg];
}

AGENTID_EXPORT int
agentid_algs_parse(const char *list, unsigned *mask)
{
	const char *p, *start;
	enum agentid_alg alg;
	unsigned m = 0;

	if (mask != NULL)
		*mask = 0;
	if (list == NULL || mask == NULL)
		return AGENTID_EINVAL;
	for (p = list; *p != '\0';) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		if ((alg = agentid_alg_from_name(start, (size_t)(p - start)))
		    == AGENTID_ALG_UNKNOWN)
			return AGENTID_EINVAL;
		m |= AGENTID_ALG_BIT(alg);
	}
	*mask = m;
	return 0;
}

/*
 * Decoded header and payload up to this size are parsed from a stack
 * buffer; a typical access token's payload is under 1 KiB.
 */
#define JWS_DECODE_STACK 2048

/* Decodes one base64url part and parses it as a JSON object. */
static int
jws_part_json(const char *part, size_t len, const char *what, int max_depth, unsigned char *tmp,
    size_t tmpsz, json_t **out, struct agentid_error *err)
{
	size_t n = 0;
	int r;

	*out = NULL;
	if (agentid_b64url_decode(part, len, tmp, tmpsz, &n) != 0)
		return agentid_error_set(err, AGENTID_R_BAD_ENCODING, "%s is not base64url", what);
	if ((r = agentid_json_parse((const char *)tmp, n, max_depth, out, err)) != 0) {
		if (r == AGENTID_EREJECTED && err != NULL) {
			char detail[AGENTID_ERROR_DETAIL_MAX];

			/* Say which part was bad without quoting any of it. */
			memcpy(detail, err->detail, sizeof(detail));
			agentid_error_set(err, err->reason, "%s: %s", what, detail);
		}
		return r;
	}
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return agentid_error_set(err, AGENTID_R_BAD_JSON, "%s is not a JSON object", what);
	}
	return 0;
}

/* The optional header member name must be a clean string when present. */
static int
jws_header_string(
    const json_t *header, const char *name, const char **out, struct agentid_error *err)
{
	const json_t *v = json_object_get(header, name);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v) || memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
		return agentid_error_set(
		    err, AGENTID_R_MALFORMED, "header \"%s\" is not a string", name);
	*out = json_string_value(v);
	return 0;
}

AGENTID_EXPORT int
agentid_jws_parse(const char *token, size_t len, const struct agentid_limits *lim,
    struct agentid_jws **out, struct agentid_error *err)
{
	struct agentid_limits deflim;
	struct agentid_jws *jws = NULL;
	const char *dot1, *dot2, *h, *p, *s;
	size_t hlen, plen, slen, tmpsz, siglen = 0;
	unsigned char stackbuf[JWS_DECODE_STACK], *tmp = stackbuf;
	const json_t *v;
	const char *alg;
	int r;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || (token == NULL && len != 0))
		return AGENTID_EINVAL;
	if (lim == NULL) {
		agentid_limits_init(&deflim);
		lim = &deflim;
	}
	/* The size limit comes first: nothing else looks at an oversized token. */
	if (lim->max_token_len != 0 && len > lim->max_token_len)
		return agentid_error_set(err, AGENTID_R_TOO_LARGE, "token of %zu bytes exceeds %zu",
		    len, lim->max_token_len);
	if (len == 0)
		return agentid_error_set(err, AGENTID_R_MALFORMED, "empty token");
	if ((dot1 = memchr(token, '.', len)) == NULL
	    || (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) == NULL
	    || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
		return agentid_error_set(
		    err, AGENTID_R_MALFORMED, "token does not have three parts");
	h = token;
	hlen = (size_t)(dot1 - token);
	p = dot1 + 1;
	plen = (size_t)(dot2 - p);
	s = dot2 + 1;
	slen = len - (size_t)(s - token);
	if (hlen == 0 || plen == 0 || slen == 0)
		return agentid_error_set(err, AGENTID_R_MALFORMED, "token has an empty part");

	/*
	 * One allocation holds the structure, a copy of the signing input
	 * (so the parsed JWS does not depend on the caller's buffer) and the
	 * decoded signature; agentid_jws_free releases it as one.
	 */
	if ((jws = agentid_malloc(
	         sizeof(*jws) + hlen + 1 + plen + 1 + agentid_b64url_decoded_max(slen)))
	    == NULL)
		return AGENTID_ENOMEM;
	memset(jws, 0, sizeof(*jws));
	jws->buf_ = (char *)(jws + 1);
	memcpy(jws->buf_, token, hlen + 1 + plen);
	jws->buf_[hlen + 1 + plen] = '\0';
	jws->signing_input = jws->buf_;
	jws->signing_input_len = hlen + 1 + plen;
	jws->sig = (unsigned char *)jws->buf_ + hlen + 1 + plen + 1;
	if (agentid_b64url_decode(s, slen, jws->sig, agentid_b64url_decoded_max(slen), &siglen)
	    != 0) {
		r = agentid_error_set(err, AGENTID_R_BAD_ENCODING, "signature is not base64url");
		goto out;
	}
	jws->sig_len = siglen;

	/* Header and payload are decoded in turn into one buffer the parser only reads. */
	tmpsz = agentid_b64url_decoded_max(hlen > plen ? hlen : plen);
	if (tmpsz > sizeof(stackbuf)) {
		if ((tmp = agentid_malloc(tmpsz)) == NULL) {
			r = AGENTID_ENOMEM;
			goto out;
		}
	} else
		tmpsz = sizeof(stackbuf);
	if ((r = jws_part_json(
	         h, hlen, "header", lim->max_json_depth, tmp, tmpsz, &jws->header, err))
	    != 0)
		goto out;
	if ((r = jws_part_json(
	         p, plen, "payload", lim->max_json_depth, tmp, tmpsz, &jws->payload, err))
	    != 0)
		goto out;

	/* Header rules, RFC 7515 section 4.1. */
	v = json_object_get(jws->header, "alg");
	if (v == NULL || !json_is_string(v)) {
		r = agentid_error_set(err, AGENTID_R_MALFORMED, "header \"alg\" is missing");
		goto out;
	}
	alg = json_string_value(v);
	jws->alg = agentid_alg_from_name(alg, json_string_length(v));
	if (jws->alg == AGENTID_ALG_UNKNOWN) {
		/* "none" and HMAC are refused here, whatever key a caller holds. */
		r = agentid_error_set(err, AGENTID_R_ALG_NOT_ALLOWED, "algorithm is not supported");
		goto out;
	}
	/*
	 * We implement no extension, so any "crit" -- even an empty or
	 * malformed one -- is a header we must not ignore (section 4.1.11).
	 */
	if (json_object_get(jws->header, "crit") != NULL) {
		r = agentid_error_set(err, AGENTID_R_CRIT_UNSUPPORTED,
		    "critical header extensions are not supported");
		goto out;
	}
	if ((r = jws_header_string(jws->header, "kid", &jws->kid, err)) != 0
	    || (r = jws_header_string(jws->header, "typ", &jws->typ, err)) != 0)
		goto out;
	*out = jws;
	jws = NULL;
	r = 0;
out:
	if (tmp != stackbuf)
		agentid_free(tmp);
	agentid_jws_free(jws);
	return r;
}

AGENTID_EXPORT int
agentid_jws_verify(
    const struct agentid_jws *jws, const struct agentid_key *key, struct agentid_error *err)
{
	if (jws == NULL || key == NULL)
		return AGENTID_EINVAL;
	if (!agentid_key_supports_alg(key, jws->alg))
		return agentid_error_set(err, AGENTID_R_KEY_MISMATCH, "key cannot verify %s",
		    agentid_alg_name(jws->alg) != NULL ? agentid_alg_name(jws->alg) : "?");
	return agentid_sig_verify(
	    key, jws->alg, jws->signing_input, jws->signing_input_len, jws->sig, jws->sig_len, err);
}

AGENTID_EXPORT void
agentid_jws_free(struct agentid_jws *jws)
{
	if (jws == NULL)
		return;
	json_decref(jws->header);
	json_decref(jws->payload);
	/* buf_ lives in the same allocation (agentid_jws_parse). */
	agentid_free(jws);
}

/* Appends the base64url encoding of the compact JSON of v to b. */
static int
append_b64_json(struct agentid_buf *b, const json_t *v)
{
	json_free_t jfree = NULL;
	char *json = NULL, *enc = NULL;
	int r;

	if ((json = json_dumps(v, JSON_COMPACT)) == NULL)
		return AGENTID_ENOMEM;
	r = agentid_b64url_encode_alloc((const unsigned char *)json, strlen(json), &enc);
	/* json_dumps allocates through jansson's hooks, so free it through them too. */
	json_get_alloc_funcs(NULL, &jfree);
	jfree(json);
	if (r != 0)
		return r;
	r = agentid_buf_append_str(b, enc);
	agentid_free(enc);
	return r;
}

AGENTID_EXPORT int
agentid_jws_sign(const struct agentid_key *key, enum agentid_alg alg, const json_t *header_extra,
    const json_t *payload, char **out)
{
	struct agentid_buf b;
	json_t *header = NULL;
	const char *name;
	unsigned char *sig = NULL;
	char *sigb64 = NULL;
	size_t sig_len = 0;
	const json_t *v;
	int r;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || key == NULL || payload == NULL || !json_is_object(payload)
	    || (header_extra != NULL && !json_is_object(header_extra)))
		return AGENTID_EINVAL;
	if ((name = agentid_alg_name(alg)) == NULL || !agentid_key_supports_alg(key, alg))
		return AGENTID_EINVAL;
	/* The caller's extra members may not change the algorithm under our feet. */
	if (header_extra != NULL && (v = json_object_get(header_extra, "alg")) != NULL
	    && (!json_is_string(v) || strcmp(json_string_value(v), name) != 0))
		return AGENTID_EINVAL;
	agentid_buf_init(&b, 0);
	r = AGENTID_ENOMEM;
	if ((header = json_object()) == NULL)
		goto out;
	if (json_object_set_new(header, "alg", json_string(name)) != 0)
		goto out;
	if (key->kid != NULL && json_object_set_new(header, "kid", json_string(key->kid)) != 0)
		goto out;
	if (header_extra != NULL && json_object_update(header, (json_t *)header_extra) != 0)
		goto out;
	if ((r = append_b64_json(&b, header)) != 0 || (r = agentid_buf_append(&b, ".", 1)) != 0
	    || (r = append_b64_json(&b, payload)) != 0)
		goto out;
	if ((r = agentid_sig_sign(key, alg, b.data, b.len, &sig, &sig_len)) != 0)
		goto out;
	if ((r = agentid_b64url_encode_alloc(sig, sig_len, &sigb64)) != 0)
		goto out;
	if ((r = agentid_buf_append(&b, ".", 1)) != 0
	    || (r = agentid_buf_append_str(&b, sigb64)) != 0)
		goto out;
	if ((*out = agentid_buf_steal(&b, NULL)) == NULL) {
		r = AGENTID_ENOMEM;
		goto out;
	}
	r = 0;
out:
	json_decref(header);
	agentid_free(sig);
	agentid_free(sigb64);
	agentid_buf_free(&b);
	return r;
}
