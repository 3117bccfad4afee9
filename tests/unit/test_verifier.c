/*
 * Unit tests for the token verifier: every rejection with its exact reason
 * code, the fixed verification order, configuration checks, the static
 * vectors under tests/vectors/verify/ and concurrent use of one verifier.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "testutil.h"

#define NOW ((time_t)1700000000)
#define TD "example.org"
#define SUB "spiffe://example.org/workload/a"
#define AUD "spiffe://example.org/api"
#define ISSUER "https://exchange.example.org"
#define ORCH "spiffe://example.org/agent/orchestrator"
#define CHILD "spiffe://example.org/agent/child"

#define HDR(alg, kid, typ) "{\"alg\":\"" alg "\",\"kid\":\"" kid "\",\"typ\":\"" typ "\"}"

static struct agentid_key *k_es; /* ES256, example.org, kid "es-a" */
static struct agentid_key *k_rsa; /* RSA-3072, example.org, kid "rsa-a" */
static struct agentid_key *k_other; /* ES256, other.org, kid "other-x" */
static struct agentid_key *k_iss; /* ES256, unbound issuer key, kid "iss-ec" */
static struct agentid_key *k_ed; /* Ed25519, unbound issuer key, kid "iss-ed" */
static struct agentid_key *k_ed_svid; /* Ed25519, example.org, kid "ed-a" */
static struct agentid_trust *trust;

static const char *const auds[] = { AUD };
static const char *const issuers[] = { ISSUER };

/* ---- fixtures and helpers ---- */

static struct agentid_key *
gen_key(enum agentid_alg alg, const char *kid)
{
	struct agentid_key *k = NULL;

	if (agentid_key_generate(alg, &k) != 0 || agentid_key_set_kid(k, kid) != 0) {
		fprintf(stderr, "cannot generate key %s\n", kid);
		exit(2);
	}
	return k;
}

static void
add_bundle(const char *td, struct agentid_key *a, struct agentid_key *b)
{
	struct agentid_bundle *bundle = NULL;

	if (agentid_bundle_new(td, &bundle) != 0 || agentid_bundle_add_jwt_key(bundle, a) != 0
	    || (b != NULL && agentid_bundle_add_jwt_key(bundle, b) != 0)
	    || agentid_trust_add_bundle(trust, bundle) != 0) {
		fprintf(stderr, "cannot build the bundle of %s\n", td != NULL ? td : "(issuer)");
		exit(2);
	}
	agentid_bundle_free(bundle);
}

static void
fixtures(void)
{
	k_es = gen_key(AGENTID_ALG_ES256, "es-a");
	k_rsa = gen_key(AGENTID_ALG_RS256, "rsa-a");
	k_other = gen_key(AGENTID_ALG_ES256, "other-x");
	k_iss = gen_key(AGENTID_ALG_ES256, "iss-ec");
	k_ed = gen_key(AGENTID_ALG_EDDSA, "iss-ed");
	k_ed_svid = gen_key(AGENTID_ALG_EDDSA, "ed-a");
	if (agentid_trust_new(&trust) != 0)
		exit(2);
	add_bundle(TD, k_es, k_rsa);
	add_bundle("other.org", k_other, NULL);
	add_bundle(NULL, k_iss, k_ed);
}

static void
fixtures_free(void)
{
	agentid_trust_free(trust);
	agentid_key_free(k_es);
	agentid_key_free(k_rsa);
	agentid_key_free(k_other);
	agentid_key_free(k_iss);
	agentid_key_free(k_ed);
	agentid_key_free(k_ed_svid);
}

static json_t *
svid_claims(void)
{
	return json_pack("{s:s, s:s, s:I, s:I}", "sub", SUB, "aud", AUD, "iat",
	    (json_int_t)NOW - 10, "exp", (json_int_t)NOW + 300);
}

static json_t *
access_claims(void)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:{s:s, s:{s:s}}}", "iss",
	    ISSUER, "sub", "user:alice", "aud", AUD, "client_id", "client-1", "iat",
	    (json_int_t)NOW - 10, "exp", (json_int_t)NOW + 300, "jti", "jti-1", "scope",
	    "read write", "task", "task-42", "act", "sub", CHILD, "act", "sub", ORCH);
}

/* Signs claims (consumed) under a raw header; free() the result. */
static char *
mk(const char *header, json_t *claims, const struct agentid_key *key, enum agentid_alg alg)
{
	char *payload, *tok;

	CU_ASSERT_PTR_NOT_NULL_FATAL(claims);
	payload = json_dumps(claims, JSON_COMPACT);
	json_decref(claims);
	CU_ASSERT_PTR_NOT_NULL_FATAL(payload);
	tok = tu_make_jws(header, payload, key, alg);
	free(payload);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
	return tok;
}

/* Signs with agentid_jws_sign (header alg and kid from the key, plus typ); free() the result. */
static char *
mk_signed(const struct agentid_key *key, enum agentid_alg alg, const char *typ, json_t *claims)
{
	json_t *extra = typ != NULL ? json_pack("{s:s}", "typ", typ) : NULL;
	char *out = NULL, *copy;

	CU_ASSERT_PTR_NOT_NULL_FATAL(claims);
	CU_ASSERT_EQUAL_FATAL(agentid_jws_sign(key, alg, extra, claims, &out), 0);
	json_decref(extra);
	json_decref(claims);
	copy = strdup(out);
	agentid_free(out);
	return copy;
}

static void
cfg_svid(struct agentid_verifier_config *cfg)
{
	agentid_verifier_config_init(cfg);
	cfg->profile = AGENTID_PROFILE_JWT_SVID;
	cfg->trust = trust;
	cfg->audiences = auds;
	cfg->n_audiences = 1;
}

static void
cfg_access(struct agentid_verifier_config *cfg)
{
	agentid_verifier_config_init(cfg);
	cfg->profile = AGENTID_PROFILE_ACCESS;
	cfg->trust = trust;
	cfg->audiences = auds;
	cfg->n_audiences = 1;
	cfg->issuers = issuers;
	cfg->n_issuers = 1;
}

static struct agentid_verifier *
verifier(const struct agentid_verifier_config *cfg)
{
	struct agentid_verifier *v = NULL;
	struct agentid_error err;

	agentid_error_clear(&err);
	if (agentid_verifier_new(cfg, &v, &err) != 0)
		fprintf(stderr, "verifier_new: %s\n", err.detail);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	return v;
}

/* Verifies tok at now and checks the reason code ("ok" for acceptance). */
static void
expect_at(
    const struct agentid_verifier *v, const char *tok, time_t now, const char *reason, int line)
{
	struct agentid_token *t = NULL;
	struct agentid_error err;
	const char *got;
	int r;

	agentid_error_clear(&err);
	r = agentid_verify(v, tok, strlen(tok), now, &t, &err);
	got = r == 0 ? "ok" : agentid_reason_code(err.reason);
	if (strcmp(got, reason) != 0)
		fprintf(
		    stderr, "\nline %d: expected %s, got %s (%s)\n", line, reason, got, err.detail);
	CU_ASSERT_STRING_EQUAL(got, reason);
	if (r == 0) {
		CU_ASSERT_PTR_NOT_NULL(t);
		CU_ASSERT_EQUAL(err.reason, AGENTID_R_OK);
	} else {
		CU_ASSERT_PTR_NULL(t);
		CU_ASSERT_EQUAL(r, AGENTID_EREJECTED);
		CU_ASSERT(err.detail[0] != '\0');
	}
	agentid_token_free(t);
}

#define EXPECT(v, tok, reason) expect_at((v), (tok), NOW, (reason), __LINE__)

/* Builds, verifies and frees in one step. */
#define CHECK(v, tok_expr, reason)                                                                 \
	do {                                                                                       \
		char *tok_ = (tok_expr);                                                           \
		EXPECT((v), tok_, (reason));                                                       \
		free(tok_);                                                                        \
	} while (0)

static json_t *
with(json_t *claims, const char *name, json_t *value)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(claims);
	if (value == NULL)
		json_object_del(claims, name);
	else
		json_object_set_new(claims, name, value);
	return claims;
}

/* ---- valid tokens ---- */

