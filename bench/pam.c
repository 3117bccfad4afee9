/*
 * bench/pam: logins per second through pam_authenticate() with the real
 * pam_agentid.so and an ES256 access token (delegation chain of depth 2,
 * required scope, map file; the issuer JWKS bound to no trust domain), beside the raw ES256 signature check of the
 * same token (EVP_DigestVerify with a pre-parsed key) measured in the same
 * run on the same core.  Also the p50/p99 latency of one
 * pam_authenticate() (target: p99 under 1 ms) and whole logins
 * (pam_start, authenticate, account, pam_end: what sshd does per login).
 *
 * The module builds its verifier from the options on every call: the
 * bundle is read and parsed each time (it stays in the page cache), which
 * is part of what is measured.  libpam is pointed at a private service
 * directory with pam_start_confdir(), so /etc/pam.d is not touched.
 */
#include "config.h"

#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <security/pam_appl.h>

#include <agentid/agentid.h>

#include "bench.h"

#define TD "example.org"
#define AUD "spiffe://example.org/host/bench"
#define ISS "https://exchange.example.org"
#define AGENT "spiffe://example.org/agent/deploy"
#define SERVICE "agentid-bench"

#ifndef PAM_AGENTID_SO
#define PAM_AGENTID_SO "pam_agentid.so"
#endif

struct pam_arg {
	const char *token;
	const char *confdir;
	const char *user;
	pam_handle_t *ph; /* reused handle */
};

struct raw_arg {
	EVP_PKEY *pkey;
	EVP_MD_CTX *ctx;
	const unsigned char *tbs;
	size_t tbs_len;
	unsigned char *sig; /* DER */
	size_t sig_len;
};

static int
conv_fn(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	const struct pam_arg *a = data;
	struct pam_response *r;
	int i;

	if ((r = calloc((size_t)n, sizeof(*r))) == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF
		    && (r[i].resp = strdup(a->token)) == NULL)
			return PAM_BUF_ERR;
	*resp = r;
	return PAM_SUCCESS;
}

static int
op_auth(void *p)
{
	struct pam_arg *a = p;

	return pam_authenticate(a->ph, PAM_SILENT) == PAM_SUCCESS ? 0 : -1;
}

static int
op_login(void *p)
{
	struct pam_arg *a = p;
	struct pam_conv conv = { conv_fn, a };
	pam_handle_t *ph = NULL;
	int r;

#ifdef HAVE_PAM_START_CONFDIR
	r = pam_start_confdir(SERVICE, a->user, &conv, a->confdir, &ph);
#else
	r = PAM_SYSTEM_ERR;
#endif
	if (r != PAM_SUCCESS)
		return -1;
	r = pam_authenticate(ph, PAM_SILENT);
	if (r == PAM_SUCCESS)
		r = pam_acct_mgmt(ph, PAM_SILENT);
	pam_end(ph, r);
	return r == PAM_SUCCESS ? 0 : -1;
}

