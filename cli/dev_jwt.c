/*
 * agentid dev jwt-svid and agentid dev sign: DEVELOPMENT-ONLY JWT minting
 * with the dev trust domain's JWT-SVID key or any key file.
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "cli.h"
#include "dev.h"

/* Adds the --claims-json members and the --claim K=V strings to claims. */
static int
add_extra_claims(const struct dev_opts *o, json_t *claims)
{
	struct agentid_error err;
	json_t *extra = NULL;
	const char *eq;
	size_t i;
	int r;

	agentid_error_clear(&err);
	if (o->claims_json != NULL) {
		r = agentid_json_parse(o->claims_json, strlen(o->claims_json),
		    AGENTID_DEFAULT_MAX_JSON_DEPTH, &extra, &err);
		if (r != 0 || !json_is_object(extra)) {
			cli_err("--claims-json must be a JSON object%s%s", r != 0 ? ": " : "",
			    r != 0 ? err.detail : "");
			json_decref(extra);
			return -1;
		}
		if (json_object_update(claims, extra) != 0) {
			json_decref(extra);
			cli_err("out of memory");
			return -1;
		}
		json_decref(extra);
	}
	for (i = 0; i < o->n_claims; i++) {
		if ((eq = strchr(o->claims[i], '=')) == NULL || eq == o->claims[i]) {
			cli_err("--claim wants NAME=VALUE, not '%s'", o->claims[i]);
			return -1;
		}
		if (json_object_setn_new(
		        claims, o->claims[i], (size_t)(eq - o->claims[i]), json_string(eq + 1))
		    != 0) {
			cli_err("--claim %s: the value must be UTF-8", o->claims[i]);
			return -1;
		}
	}
	return 0;
}

/* A fresh random jti (128 bits, base64url). */
static json_t *
random_jti(void)
{
	unsigned char b[16];
	char s[32];
	size_t n;

	if (RAND_bytes(b, sizeof(b)) != 1
	    || agentid_b64url_encode(b, sizeof(b), s, sizeof(s), &n) != 0)
		return NULL;
	return json_string(s);
}

/* Signs claims with key and prints the compact JWS; exit status. */
static int
sign_and_print(struct agentid_key *key, enum agentid_alg alg, const char *kid, const char *typ,
    const json_t *claims)
{
	char thumb[AGENTID_THUMBPRINT_LEN + 1], *tok = NULL;
	json_t *hdr = NULL;
	int r;

	if (kid == NULL) {
		if ((r = agentid_key_thumbprint(key, thumb, sizeof(thumb))) != 0) {
			cli_err("%s", agentid_strerror(r));
			return EXIT_USAGE;
		}
		kid = thumb;
	}
	if (!agentid_key_supports_alg(key, alg)) {
		cli_err("the key cannot sign %s", agentid_alg_name(alg));
		return EXIT_USAGE;
	}
	if ((r = agentid_key_set_kid(key, kid)) != 0
	    || (hdr = typ != NULL ? json_pack("{s:s}", "typ", typ) : json_object()) == NULL) {
		cli_err("%s", agentid_strerror(r != 0 ? r : AGENTID_ENOMEM));
		return EXIT_USAGE;
	}
	r = agentid_jws_sign(key, alg, hdr, claims, &tok);
	json_decref(hdr);
	if (r != 0) {
		cli_err("cannot sign: %s", agentid_strerror(r));
		return EXIT_USAGE;
	}
	printf("%s\n", tok);
	agentid_free(tok);
	return 0;
}