static void
test_valid_svid(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	struct agentid_token *t = NULL;
	struct agentid_error err;
	char *tok;

	cfg_svid(&cfg);
	v = verifier(&cfg);
	CHECK(v, mk_signed(k_es, AGENTID_ALG_ES256, "JWT", svid_claims()), "ok");
	CHECK(v, mk_signed(k_rsa, AGENTID_ALG_RS256, NULL, svid_claims()), "ok");
	CHECK(v, mk_signed(k_rsa, AGENTID_ALG_PS256, "JOSE", svid_claims()), "ok");
	CHECK(v, mk(HDR("PS256", "rsa-a", "JWT"), svid_claims(), k_rsa, AGENTID_ALG_PS256), "ok");
	/* A JWT-SVID of another trusted domain, signed with that domain's key. */
	CHECK(v,
	    mk(HDR("ES256", "other-x", "JWT"),
	        with(svid_claims(), "sub", json_string("spiffe://other.org/w")), k_other,
	        AGENTID_ALG_ES256),
	    "ok");

	tok = mk(HDR("ES256", "es-a", "JWT"), svid_claims(), k_es, AGENTID_ALG_ES256);
	CU_ASSERT_EQUAL(agentid_verify(v, tok, strlen(tok), NOW, &t, &err), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(agentid_token_profile(t), AGENTID_PROFILE_JWT_SVID);
	CU_ASSERT_EQUAL(agentid_token_alg(t), AGENTID_ALG_ES256);
	CU_ASSERT_STRING_EQUAL(agentid_token_kid(t), "es-a");
	CU_ASSERT_STRING_EQUAL(agentid_token_sub(t), SUB);
	CU_ASSERT_STRING_EQUAL(agentid_token_agent(t), SUB);
	CU_ASSERT_STRING_EQUAL(agentid_token_trust_domain(t), TD);
	CU_ASSERT_PTR_NULL(agentid_token_iss(t));
	CU_ASSERT_PTR_NULL(agentid_token_jti(t));
	CU_ASSERT_PTR_NULL(agentid_token_task(t));
	CU_ASSERT_EQUAL(agentid_token_exp(t), (int64_t)NOW + 300);
	CU_ASSERT_EQUAL(agentid_token_iat(t), (int64_t)NOW - 10);
	CU_ASSERT_EQUAL(agentid_token_nbf(t), -1);
	CU_ASSERT_EQUAL(agentid_chain_len(agentid_token_chain(t)), 0);
	CU_ASSERT_EQUAL(agentid_scopes_count(agentid_token_scopes(t)), 0);
	CU_ASSERT_PTR_EQUAL(agentid_token_key(t), k_es);
	CU_ASSERT_STRING_EQUAL(
	    json_string_value(json_object_get(agentid_token_header(t), "typ")), "JWT");
	CU_ASSERT_STRING_EQUAL(agentid_token_claim_string(t, "aud"), AUD);
	agentid_token_free(t);
	/* The result pointer is optional. */
	CU_ASSERT_EQUAL(agentid_verify(v, tok, strlen(tok), NOW, NULL, &err), 0);
	free(tok);
	agentid_verifier_free(v);
}

static void
test_valid_access(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	struct agentid_token *t = NULL;
	struct agentid_error err;
	const struct agentid_chain *c;
	char *tok;

	cfg_access(&cfg);
	v = verifier(&cfg);
	CHECK(v, mk_signed(k_iss, AGENTID_ALG_ES256, "at+jwt", access_claims()), "ok");
	CHECK(v, mk_signed(k_ed, AGENTID_ALG_EDDSA, "application/at+jwt", access_claims()), "ok");
	CHECK(v,
	    mk(HDR("EdDSA", "iss-ed", "Application/AT+JWT"), access_claims(), k_ed,
	        AGENTID_ALG_EDDSA),
	    "ok");
	/* The RFC 9864 name of the same signature, with the same key (its JWK has no alg). */
	CHECK(v, mk(HDR("Ed25519", "iss-ed", "at+jwt"), access_claims(), k_ed, AGENTID_ALG_ED25519),
	    "ok");

	tok = mk(HDR("EdDSA", "iss-ed", "at+jwt"), access_claims(), k_ed, AGENTID_ALG_EDDSA);
	CU_ASSERT_EQUAL(agentid_verify(v, tok, strlen(tok), NOW, &t, &err), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(agentid_token_profile(t), AGENTID_PROFILE_ACCESS);
	CU_ASSERT_EQUAL(agentid_token_alg(t), AGENTID_ALG_EDDSA);
	CU_ASSERT_STRING_EQUAL(agentid_token_iss(t), ISSUER);
	CU_ASSERT_STRING_EQUAL(agentid_token_sub(t), "user:alice");
	CU_ASSERT_STRING_EQUAL(agentid_token_jti(t), "jti-1");
	CU_ASSERT_STRING_EQUAL(agentid_token_client_id(t), "client-1");
	CU_ASSERT_STRING_EQUAL(agentid_token_task(t), "task-42");
	CU_ASSERT_STRING_EQUAL(agentid_token_agent(t), CHILD);
	CU_ASSERT_STRING_EQUAL(agentid_token_trust_domain(t), TD);
	c = agentid_token_chain(t);
	CU_ASSERT_EQUAL_FATAL(agentid_chain_len(c), 2);
	CU_ASSERT_STRING_EQUAL(agentid_chain_get(c, 0), CHILD);
	CU_ASSERT_STRING_EQUAL(agentid_chain_get(c, 1), ORCH);
	CU_ASSERT_EQUAL(agentid_scopes_count(agentid_token_scopes(t)), 2);
	CU_ASSERT_EQUAL(agentid_scopes_has(agentid_token_scopes(t), "write", 5), 1);
	CU_ASSERT_PTR_EQUAL(agentid_token_key(t), k_ed);
	agentid_token_free(t);
	free(tok);

	/* Without act, the subject is the agent; a non-SPIFFE agent has no trust domain. */
	tok = mk(HDR("ES256", "iss-ec", "at+jwt"), with(access_claims(), "act", NULL), k_iss,
	    AGENTID_ALG_ES256);
	CU_ASSERT_EQUAL(agentid_verify(v, tok, strlen(tok), NOW, &t, &err), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_STRING_EQUAL(agentid_token_agent(t), "user:alice");
	CU_ASSERT_PTR_NULL(agentid_token_trust_domain(t));
	agentid_token_free(t);
	free(tok);
	agentid_verifier_free(v);

	/* A configured list is exact: "EdDSA" alone does not admit the name "Ed25519". */
	cfg.algs = AGENTID_ALG_BIT(AGENTID_ALG_EDDSA);
	v = verifier(&cfg);
	CHECK(v, mk(HDR("EdDSA", "iss-ed", "at+jwt"), access_claims(), k_ed, AGENTID_ALG_EDDSA),
	    "ok");
	CHECK(v, mk(HDR("Ed25519", "iss-ed", "at+jwt"), access_claims(), k_ed, AGENTID_ALG_ED25519),
	    "alg_not_allowed");
	agentid_verifier_free(v);
}

static void
test_profile_any(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;

	cfg_svid(&cfg);
	cfg.profile = AGENTID_PROFILE_ANY;
	v = verifier(&cfg);
	CHECK(v, mk(HDR("ES256", "es-a", "JWT"), svid_claims(), k_es, AGENTID_ALG_ES256), "ok");
	CHECK(v, mk(HDR("EdDSA", "iss-ed", "at+jwt"), access_claims(), k_ed, AGENTID_ALG_EDDSA),
	    "ok");
	/* typ at+jwt selects the access rules: client_id becomes required. */
	CHECK(v,
	    mk(HDR("ES256", "iss-ec", "at+jwt"), with(access_claims(), "client_id", NULL), k_iss,
	        AGENTID_ALG_ES256),
	    "missing_claim");
	/* Anything else selects the JWT-SVID rules: no EdDSA, a SPIFFE sub. */
	CHECK(v, mk(HDR("EdDSA", "ed-a", "JWT"), svid_claims(), k_ed_svid, AGENTID_ALG_EDDSA),
	    "alg_not_allowed");
	CHECK(v, mk(HDR("ES256", "es-a", "foo"), svid_claims(), k_es, AGENTID_ALG_ES256),
	    "typ_mismatch");
	agentid_verifier_free(v);
}

/* ---- JOSE attacks ---- */

static char *
svid_payload(void)
{
	json_t *c = svid_claims();
	char *p = json_dumps(c, JSON_COMPACT);

	json_decref(c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	return p;
}

/* "b64(header).b64(payload)"; free() it. */
static char *
signing_input(const char *header, const char *payload)
{
	char *h = tu_b64(header), *p = tu_b64(payload), *out;
	size_t n = strlen(h) + strlen(p) + 2;

	out = malloc(n);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	snprintf(out, n, "%s.%s", h, p);
	agentid_free(h);
	agentid_free(p);
	return out;
}

static void
test_alg_none_and_hmac(void)
{
	static const char hs_hdr[] = HDR("HS256", "es-a", "JWT");
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t mac_len = 0;
	char *payload = svid_payload(), *pem = NULL, *input;

	memset(mac, 0x5a, sizeof(mac));
	cfg_svid(&cfg);
	v = verifier(&cfg);
	/* The usual form has an empty signature part, which no JWS may have. */
	CHECK(v, tu_make_jws_rawsig("{\"alg\":\"none\",\"kid\":\"es-a\"}", payload, NULL, 0),
	    "malformed");
	/* With a signature part present, the algorithm check itself must stop it. */
	CHECK(v, tu_make_jws_rawsig("{\"alg\":\"none\",\"kid\":\"es-a\"}", payload, mac, 64),
	    "alg_not_allowed");
	CHECK(v, tu_make_jws_rawsig("{\"alg\":\"none\"}", payload, mac, 32), "alg_not_allowed");
	CHECK(v, tu_make_jws_rawsig("{\"alg\":\"None\",\"kid\":\"es-a\"}", payload, mac, 64),
	    "alg_not_allowed");
	/* Algorithm confusion: an HMAC keyed with the public key the verifier trusts. */
	CU_ASSERT_EQUAL_FATAL(agentid_key_to_pem(k_es, 1, &pem), 0);
	input = signing_input(hs_hdr, payload);
	CU_ASSERT_PTR_NOT_NULL_FATAL(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, pem, strlen(pem),
	    (unsigned char *)input, strlen(input), mac, sizeof(mac), &mac_len));
	CHECK(v, tu_make_jws_rawsig(hs_hdr, payload, mac, mac_len), "alg_not_allowed");
	CHECK(v, tu_make_jws_rawsig(HDR("ES999", "es-a", "JWT"), payload, mac, 64),
	    "alg_not_allowed");
	free(input);
	agentid_free(pem);
	free(payload);
	agentid_verifier_free(v);
}

static void
test_ecdsa_encodings(void)
{
	static const char es_hdr[] = HDR("ES256", "es-a", "JWT");
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	unsigned char zero[64], der[128];
	size_t der_len = sizeof(der);
	char *payload = svid_payload(), *input;
	EVP_MD_CTX *md;

	cfg_svid(&cfg);
	v = verifier(&cfg);
	/* CVE-2022-21449: r = s = 0 must never verify. */
	memset(zero, 0, sizeof(zero));
	CHECK(v, tu_make_jws_rawsig(es_hdr, payload, zero, sizeof(zero)), "bad_signature");
	/* A correct signature in DER (as OpenSSL makes it) is not the JWS encoding. */
	input = signing_input(es_hdr, payload);
	md = EVP_MD_CTX_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(md);
	CU_ASSERT_EQUAL_FATAL(
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, agentid_key_evp(k_es)), 1);
	CU_ASSERT_EQUAL_FATAL(
	    EVP_DigestSign(md, der, &der_len, (unsigned char *)input, strlen(input)), 1);
	EVP_MD_CTX_free(md);
	CHECK(v, tu_make_jws_rawsig(es_hdr, payload, der, der_len), "bad_signature");
	/* The right kid and alg, but signed by a different key. */
	CHECK(v, mk(es_hdr, svid_claims(), k_other, AGENTID_ALG_ES256), "bad_signature");
	free(input);
	free(payload);
	agentid_verifier_free(v);
}

static void
test_key_selection(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	static const unsigned algs_es = AGENTID_ALG_BIT(AGENTID_ALG_ES256);

	cfg_svid(&cfg);
	v = verifier(&cfg);
	/* The kid of an EC key on an RSA-signed token, and the other way round. */
	CHECK(v, mk(HDR("RS256", "es-a", "JWT"), svid_claims(), k_rsa, AGENTID_ALG_RS256),
	    "key_mismatch");
	CHECK(v, mk(HDR("ES256", "rsa-a", "JWT"), svid_claims(), k_es, AGENTID_ALG_ES256),
	    "key_mismatch");
	CHECK(v, mk(HDR("ES384", "es-a", "JWT"), svid_claims(), k_es, AGENTID_ALG_ES256),
	    "key_mismatch");
	/* A key of another trust domain's bundle never verifies this domain's SVIDs. */
	CHECK(v, mk(HDR("ES256", "other-x", "JWT"), svid_claims(), k_other, AGENTID_ALG_ES256),
	    "unknown_kid");
	/* Nor does an issuer key that belongs to no trust domain. */
	CHECK(v, mk(HDR("ES256", "iss-ec", "JWT"), svid_claims(), k_iss, AGENTID_ALG_ES256),
	    "unknown_kid");
	CHECK(v,
	    mk(HDR("ES256", "es-a", "JWT"),
	        with(svid_claims(), "sub", json_string("spiffe://third.org/w")), k_es,
	        AGENTID_ALG_ES256),
	    "untrusted_domain");
	CHECK(v,
	    mk(HDR("ES256", "es-a", "JWT"), with(svid_claims(), "sub", json_string("alice")), k_es,
	        AGENTID_ALG_ES256),
	    "bad_spiffe_id");
	CHECK(v, mk(HDR("ES256", "nope", "JWT"), svid_claims(), k_es, AGENTID_ALG_ES256),
	    "unknown_kid");
	CHECK(v, mk("{\"alg\":\"ES256\",\"typ\":\"JWT\"}", svid_claims(), k_es, AGENTID_ALG_ES256),
	    "unknown_kid");
	/* SPIFFE JWT-SVIDs never use EdDSA, whatever the bundle holds, nor Ed25519. */
	CHECK(v, mk(HDR("EdDSA", "ed-a", "JWT"), svid_claims(), k_ed_svid, AGENTID_ALG_EDDSA),
	    "alg_not_allowed");
	CHECK(v, mk(HDR("Ed25519", "ed-a", "JWT"), svid_claims(), k_ed_svid, AGENTID_ALG_ED25519),
	    "alg_not_allowed");
	agentid_verifier_free(v);

	/* A configured allowlist narrows the profile's algorithms. */
	cfg.algs = algs_es;
	v = verifier(&cfg);
	CHECK(v, mk(HDR("ES256", "es-a", "JWT"), svid_claims(), k_es, AGENTID_ALG_ES256), "ok");
	CHECK(v, mk(HDR("RS256", "rsa-a", "JWT"), svid_claims(), k_rsa, AGENTID_ALG_RS256),
	    "alg_not_allowed");
	agentid_verifier_free(v);
}

static void
test_forbidden_headers(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	json_t *jwk = NULL;
	char *jwk_text, hdr[1024];

	cfg_svid(&cfg);
	v = verifier(&cfg);
	CU_ASSERT_EQUAL_FATAL(agentid_key_to_jwk(k_es, &jwk), 0);
	jwk_text = json_dumps(jwk, JSON_COMPACT);
	json_decref(jwk);
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"es-a\",\"jwk\":%s}", jwk_text);
	free(jwk_text);
	CHECK(v, mk(hdr, svid_claims(), k_es, AGENTID_ALG_ES256), "header_not_allowed");
	CHECK(v,
	    mk("{\"alg\":\"ES256\",\"kid\":\"es-a\",\"jku\":\"https://evil.example/jwks\"}",
	        svid_claims(), k_es, AGENTID_ALG_ES256),
	    "header_not_allowed");
	CHECK(v,
	    mk("{\"alg\":\"ES256\",\"kid\":\"es-a\",\"x5u\":\"https://evil.example/c.pem\"}",
	        svid_claims(), k_es, AGENTID_ALG_ES256),
	    "header_not_allowed");
	CHECK(v,
	    mk("{\"alg\":\"ES256\",\"kid\":\"es-a\",\"x5c\":[\"MIIB\"]}", svid_claims(), k_es,
	        AGENTID_ALG_ES256),
	    "header_not_allowed");
	CHECK(v,
	    mk("{\"alg\":\"ES256\",\"kid\":\"es-a\",\"crit\":[\"foo\"],\"foo\":1}", svid_claims(),
	        k_es, AGENTID_ALG_ES256),
	    "crit_unsupported");
	agentid_verifier_free(v);
}

static void
test_typ(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;

	cfg_svid(&cfg);
	v = verifier(&cfg);
	CHECK(v, mk(HDR("ES256", "es-a", "at+jwt"), svid_claims(), k_es, AGENTID_ALG_ES256),
	    "typ_mismatch");
	CHECK(v, mk(HDR("ES256", "es-a", "jwt"), svid_claims(), k_es, AGENTID_ALG_ES256),
	    "typ_mismatch");
	CHECK(v, mk(HDR("ES256", "es-a", "dpop+jwt"), svid_claims(), k_es, AGENTID_ALG_ES256),
	    "typ_mismatch");
	CHECK(v, mk(HDR("ES256", "es-a", "JOSE"), svid_claims(), k_es, AGENTID_ALG_ES256), "ok");
	agentid_verifier_free(v);

	cfg_access(&cfg);
	v = verifier(&cfg);
	CHECK(v, mk(HDR("ES256", "iss-ec", "JWT"), access_claims(), k_iss, AGENTID_ALG_ES256),
	    "typ_mismatch");
	CHECK(v,
	    mk(HDR("ES256", "iss-ec", "application/jwt"), access_claims(), k_iss,
	        AGENTID_ALG_ES256),
	    "typ_mismatch");
	CHECK(v, mk(HDR("ES256", "iss-ec", "at+jwtx"), access_claims(), k_iss, AGENTID_ALG_ES256),
	    "typ_mismatch");
	CHECK(v,
	    mk("{\"alg\":\"ES256\",\"kid\":\"iss-ec\"}", access_claims(), k_iss, AGENTID_ALG_ES256),
	    "typ_mismatch");
	CHECK(v, mk(HDR("ES256", "iss-ec", "AT+JWT"), access_claims(), k_iss, AGENTID_ALG_ES256),
	    "ok");
	agentid_verifier_free(v);
}

/* ---- time claims ---- */

static json_t *
times(json_t *exp, json_t *nbf, json_t *iat)
{
	json_t *c = svid_claims();

	json_object_del(c, "iat");
	with(c, "exp", exp);
	if (nbf != NULL)
		with(c, "nbf", nbf);
	if (iat != NULL)
		with(c, "iat", iat);
	return c;
}

#define T(x) json_integer((json_int_t)(x))
#define SVID(c) mk(HDR("ES256", "es-a", "JWT"), (c), k_es, AGENTID_ALG_ES256)

static void
test_time(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_verifier *strict, *lenient;

	cfg_svid(&cfg);
	cfg.leeway = 0;
	strict = verifier(&cfg);
	cfg.leeway = 30;
	lenient = verifier(&cfg);

	/* RFC 7519 4.1.4: "on or after" exp is rejected. */
	CHECK(strict, SVID(times(T(NOW), NULL, NULL)), "expired");
	CHECK(strict, SVID(times(T(NOW + 1), NULL, NULL)), "ok");
	CHECK(strict, SVID(times(T(NOW - 1), NULL, NULL)), "expired");
	CHECK(lenient, SVID(times(T(NOW - 1), NULL, NULL)), "ok");
	CHECK(lenient, SVID(times(T(NOW - 29), NULL, NULL)), "ok");
	CHECK(lenient, SVID(times(T(NOW - 30), NULL, NULL)), "expired");
	/* Fractions round towards rejection. */
	CHECK(strict, SVID(times(json_real((double)NOW + 0.5), NULL, NULL)), "expired");
	CHECK(strict, SVID(times(json_real((double)NOW + 1.5), NULL, NULL)), "ok");

	CHECK(strict, SVID(times(T(NOW + 60), T(NOW), NULL)), "ok");
	CHECK(strict, SVID(times(T(NOW + 60), T(NOW + 1), NULL)), "not_yet_valid");
	CHECK(lenient, SVID(times(T(NOW + 60), T(NOW + 30), NULL)), "ok");
	CHECK(lenient, SVID(times(T(NOW + 60), T(NOW + 31), NULL)), "not_yet_valid");
	CHECK(
	    strict, SVID(times(T(NOW + 60), json_real((double)NOW + 0.5), NULL)), "not_yet_valid");

	CHECK(strict, SVID(times(T(NOW + 60), NULL, T(NOW))), "ok");
	CHECK(strict, SVID(times(T(NOW + 60), NULL, T(NOW + 1))), "iat_in_future");
	CHECK(lenient, SVID(times(T(NOW + 60), NULL, T(NOW + 30))), "ok");
	CHECK(lenient, SVID(times(T(NOW + 60), NULL, T(NOW + 31))), "iat_in_future");

	CHECK(lenient, SVID(times(json_string("1700000300"), NULL, NULL)), "bad_claim");
	CHECK(lenient, SVID(times(T(NOW + 60), json_string("0"), NULL)), "bad_claim");
	CHECK(lenient, SVID(times(T(NOW + 60), NULL, json_true())), "bad_claim");
	CHECK(lenient, SVID(times(json_null(), NULL, NULL)), "bad_claim");
	CHECK(lenient, SVID(times(json_integer((json_int_t)1 << 60), NULL, NULL)), "bad_claim");
	CHECK(lenient, SVID(times(NULL, NULL, NULL)), "missing_claim");
	/* Order: an expired token is reported as expired even when iat is also off. */
	CHECK(strict, SVID(times(T(NOW), T(NOW + 100), T(NOW + 100))), "expired");
	agentid_verifier_free(strict);
	agentid_verifier_free(lenient);
}

/* ---- iss, aud, required claims ---- */

static void
test_iss_aud(void)
{
	static const char *const two_auds[] = { "spiffe://example.org/x", AUD };
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;

	cfg_svid(&cfg);
	cfg.issuers = issuers;
	cfg.n_issuers = 1;
	v = verifier(&cfg);
	CHECK(v, SVID(with(svid_claims(), "iss", json_string(ISSUER))), "ok");
	CHECK(v, SVID(with(svid_claims(), "iss", json_string(ISSUER "/"))), "iss_mismatch");
	CHECK(v, SVID(with(svid_claims(), "iss", json_string("https://EXCHANGE.example.org"))),
	    "iss_mismatch");
	CHECK(v, SVID(with(svid_claims(), "iss", json_integer(1))), "bad_claim");
	CHECK(v, SVID(svid_claims()), "missing_claim");
	agentid_verifier_free(v);

	cfg_svid(&cfg);
	v = verifier(&cfg);
	/* Without configured issuers a JWT-SVID needs no iss, but a present one is type-checked. */
	CHECK(v, SVID(with(svid_claims(), "iss", json_string("anything"))), "ok");
	CHECK(v, SVID(with(svid_claims(), "iss", json_array())), "bad_claim");
	CHECK(v, SVID(with(svid_claims(), "aud", json_string("spiffe://example.org/x"))),
	    "aud_mismatch");
	CHECK(v, SVID(with(svid_claims(), "aud", json_string(AUD "/"))), "aud_mismatch");
	CHECK(v, SVID(with(svid_claims(), "aud", json_pack("[s,s]", "a", AUD))), "ok");
	CHECK(v, SVID(with(svid_claims(), "aud", json_pack("[s,s]", "a", "b"))), "aud_mismatch");
	CHECK(v, SVID(with(svid_claims(), "aud", json_array())), "aud_mismatch");
	CHECK(v, SVID(with(svid_claims(), "aud", json_pack("[s,i]", AUD, 1))), "bad_claim");
	CHECK(v, SVID(with(svid_claims(), "aud", json_integer(1))), "bad_claim");
	CHECK(v, SVID(with(svid_claims(), "aud", NULL)), "missing_claim");
	agentid_verifier_free(v);

	cfg_svid(&cfg);
	cfg.audiences = two_auds;
	cfg.n_audiences = 2;
	v = verifier(&cfg);
	CHECK(v, SVID(svid_claims()), "ok");
	CHECK(v, SVID(with(svid_claims(), "aud", json_string("spiffe://example.org/x"))), "ok");
	agentid_verifier_free(v);
}

#define ACCESS_TOK(c) mk(HDR("ES256", "iss-ec", "at+jwt"), (c), k_iss, AGENTID_ALG_ES256)

static void
test_access_required(void)
{
	static const char *const names[]
	    = { "iss", "sub", "aud", "exp", "client_id", "iat", "jti" };
	static const char *const extra[] = { "task" };
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	size_t i;

	cfg_access(&cfg);
	v = verifier(&cfg);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		CHECK(v, ACCESS_TOK(with(access_claims(), names[i], NULL)), "missing_claim");
	CHECK(v, ACCESS_TOK(with(access_claims(), "client_id", json_integer(5))), "bad_claim");
	CHECK(v, ACCESS_TOK(with(access_claims(), "jti", json_integer(5))), "bad_claim");
	CHECK(v, ACCESS_TOK(with(access_claims(), "sub", json_integer(5))), "bad_claim");
	CHECK(v, ACCESS_TOK(with(access_claims(), "iss", json_string("https://evil"))),
	    "iss_mismatch");
	/* An access token's subject may be a SPIFFE ID or an external user. */
	CHECK(v, ACCESS_TOK(with(access_claims(), "sub", json_string(SUB))), "ok");
	CHECK(v, ACCESS_TOK(access_claims()), "ok");
	agentid_verifier_free(v);

	/* Configured required claims apply on top of the profile's. */
	cfg.required_claims = extra;
	cfg.n_required_claims = 1;
	v = verifier(&cfg);
	CHECK(v, ACCESS_TOK(access_claims()), "ok");
	CHECK(v, ACCESS_TOK(with(access_claims(), "task", NULL)), "missing_claim");
	agentid_verifier_free(v);

	/* JWT-SVIDs need only sub, aud and exp. */
	cfg_svid(&cfg);
	v = verifier(&cfg);
	CHECK(v, SVID(with(svid_claims(), "iat", NULL)), "ok");
	CHECK(v, SVID(with(svid_claims(), "sub", NULL)), "missing_claim");
	CHECK(v, SVID(with(svid_claims(), "sub", json_integer(1))), "bad_claim");
	agentid_verifier_free(v);
}

/* ---- chains and policy ---- */

static json_t *
act3(const char *a, const char *b, const char *c)
{
	return json_pack("{s:s, s:{s:s, s:{s:s}}}", "sub", a, "act", "sub", b, "act", "sub", c);
}

static void
test_chain(void)
{
	static const char *const actors[] = { "spiffe://example.org/agent/*" };
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;

	cfg_access(&cfg);
	cfg.max_chain_depth = 2;
	v = verifier(&cfg);
	CHECK(v, ACCESS_TOK(access_claims()), "ok");
	CHECK(
	    v, ACCESS_TOK(with(access_claims(), "act", act3(CHILD, ORCH, SUB))), "chain_too_deep");
	agentid_verifier_free(v);

	cfg_access(&cfg);
	v = verifier(&cfg);
	CHECK(v, ACCESS_TOK(with(access_claims(), "act", act3(CHILD, ORCH, SUB))), "ok");
	CHECK(v, ACCESS_TOK(with(access_claims(), "act", act3(CHILD, ORCH, CHILD))), "chain_cycle");
	CHECK(v, ACCESS_TOK(with(access_claims(), "act", act3(CHILD, "user:bob", SUB))),
	    "bad_spiffe_id");
	CHECK(v, ACCESS_TOK(with(access_claims(), "act", json_string(CHILD))), "chain_invalid");
	CHECK(v, ACCESS_TOK(with(access_claims(), "act", json_pack("{s:i}", "sub", 1))),
	    "chain_invalid");
	/* Trust of every hop is only required when configured. */
	CHECK(v, ACCESS_TOK(with(access_claims(), "act", act3(CHILD, "spiffe://evil.org/x", SUB))),
	    "ok");
	agentid_verifier_free(v);

	cfg.chain_require_trusted = 1;
	v = verifier(&cfg);
	CHECK(v, ACCESS_TOK(with(access_claims(), "act", act3(CHILD, "spiffe://evil.org/x", SUB))),
	    "untrusted_domain");
	CHECK(v, ACCESS_TOK(with(access_claims(), "act", act3(CHILD, "spiffe://other.org/x", SUB))),
	    "ok");
	agentid_verifier_free(v);

	cfg_access(&cfg);
	cfg.chain_require_spiffe = 0;
	v = verifier(&cfg);
	CHECK(v, ACCESS_TOK(with(access_claims(), "act", act3(CHILD, "user:bob", SUB))), "ok");
	agentid_verifier_free(v);

	cfg_access(&cfg);
	cfg.allow_actors = actors;
	cfg.n_allow_actors = 1;
	v = verifier(&cfg);
	CHECK(v, ACCESS_TOK(access_claims()), "ok");
	/* Every hop must be an allowed actor, not only the current one. */
	CHECK(v, ACCESS_TOK(with(access_claims(), "act", act3(CHILD, ORCH, SUB))),
	    "agent_not_allowed");
	agentid_verifier_free(v);

	/* A JWT-SVID may carry act too; the same rules apply. */
	cfg_svid(&cfg);
	cfg.max_chain_depth = 0;
	v = verifier(&cfg);
	CHECK(v, SVID(svid_claims()), "ok");
	CHECK(
	    v, SVID(with(svid_claims(), "act", json_pack("{s:s}", "sub", ORCH))), "chain_too_deep");
	agentid_verifier_free(v);
}

static void
test_agents_subjects(void)
{
	static const char *const agents[] = { CHILD };
	static const char *const subjects[] = { "user:alice", "spiffe://example.org/workload/*" };
	static const char *const any[] = { "*" };
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;

	cfg_access(&cfg);
	cfg.allow_agents = agents;
	cfg.n_allow_agents = 1;
	v = verifier(&cfg);
	CHECK(v, ACCESS_TOK(access_claims()), "ok");
	CHECK(v,
	    ACCESS_TOK(with(access_claims(), "act",
	        json_pack("{s:s, s:{s:s}}", "sub", ORCH, "act", "sub", CHILD))),
	    "agent_not_allowed");
	/* Without act the subject is the agent: an external user is no allowed agent. */
	CHECK(v, ACCESS_TOK(with(access_claims(), "act", NULL)), "agent_not_allowed");
	CHECK(v, ACCESS_TOK(with(with(access_claims(), "act", NULL), "sub", json_string(CHILD))),
	    "ok");
	agentid_verifier_free(v);

	cfg_access(&cfg);
	cfg.allow_subjects = subjects;
	cfg.n_allow_subjects = 2;
	v = verifier(&cfg);
	CHECK(v, ACCESS_TOK(access_claims()), "ok");
	CHECK(v, ACCESS_TOK(with(access_claims(), "sub", json_string("user:bob"))),
	    "subject_not_allowed");
	CHECK(v, ACCESS_TOK(with(access_claims(), "sub", json_string("user:alice2"))),
	    "subject_not_allowed");
	CHECK(v, ACCESS_TOK(with(access_claims(), "sub", json_string(SUB))), "ok");
	CHECK(v, ACCESS_TOK(with(access_claims(), "sub", json_string("spiffe://example.org/w"))),
	    "subject_not_allowed");
	agentid_verifier_free(v);

	cfg.allow_subjects = any;
	cfg.n_allow_subjects = 1;
	v = verifier(&cfg);
	CHECK(v, ACCESS_TOK(with(access_claims(), "sub", json_string("user:bob"))), "ok");
	CHECK(v, ACCESS_TOK(with(access_claims(), "sub", json_string(SUB))), "ok");
	agentid_verifier_free(v);
}

static void
test_scopes(void)
{
	static const char *const all[] = { "read", "deploy" };
	static const char *const anyof[] = { "admin", "write" };
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	struct agentid_error err;
	char *tok;

	cfg_access(&cfg);
	cfg.required_scopes = all;
	cfg.n_required_scopes = 2;
	v = verifier(&cfg);
	CHECK(v, ACCESS_TOK(with(access_claims(), "scope", json_string("deploy read"))), "ok");
	tok = ACCESS_TOK(access_claims());
	CU_ASSERT_EQUAL(agentid_verify(v, tok, strlen(tok), NOW, NULL, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "insufficient_scope");
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "deploy"));
	free(tok);
	CHECK(v, ACCESS_TOK(with(access_claims(), "scope", NULL)), "insufficient_scope");
	CHECK(v, ACCESS_TOK(with(access_claims(), "scope", json_string("read  deploy"))),
	    "bad_claim");
	CHECK(v, ACCESS_TOK(with(access_claims(), "scope", json_pack("[s,s]", "read", "deploy"))),
	    "bad_claim");
	agentid_verifier_free(v);

	cfg.required_scopes = anyof;
	cfg.scope_any = 1;
	v = verifier(&cfg);
	CHECK(v, ACCESS_TOK(access_claims()), "ok");
	tok = ACCESS_TOK(with(access_claims(), "scope", json_string("read deploy")));
	CU_ASSERT_EQUAL(agentid_verify(v, tok, strlen(tok), NOW, NULL, &err), AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "insufficient_scope");
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "admin"));
	free(tok);
	agentid_verifier_free(v);
}