static int
op_raw(void *p)
{
	const struct raw_arg *a = p;
	int ok;

	ok = EVP_DigestVerifyInit(a->ctx, NULL, EVP_sha256(), NULL, a->pkey) == 1
	    && EVP_DigestVerify(a->ctx, a->sig, a->sig_len, a->tbs, a->tbs_len) == 1;
	EVP_MD_CTX_reset(a->ctx);
	return ok ? 0 : -1;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Latency percentiles (microseconds) of n single calls of op. */
static int
latency(int (*op)(void *), void *arg, size_t n, double *p50, double *p99)
{
	uint64_t *t, start;
	size_t i;

	if ((t = calloc(n, sizeof(*t))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		start = bench_now_ns();
		if (op(arg) != 0) {
			free(t);
			return -1;
		}
		t[i] = bench_now_ns() - start;
	}
	qsort(t, n, sizeof(*t), cmp_u64);
	*p50 = (double)t[n / 2] / 1e3;
	*p99 = (double)t[(n * 99) / 100] / 1e3;
	free(t);
	return 0;
}

static int
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int r = 0;

	if (f == NULL)
		return -1;
	if (fputs(text, f) < 0)
		r = -1;
	if (fclose(f) != 0 || chmod(path, 0644) != 0)
		r = -1;
	return r;
}

/* JWS R||S -> DER ECDSA-Sig-Value, which is what EVP_DigestVerify takes. */
static int
raw_to_der(const unsigned char *raw, size_t len, unsigned char **der, size_t *der_len)
{
	ECDSA_SIG *s = NULL;
	BIGNUM *r = NULL, *sv = NULL;
	unsigned char *p = NULL;
	int n, ret = -1;

	if ((s = ECDSA_SIG_new()) == NULL || (r = BN_bin2bn(raw, (int)(len / 2), NULL)) == NULL
	    || (sv = BN_bin2bn(raw + len / 2, (int)(len / 2), NULL)) == NULL
	    || ECDSA_SIG_set0(s, r, sv) != 1)
		goto out;
	r = sv = NULL;
	if ((n = i2d_ECDSA_SIG(s, &p)) <= 0)
		goto out;
	*der = p;
	*der_len = (size_t)n;
	ret = 0;
out:
	BN_free(r);
	BN_free(sv);
	ECDSA_SIG_free(s);
	return ret;
}

int
main(void)
{
	char dir[] = "/tmp/agentid-bench-pam-XXXXXX", path[PATH_MAX], text[8192],
	     kid[AGENTID_THUMBPRINT_LEN + 1], svcdir[256];
	struct agentid_key *key = NULL;
	struct agentid_bundle *b = NULL;
	struct agentid_jws *jws = NULL;
	struct agentid_error err;
	struct pam_arg pa;
	struct raw_arg ra;
	struct pam_conv conv;
	struct passwd *pw;
	json_t *hdr = NULL, *claims = NULL, *bj = NULL;
	char *token = NULL;
	double seconds = bench_seconds(2.0), auth_rate, raw_rate, login_rate, dummy, p50, p99, l50,
	       l99;
	int ret = 1;

	memset(&pa, 0, sizeof(pa));
	memset(&ra, 0, sizeof(ra));
#ifndef HAVE_PAM_START_CONFDIR
	fprintf(stderr, "bench/pam: libpam has no pam_start_confdir; skipped\n");
	return 0;
#endif
	if (access(PAM_AGENTID_SO, R_OK) != 0) {
		fprintf(stderr, "bench/pam: %s not built\n", PAM_AGENTID_SO);
		return 1;
	}
	if ((pw = getpwuid(getuid())) == NULL || mkdtemp(dir) == NULL)
		return 1;
	bench_pin_one_core();

	/* Key, bundle, token. */
	if (agentid_key_generate(AGENTID_ALG_ES256, &key) != 0
	    || agentid_key_thumbprint(key, kid, sizeof(kid)) != 0
	    || agentid_key_set_kid(key, kid) != 0 || agentid_bundle_new(NULL, &b) != 0
	    || agentid_bundle_add_jwt_key(b, key) != 0 || agentid_bundle_to_json(b, &bj) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/bundle.json", dir);
	if (json_dump_file(bj, path, JSON_COMPACT) != 0 || chmod(path, 0644) != 0)
		goto out;
	hdr = json_pack("{s:s}", "typ", "at+jwt");
	claims = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:{s:s,s:{s:s}}}", "iss", ISS,
	    "sub", "spiffe://example.org/user/alice", "aud", AUD, "client_id", AGENT, "scope",
	    "ssh:login sudo", "iat", (json_int_t)time(NULL), "exp", (json_int_t)time(NULL) + 3600,
	    "jti", "bench-jti", "task", "task-42", "act", "sub", AGENT, "act", "sub",
	    "spiffe://example.org/orchestrator");
	if (hdr == NULL || claims == NULL
	    || agentid_jws_sign(key, AGENTID_ALG_ES256, hdr, claims, &token) != 0)
		goto out;

	/* Map file and service. */
	snprintf(path, sizeof(path), "%s/pam.map", dir);
	snprintf(text, sizeof(text), "spiffe://example.org/agent/* %s\n", pw->pw_name);
	if (write_text(path, text) != 0)
		goto out;
	snprintf(svcdir, sizeof(svcdir), "%s/pam.d", dir);
	if (mkdir(svcdir, 0755) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/%s", svcdir, SERVICE);
	snprintf(text, sizeof(text),
	    "auth required %s bundle=%s/bundle.json issuer=" ISS " audience=" AUD
	    " scope=ssh:login map=%s/pam.map no_export\n"
	    "account required %s\n",
	    PAM_AGENTID_SO, dir, dir, PAM_AGENTID_SO);
	if (write_text(path, text) != 0)
		goto out;

	pa.token = token;
	pa.confdir = svcdir;
	pa.user = pw->pw_name;
	conv.conv = conv_fn;
	conv.appdata_ptr = &pa;
#ifdef HAVE_PAM_START_CONFDIR
	if (pam_start_confdir(SERVICE, pa.user, &conv, svcdir, &pa.ph) != PAM_SUCCESS)
		goto out;
#endif
	if (op_auth(&pa) != 0) {
		fprintf(stderr, "bench/pam: the benchmark login is refused (see syslog)\n");
		goto out;
	}

	/* The raw signature check of the same token. */
	if (agentid_jws_parse(token, strlen(token), NULL, &jws, &err) != 0)
		goto out;
	ra.pkey = agentid_key_evp(key);
	ra.tbs = (const unsigned char *)jws->signing_input;
	ra.tbs_len = jws->signing_input_len;
	if ((ra.ctx = EVP_MD_CTX_new()) == NULL
	    || raw_to_der(jws->sig, jws->sig_len, &ra.sig, &ra.sig_len) != 0 || op_raw(&ra) != 0)
		goto out;

	bench_header();
	if (bench_compare(op_auth, &pa, op_raw, &ra, seconds, &auth_rate, &raw_rate) != 0)
		goto out;
	bench_row("pam_authenticate ES256 (auth/s vs raw verify)", auth_rate, "ops/s", raw_rate,
	    auth_rate / raw_rate);
	if (latency(op_auth, &pa, 2000, &p50, &p99) != 0)
		goto out;
	bench_row("pam_authenticate p50 latency", p50, "us", NAN, NAN);
	bench_row("pam_authenticate p99 latency (target 1000)", p99, "us", 1000.0, p99 / 1000.0);
	if (bench_compare(op_login, &pa, op_raw, &ra, seconds / 2, &login_rate, &dummy) != 0)
		goto out;
	bench_row(
	    "pam login: start+auth+acct+end", login_rate, "ops/s", raw_rate, login_rate / raw_rate);
	if (latency(op_login, &pa, 500, &l50, &l99) != 0)
		goto out;
	bench_row("pam login p99 latency", l99, "us", NAN, NAN);
	ret = 0;
out:
	if (ret != 0)
		fprintf(stderr, "bench/pam: failed\n");
	if (pa.ph != NULL)
		pam_end(pa.ph, PAM_SUCCESS);
	EVP_MD_CTX_free(ra.ctx);
	OPENSSL_free(ra.sig);
	agentid_jws_free(jws);
	agentid_free(token);
	json_decref(hdr);
	json_decref(claims);
	json_decref(bj);
	agentid_bundle_free(b);
	agentid_key_free(key);
	snprintf(text, sizeof(text), "%s/pam.d/%s", dir, SERVICE);
	unlink(text);
	snprintf(text, sizeof(text), "%s/pam.d", dir);
	rmdir(text);
	snprintf(text, sizeof(text), "%s/pam.map", dir);
	unlink(text);
	snprintf(text, sizeof(text), "%s/bundle.json", dir);
	unlink(text);
	rmdir(dir);
	return ret;
}