int
dev_jwt_svid(const struct dev_opts *o)
{
	struct agentid_key *key = NULL;
	struct agentid_error err;
	json_t *claims = NULL, *aud = NULL, *jti = NULL;
	char *td = NULL, *p_key = NULL;
	enum agentid_alg alg;
	time_t now = time(NULL);
	size_t i;
	int r, ret = EXIT_USAGE;

	agentid_error_clear(&err);
	if (o->dir == NULL || o->n_auds == 0) {
		cli_err("dev jwt-svid: --dir, --id and --audience are required");
		return EXIT_USAGE;
	}
	if ((td = dev_check_id(o->dir, o->id)) == NULL
	    || (p_key = dev_path_join(o->dir, "jwt.key")) == NULL)
		goto out;
	if ((r = agentid_key_load_file(p_key, &key, &err)) != 0) {
		dev_print_lib_error(p_key, r, &err);
		goto out;
	}
	alg = agentid_key_default_alg(key);
	if ((AGENTID_ALGS_JWT_SVID & AGENTID_ALG_BIT(alg)) == 0) {
		cli_err("%s: JWT-SVIDs cannot be signed with %s", p_key,
		    alg == AGENTID_ALG_UNKNOWN ? "this key" : agentid_alg_name(alg));
		goto out;
	}
	if (o->n_auds == 1) {
		aud = json_string(o->auds[0]);
	} else if ((aud = json_array()) != NULL) {
		for (i = 0; i < o->n_auds; i++)
			if (json_array_append_new(aud, json_string(o->auds[i])) != 0) {
				json_decref(aud);
				aud = NULL;
				break;
			}
	}
	if (aud == NULL || (jti = random_jti()) == NULL
	    || (claims = json_pack("{s:s, s:O, s:I, s:I, s:O}", "sub", o->id, "aud", aud, "exp",
	            (json_int_t)now + (json_int_t)(o->ttl > 0 ? o->ttl : DEV_JWT_TTL), "iat",
	            (json_int_t)now, "jti", jti))
	        == NULL) {
		cli_err("cannot build the claims (audiences must be UTF-8)");
		goto out;
	}
	if (add_extra_claims(o, claims) != 0)
		goto out;
	ret = sign_and_print(key, alg, NULL, "JWT", claims);
out:
	json_decref(claims);
	json_decref(aud);
	json_decref(jti);
	agentid_key_free(key);
	free(td);
	free(p_key);
	return ret;
}

int
dev_sign(const struct dev_opts *o)
{
	struct agentid_key *key = NULL;
	struct agentid_error err;
	json_t *claims = NULL, *v;
	enum agentid_alg alg;
	time_t now = time(NULL);
	int r, ret = EXIT_USAGE;

	agentid_error_clear(&err);
	if (o->key == NULL) {
		cli_err("dev sign: --key is required");
		return EXIT_USAGE;
	}
	if ((r = agentid_key_load_file(o->key, &key, &err)) != 0) {
		dev_print_lib_error(o->key, r, &err);
		goto out;
	}
	if (!agentid_key_is_private(key)) {
		cli_err("%s: not a private key", o->key);
		goto out;
	}
	if (o->alg != NULL) {
		if ((alg = agentid_alg_from_name(o->alg, strlen(o->alg))) == AGENTID_ALG_UNKNOWN) {
			cli_err("--alg: unknown or forbidden algorithm '%s'", o->alg);
			goto out;
		}
	} else if ((alg = agentid_key_default_alg(key)) == AGENTID_ALG_UNKNOWN) {
		cli_err("%s: no signature algorithm for this key", o->key);
		goto out;
	}
	if ((claims = json_object()) == NULL || add_extra_claims(o, claims) != 0)
		goto out;
	/* Defaults only where the caller said nothing: tests need to set anything, even exp. */
	if (json_object_get(claims, "iat") == NULL
	    && json_object_set_new(claims, "iat", json_integer((json_int_t)now)) != 0)
		goto out;
	if (json_object_get(claims, "exp") == NULL
	    && json_object_set_new(claims, "exp",
	           json_integer((json_int_t)now + (json_int_t)(o->ttl > 0 ? o->ttl : DEV_JWT_TTL)))
	        != 0)
		goto out;
	if (json_object_get(claims, "jti") == NULL
	    && ((v = random_jti()) == NULL || json_object_set_new(claims, "jti", v) != 0))
		goto out;
	ret = sign_and_print(key, alg, o->kid, o->typ, claims);
out:
	json_decref(claims);
	agentid_key_free(key);
	return ret;
}