static void
test_claim_values(void)
{
	static const char *const names[] = { "task", "groups" };
	static const char *const values[] = { "task-42", "ops" };
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;

	cfg_access(&cfg);
	cfg.claim_names = names;
	cfg.claim_values = values;
	cfg.n_claim_values = 2;
	v = verifier(&cfg);
	CHECK(
	    v, ACCESS_TOK(with(access_claims(), "groups", json_pack("[s,s]", "dev", "ops"))), "ok");
	CHECK(v, ACCESS_TOK(with(access_claims(), "groups", json_string("ops"))), "ok");
	CHECK(v, ACCESS_TOK(with(access_claims(), "groups", json_pack("[s]", "dev"))),
	    "claim_mismatch");
	CHECK(v, ACCESS_TOK(access_claims()), "claim_mismatch");
	CHECK(v,
	    ACCESS_TOK(with(with(access_claims(), "groups", json_string("ops")), "task",
	        json_string("task-43"))),
	    "claim_mismatch");
	CHECK(v,
	    ACCESS_TOK(with(
	        with(access_claims(), "groups", json_string("ops")), "task", json_integer(42))),
	    "claim_mismatch");
	agentid_verifier_free(v);
}

/*
 * agentid_verify_ex hands out a token that authorization refused (and only
 * such a token), with its identity, so that a caller can record who was
 * refused; a token that is not authentic or not in force never comes back.
 */
static void
expect_refused(const struct agentid_verifier *v, json_t *claims, const char *reason,
    int want_refused, struct agentid_token **keep)
{
	struct agentid_token *out = NULL, *ref = NULL;
	struct agentid_error err;
	char *tok = ACCESS_TOK(claims);
	int r;

	agentid_error_clear(&err);
	r = agentid_verify_ex(v, NULL, tok, strlen(tok), NOW, &out, &ref, &err);
	CU_ASSERT_STRING_EQUAL(r == 0 ? "ok" : agentid_reason_code(err.reason), reason);
	if (r == 0) {
		CU_ASSERT_PTR_NOT_NULL(out);
		CU_ASSERT_PTR_NULL(ref);
	} else {
		CU_ASSERT_EQUAL(r, AGENTID_EREJECTED);
		CU_ASSERT_PTR_NULL(out);
		CU_ASSERT_EQUAL(ref != NULL, want_refused);
	}
	agentid_token_free(out);
	out = NULL;
	if (ref != NULL && keep != NULL && *keep == NULL) {
		*keep = ref;
		ref = NULL;
	}
	agentid_token_free(ref);
	ref = NULL;
	/* Without an error to fill, the same decision. */
	CU_ASSERT_EQUAL(agentid_verify_ex(v, NULL, tok, strlen(tok), NOW, &out, &ref, NULL), r);
	CU_ASSERT_EQUAL(ref != NULL, r != 0 && want_refused);
	agentid_token_free(out);
	agentid_token_free(ref);
	free(tok);
}

static void
test_refused(void)
{
	static const char *const agents[] = { ORCH };
	static const char *const subjects[] = { "user:bob" };
	static const char *const deploy[] = { "deploy" };
	static const char *const names[] = { "task" };
	static const char *const values[] = { "task-43" };
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	struct agentid_token *t = NULL;

	cfg_access(&cfg);
	cfg.allow_agents = agents;
	cfg.n_allow_agents = 1;
	v = verifier(&cfg);
	expect_refused(v, access_claims(), "agent_not_allowed", 1, &t);
	/* The refused token says who: the acting agent, the chain, the task, its scopes. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_STRING_EQUAL(agentid_token_agent(t), CHILD);
	CU_ASSERT_STRING_EQUAL(agentid_token_sub(t), "user:alice");
	CU_ASSERT_STRING_EQUAL(agentid_token_task(t), "task-42");
	CU_ASSERT_STRING_EQUAL(agentid_token_jti(t), "jti-1");
	CU_ASSERT_EQUAL(agentid_chain_len(agentid_token_chain(t)), 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(agentid_token_scopes(t));
	CU_ASSERT(agentid_scopes_has(agentid_token_scopes(t), "write", 5));
	agentid_token_free(t);
	t = NULL;
	/* Not authentic or not in force: nothing is handed out. */
	expect_refused(
	    v, with(access_claims(), "exp", json_integer(NOW - 100)), "expired", 0, NULL);
	expect_refused(v, with(access_claims(), "aud", json_string("spiffe://example.org/other")),
	    "aud_mismatch", 0, NULL);
	expect_refused(
	    v, with(access_claims(), "act", json_string(CHILD)), "chain_invalid", 0, NULL);
	agentid_verifier_free(v);

	cfg_access(&cfg);
	cfg.allow_subjects = subjects;
	cfg.n_allow_subjects = 1;
	v = verifier(&cfg);
	expect_refused(v, access_claims(), "subject_not_allowed", 1, NULL);
	agentid_verifier_free(v);

	cfg_access(&cfg);
	cfg.required_scopes = deploy;
	cfg.n_required_scopes = 1;
	v = verifier(&cfg);
	expect_refused(v, access_claims(), "insufficient_scope", 1, NULL);
	expect_refused(
	    v, with(access_claims(), "scope", json_string("read deploy")), "ok", 0, NULL);
	/* A malformed scope claim is a bad token, not a refusal. */
	expect_refused(
	    v, with(access_claims(), "scope", json_string("read  deploy")), "bad_claim", 0, NULL);
	agentid_verifier_free(v);

	cfg_access(&cfg);
	cfg.claim_names = names;
	cfg.claim_values = values;
	cfg.n_claim_values = 1;
	v = verifier(&cfg);
	expect_refused(v, access_claims(), "claim_mismatch", 1, NULL);
	agentid_verifier_free(v);

	/* A bad signature is never a refusal. */
	cfg_access(&cfg);
	cfg.allow_agents = agents;
	cfg.n_allow_agents = 1;
	v = verifier(&cfg);
	{
		struct agentid_token *out = NULL, *ref = NULL;
		struct agentid_error err;
		char *tok = ACCESS_TOK(access_claims());
		size_t n = strlen(tok);

		tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
		CU_ASSERT_EQUAL(
		    agentid_verify_ex(v, NULL, tok, n, NOW, &out, &ref, &err), AGENTID_EREJECTED);
		CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "bad_signature");
		CU_ASSERT_PTR_NULL(out);
		CU_ASSERT_PTR_NULL(ref);
		free(tok);
	}
	agentid_verifier_free(v);
}

/* ---- sizes ---- */

/* lifetime CLAIMS_JSON: the reason code agentid_claims_check_lifetime gives at NOW, leeway 30. */
static const char *
lifetime(const char *claims_json)
{
	static char code[64];
	struct agentid_error err;
	json_t *claims = json_loads(claims_json, 0, NULL);
	int r;

	CU_ASSERT_FATAL(claims != NULL);
	r = agentid_claims_check_lifetime(claims, NOW, 30, &err);
	json_decref(claims);
	snprintf(code, sizeof(code), "%s", r == 0 ? "ok" : agentid_reason_code(err.reason));
	return code;
}

static void
test_lifetime(void)
{
	/* The verifier's rules, with exp optional. */
	CU_ASSERT_STRING_EQUAL(lifetime("{}"), "ok");
	CU_ASSERT_STRING_EQUAL(lifetime("{\"exp\": 1700000100}"), "ok");
	CU_ASSERT_STRING_EQUAL(lifetime("{\"exp\": 1700000100.5}"), "ok");
	CU_ASSERT_STRING_EQUAL(lifetime("{\"exp\": 1699999971}"), "ok");
	CU_ASSERT_STRING_EQUAL(lifetime("{\"exp\": 1699999970}"), "expired");
	CU_ASSERT_STRING_EQUAL(lifetime("{\"exp\": \"1700000100\"}"), "bad_claim");
	CU_ASSERT_STRING_EQUAL(lifetime("{\"exp\": 1e300}"), "bad_claim");
	CU_ASSERT_STRING_EQUAL(lifetime("{\"nbf\": 1700000030}"), "ok");
	CU_ASSERT_STRING_EQUAL(lifetime("{\"nbf\": 1700000031}"), "not_yet_valid");
	CU_ASSERT_STRING_EQUAL(lifetime("{\"iat\": 1700000031}"), "iat_in_future");
	CU_ASSERT_STRING_EQUAL(lifetime("{\"exp\": 1600000000, \"nbf\": 1800000000}"), "expired");
}

static void
test_sizes(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	json_t *deep, *cur, *next;
	char *big;
	int i;

	cfg_svid(&cfg);
	v = verifier(&cfg);
	deep = json_array();
	cur = deep;
	for (i = 0; i < 40; i++) {
		next = json_array();
		json_array_append_new(cur, next);
		cur = next;
	}
	CHECK(v, SVID(with(svid_claims(), "deep", deep)), "too_deep");
	big = malloc(20000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 'a', 19999);
	big[19999] = '\0';
	CHECK(v, SVID(with(svid_claims(), "pad", json_string(big))), "too_large");
	agentid_verifier_free(v);

	/* Configured limits replace the defaults. */
	cfg.limits.max_token_len = 200;
	v = verifier(&cfg);
	CHECK(v, SVID(svid_claims()), "too_large");
	agentid_verifier_free(v);
	cfg_svid(&cfg);
	cfg.limits.max_json_depth = 1;
	v = verifier(&cfg);
	CHECK(v, SVID(with(svid_claims(), "o", json_pack("{s:i}", "a", 1))), "too_deep");
	agentid_verifier_free(v);
	free(big);
	/* Garbage is malformed, not a crash. */
	cfg_svid(&cfg);
	v = verifier(&cfg);
	EXPECT(v, "", "malformed");
	EXPECT(v, "a.b", "malformed");
	agentid_verifier_free(v);
}

/* ---- trust swap ---- */

static void
test_with_trust(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	struct agentid_trust *fresh = NULL;
	struct agentid_bundle *b = NULL;
	struct agentid_error err;
	char *tok;

	cfg_svid(&cfg);
	v = verifier(&cfg);
	CU_ASSERT_EQUAL_FATAL(agentid_trust_new(&fresh), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_new(TD, &b), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_add_jwt_key(b, k_rsa), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_trust_add_bundle(fresh, b), 0);
	agentid_bundle_free(b);
	tok = SVID(svid_claims());
	CU_ASSERT_EQUAL(agentid_verify(v, tok, strlen(tok), NOW, NULL, &err), 0);
	/* The rotated key set no longer holds es-a. */
	CU_ASSERT_EQUAL(agentid_verify_with_trust(v, fresh, tok, strlen(tok), NOW, NULL, &err),
	    AGENTID_EREJECTED);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), "unknown_kid");
	free(tok);
	tok = mk(HDR("RS256", "rsa-a", "JWT"), svid_claims(), k_rsa, AGENTID_ALG_RS256);
	CU_ASSERT_EQUAL(agentid_verify_with_trust(v, fresh, tok, strlen(tok), NOW, NULL, &err), 0);
	free(tok);
	/* The verifier holds its own reference to its trust. */
	agentid_trust_free(fresh);
	agentid_verifier_free(v);
}

/* ---- configuration ---- */

static void
expect_cfg_error(const struct agentid_verifier_config *cfg, const char *reason, int line)
{
	struct agentid_verifier *v = (struct agentid_verifier *)1;
	struct agentid_error err;
	int r;

	agentid_error_clear(&err);
	r = agentid_verifier_new(cfg, &v, &err);
	if (r != AGENTID_EINVAL)
		fprintf(stderr, "\nline %d: verifier_new returned %d\n", line, r);
	CU_ASSERT_EQUAL(r, AGENTID_EINVAL);
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT_STRING_EQUAL(agentid_reason_code(err.reason), reason);
	CU_ASSERT(err.detail[0] != '\0');
}

#define CFG_ERROR(cfg, reason) expect_cfg_error((cfg), (reason), __LINE__)

static void
test_config(void)
{
	static const char *const bad_pat[] = { "spiffe://example.org/a/" };
	static const char *const bad_scope[] = { "two words" };
	static const char *const empty[] = { "" };
	struct agentid_verifier_config cfg;
	enum agentid_profile p;

	agentid_verifier_config_init(&cfg);
	CU_ASSERT_EQUAL(cfg.profile, AGENTID_PROFILE_ANY);
	CU_ASSERT_EQUAL(cfg.leeway, AGENTID_DEFAULT_LEEWAY);
	CU_ASSERT_EQUAL(cfg.max_chain_depth, AGENTID_DEFAULT_MAX_CHAIN_DEPTH);
	CU_ASSERT_EQUAL(cfg.chain_require_spiffe, 1);
	CU_ASSERT_EQUAL(cfg.limits.max_token_len, AGENTID_DEFAULT_MAX_TOKEN_LEN);

	cfg_svid(&cfg);
	cfg.trust = NULL;
	CFG_ERROR(&cfg, "malformed");
	cfg_svid(&cfg);
	cfg.n_audiences = 0;
	CFG_ERROR(&cfg, "malformed");
	cfg_access(&cfg);
	cfg.n_issuers = 0;
	CFG_ERROR(&cfg, "malformed");
	cfg_svid(&cfg);
	cfg.algs = AGENTID_ALG_BIT(AGENTID_ALG_EDDSA);
	CFG_ERROR(&cfg, "malformed");
	cfg.algs = AGENTID_ALG_BIT(AGENTID_ALG_ED25519);
	CFG_ERROR(&cfg, "malformed");
	cfg.algs = AGENTID_ALGS_ALL;
	CFG_ERROR(&cfg, "malformed");
	cfg.algs = AGENTID_ALG_BIT(AGENTID_ALG_UNKNOWN);
	CFG_ERROR(&cfg, "malformed");
	cfg_svid(&cfg);
	cfg.leeway = -1;
	CFG_ERROR(&cfg, "malformed");
	cfg_svid(&cfg);
	cfg.max_chain_depth = -1;
	CFG_ERROR(&cfg, "malformed");
	cfg_svid(&cfg);
	cfg.limits.max_token_len = 0;
	CFG_ERROR(&cfg, "malformed");
	cfg_svid(&cfg);
	cfg.allow_agents = bad_pat;
	cfg.n_allow_agents = 1;
	CFG_ERROR(&cfg, "bad_spiffe_id");
	cfg_svid(&cfg);
	cfg.allow_actors = bad_pat;
	cfg.n_allow_actors = 1;
	CFG_ERROR(&cfg, "bad_spiffe_id");
	cfg_svid(&cfg);
	cfg.allow_subjects = bad_pat;
	cfg.n_allow_subjects = 1;
	CFG_ERROR(&cfg, "bad_spiffe_id");
	cfg_svid(&cfg);
	cfg.required_scopes = bad_scope;
	cfg.n_required_scopes = 1;
	CFG_ERROR(&cfg, "malformed");
	cfg_svid(&cfg);
	cfg.audiences = empty;
	CFG_ERROR(&cfg, "malformed");
	cfg_svid(&cfg);
	cfg.n_claim_values = 1;
	CFG_ERROR(&cfg, "malformed");
	CU_ASSERT_EQUAL(agentid_verifier_new(NULL, NULL, NULL), AGENTID_EINVAL);

	/* The EdDSA default of the access profile, and an explicit subset, are fine. */
	cfg_access(&cfg);
	cfg.algs = AGENTID_ALG_BIT(AGENTID_ALG_EDDSA);
	agentid_verifier_free(verifier(&cfg));
	cfg.algs = AGENTID_ALGS_ED25519;
	agentid_verifier_free(verifier(&cfg));

	CU_ASSERT_EQUAL(agentid_profile_from_name("jwt-svid", &p), 0);
	CU_ASSERT_EQUAL(p, AGENTID_PROFILE_JWT_SVID);
	CU_ASSERT_EQUAL(agentid_profile_from_name("access", &p), 0);
	CU_ASSERT_EQUAL(p, AGENTID_PROFILE_ACCESS);
	CU_ASSERT_EQUAL(agentid_profile_from_name("any", &p), 0);
	CU_ASSERT_EQUAL(p, AGENTID_PROFILE_ANY);
	CU_ASSERT_EQUAL(agentid_profile_from_name("JWT-SVID", &p), AGENTID_EINVAL);
	CU_ASSERT_STRING_EQUAL(agentid_profile_name(AGENTID_PROFILE_ACCESS), "access");
	CU_ASSERT_STRING_EQUAL(agentid_profile_name(AGENTID_PROFILE_JWT_SVID), "jwt-svid");
}

/* The configuration is copied: changing the caller's arrays afterwards has no effect. */
static void
test_config_copied(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	char aud[64];
	const char *list[1] = { aud };

	snprintf(aud, sizeof(aud), "%s", AUD);
	cfg_svid(&cfg);
	cfg.audiences = list;
	v = verifier(&cfg);
	snprintf(aud, sizeof(aud), "changed");
	CHECK(v, SVID(svid_claims()), "ok");
	agentid_verifier_free(v);
}

/* ---- static vectors ---- */

static void
test_vectors(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	struct agentid_trust *vt = NULL;
	struct agentid_bundle *b = NULL;
	struct agentid_key *k = NULL;
	struct agentid_error err;
	char line[256], name[128], reason[64], path[192], *tok;
	const char *got;
	FILE *f;
	int n = 0;

	CU_ASSERT_EQUAL_FATAL(
	    agentid_key_load_file(tu_vector("verify/es256-key.pem"), &k, &err), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_key_set_kid(k, "vec-es256"), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_trust_new(&vt), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_new(TD, &b), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_bundle_add_jwt_key(b, k), 0);
	CU_ASSERT_EQUAL_FATAL(agentid_trust_add_bundle(vt, b), 0);
	agentid_bundle_free(b);
	agentid_key_free(k);
	cfg_svid(&cfg);
	cfg.trust = vt;
	v = verifier(&cfg);
	f = fopen(tu_vector("verify/expected.txt"), "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (line[0] == '#' || sscanf(line, "%127s %63s", name, reason) != 2)
			continue;
		snprintf(path, sizeof(path), "verify/%s", name);
		tok = tu_read_vector(path, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
		agentid_error_clear(&err);
		got = agentid_verify(v, tok, strlen(tok), (time_t)1700000100, NULL, &err) == 0
		    ? "ok"
		    : agentid_reason_code(err.reason);
		if (strcmp(got, reason) != 0)
			fprintf(stderr, "\nvector %s: expected %s, got %s (%s)\n", name, reason,
			    got, err.detail);
		CU_ASSERT_STRING_EQUAL(got, reason);
		free(tok);
		n++;
	}
	fclose(f);
	CU_ASSERT(n >= 20);
	agentid_verifier_free(v);
	agentid_trust_free(vt);
}

/* ---- allocation failures ---- */

static long alloc_budget = -1;

static void *
failing_malloc(size_t n)
{
	if (alloc_budget == 0)
		return NULL;
	if (alloc_budget > 0)
		alloc_budget--;
	return malloc(n);
}

static void *
failing_realloc(void *p, size_t n)
{
	if (alloc_budget == 0)
		return NULL;
	if (alloc_budget > 0)
		alloc_budget--;
	return realloc(p, n);
}

/* Every allocation of a verification may fail: the result is an error, never a crash or leak. */
static void
test_alloc_failures(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	struct agentid_token *t;
	struct agentid_error err;
	char *tok;
	long n;
	int r, succeeded = 0;

	cfg_access(&cfg);
	v = verifier(&cfg);
	tok = ACCESS_TOK(access_claims());
	for (n = 0; n < 400 && !succeeded; n++) {
		t = NULL;
		agentid_set_allocator(failing_malloc, failing_realloc, free);
		alloc_budget = n;
		r = agentid_verify(v, tok, strlen(tok), NOW, &t, &err);
		alloc_budget = -1;
		agentid_set_allocator(NULL, NULL, NULL);
		if (r == 0) {
			CU_ASSERT_PTR_NOT_NULL(t);
			CU_ASSERT_STRING_EQUAL(agentid_token_agent(t), CHILD);
			succeeded = 1;
		} else {
			CU_ASSERT_PTR_NULL(t);
			CU_ASSERT(
			    r == AGENTID_ENOMEM || r == AGENTID_EREJECTED || r == AGENTID_ECRYPTO);
			if (r == AGENTID_ENOMEM)
				CU_ASSERT_EQUAL(err.reason, AGENTID_R_INTERNAL);
		}
		agentid_token_free(t);
	}
	CU_ASSERT_EQUAL(succeeded, 1);
	free(tok);
	agentid_verifier_free(v);
}

/* ---- concurrency ---- */

#define NTHREADS 4
#define NTOKENS 7
#define ROUNDS 60

struct thread_arg {
	const struct agentid_verifier *v;
	char **tokens;
	const char **expected;
	int offset;
	int mismatches;
};

static void *
thread_main(void *p)
{
	struct thread_arg *a = p;
	struct agentid_token *t;
	struct agentid_error err;
	const char *got;
	int i, j, r;

	for (i = 0; i < ROUNDS; i++) {
		/* Threads walk the list from different offsets: same and different tokens at once.
		 */
		j = (i + a->offset) % NTOKENS;
		t = NULL;
		r = agentid_verify(a->v, a->tokens[j], strlen(a->tokens[j]), NOW, &t, &err);
		got = r == 0 ? "ok" : agentid_reason_code(err.reason);
		if (strcmp(got, a->expected[j]) != 0
		    || (r == 0 && strcmp(agentid_token_agent(t), j == 5 ? CHILD : SUB) != 0))
			a->mismatches++;
		agentid_token_free(t);
	}
	return NULL;
}

static void
test_concurrent(void)
{
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v;
	struct thread_arg args[NTHREADS];
	pthread_t th[NTHREADS];
	char *tokens[NTOKENS];
	const char *expected[NTOKENS];
	struct agentid_error err;
	int i, r;

	cfg_svid(&cfg);
	cfg.profile = AGENTID_PROFILE_ANY;
	v = verifier(&cfg);
	tokens[0] = SVID(svid_claims());
	tokens[1] = mk(HDR("RS256", "rsa-a", "JWT"), svid_claims(), k_rsa, AGENTID_ALG_RS256);
	tokens[2] = SVID(times(T(NOW - 100), NULL, NULL));
	tokens[3] = mk(HDR("ES256", "es-a", "JWT"), svid_claims(), k_other, AGENTID_ALG_ES256);
	tokens[4] = SVID(with(svid_claims(), "aud", json_string("x")));
	tokens[5] = mk(HDR("EdDSA", "iss-ed", "at+jwt"), access_claims(), k_ed, AGENTID_ALG_EDDSA);
	tokens[6] = mk(HDR("PS256", "rsa-a", "JWT"), svid_claims(), k_rsa, AGENTID_ALG_PS256);
	/* The expected results come from a single-threaded run. */
	for (i = 0; i < NTOKENS; i++) {
		r = agentid_verify(v, tokens[i], strlen(tokens[i]), NOW, NULL, &err);
		expected[i] = r == 0 ? "ok" : agentid_reason_code(err.reason);
	}
	CU_ASSERT_STRING_EQUAL(expected[0], "ok");
	CU_ASSERT_STRING_EQUAL(expected[1], "ok");
	CU_ASSERT_STRING_EQUAL(expected[2], "expired");
	CU_ASSERT_STRING_EQUAL(expected[3], "bad_signature");
	CU_ASSERT_STRING_EQUAL(expected[4], "aud_mismatch");
	CU_ASSERT_STRING_EQUAL(expected[5], "ok");
	CU_ASSERT_STRING_EQUAL(expected[6], "ok");
	for (i = 0; i < NTHREADS; i++) {
		args[i].v = v;
		args[i].tokens = tokens;
		args[i].expected = expected;
		args[i].offset = i * 2;
		args[i].mismatches = 0;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(args[i].mismatches, 0);
	}
	for (i = 0; i < NTOKENS; i++)
		free(tokens[i]);
	agentid_verifier_free(v);
}

int
main(void)
{
	static const struct tu_test tests[] = {
		{ "valid_svid", test_valid_svid },
		{ "valid_access", test_valid_access },
		{ "profile_any", test_profile_any },
		{ "alg_none_and_hmac", test_alg_none_and_hmac },
		{ "ecdsa_encodings", test_ecdsa_encodings },
		{ "key_selection", test_key_selection },
		{ "forbidden_headers", test_forbidden_headers },
		{ "typ", test_typ },
		{ "time", test_time },
		{ "iss_aud", test_iss_aud },
		{ "access_required", test_access_required },
		{ "chain", test_chain },
		{ "agents_subjects", test_agents_subjects },
		{ "scopes", test_scopes },
		{ "claim_values", test_claim_values },
		{ "refused", test_refused },
		{ "lifetime", test_lifetime },
		{ "sizes", test_sizes },
		{ "with_trust", test_with_trust },
		{ "config", test_config },
		{ "config_copied", test_config_copied },
		{ "vectors", test_vectors },
		{ "alloc_failures", test_alloc_failures },
		{ "concurrent", test_concurrent },
		TU_END,
	};
	int r;

	fixtures();
	r = tu_run("verifier", tests);
	fixtures_free();
	return r;
}
