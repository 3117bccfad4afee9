/*
 * pam_agentid under pam_wrapper: the real pam_agentid.so is driven through
 * libpamtest (and plain libpam calls) with private service files, so
 * nothing in /etc/pam.d is touched and no root is needed.
 *
 * main() re-executes the program with LD_PRELOAD=libpam_wrapper.so and
 * PAM_WRAPPER_SERVICE_DIR pointing at a private directory.  Every test
 * writes the service it needs.  Refusal reasons are checked exactly: the
 * services use show_reason, which sends "agent token refused: <reason>"
 * through the conversation, where libpamtest captures it.
 *
 * Local accounts: the map file maps agents to "daemon" and "bin", which
 * exist on every Debian system; "agentid-no-such-user" must not exist.
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpamtest.h>
#include <security/pam_appl.h>

#include <agentid/audit.h>
#include <agentid/status.h>

#include "testutil.h"

#define TD "example.org"
#define AUD "host.example"
#define ISS "https://exchange.example"
#define AGENT "spiffe://example.org/agent/deploy"
#define AGENT2 "spiffe://example.org/agent/batch/7"
#define ORCH "spiffe://example.org/orchestrator"
#define USER1 "daemon" /* AGENT maps here */
#define USER2 "bin" /* anything else below /agent maps here */
#define NOUSER "agentid-no-such-user"

static char g_dir[1024]; /* bundles, map, conf, tokens */
static char g_svcdir[1024]; /* PAM_WRAPPER_SERVICE_DIR */
static char g_base[6000];
static char g_pwmod[1024]; /* pam_wrapper's test modules */
static struct agentid_key *g_key; /* in the example.org bundle and the issuer JWKS */
static struct agentid_key *g_stray; /* trusted by nobody */
static struct agentid_key *g_other; /* other.org's key */

/* ---- fixtures ---- */

static const char *
path_in(const char *name)
{
	static char buf[4][2048];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", g_dir, name);
	return buf[i];
}

static int
write_file_raw(const char *path, const char *data, mode_t mode)
{
	FILE *f;
	int r = 0;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	if (fputs(data, f) < 0)
		r = -1;
	if (fclose(f) != 0 || chmod(path, mode) != 0)
		r = -1;
	return r;
}

static void
write_file(const char *path, const char *data, mode_t mode)
{
	CU_ASSERT_FATAL(write_file_raw(path, data, mode) == 0);
}

/*
 * The services.  pam_wrapper copies PAM_WRAPPER_SERVICE_DIR once, when the
 * process starts, so every service is written before the re-exec (see
 * write_services()); tests name them through service() and service_raw(),
 * which check that the arguments a test states are those written.  In the
 * texts, "@/" stands for the private directory, "@SO" for pam_agentid.so
 * and "@BASE" for the options every service shares.
 */
struct svc_def {
	const char *name;
	const char *auth; /* added to @BASE on the auth line */
	const char *acct; /* account and session lines; NULL: no options */
};

static const struct svc_def svc_defs[] = { { "conv_svid", "", NULL },
	{ "conv_access", "issuer=" ISS " scope=ssh:login", NULL },
	{ "no_export", "no_export", "no_export" }, { "prompt_default", "", NULL },
	{ "prompt_custom", "[prompt=Your JWT-SVID: ]", NULL },
	{ "env_default", "source=env", NULL }, { "env_named", "source=env env=AGENT_JWT", NULL },
	{ "file_user", "source=file file=@/tokens/%u.jwt", NULL },
	{ "order_env_conv", "source=env,conv", NULL }, { "no_token", "", NULL },
	{ "user_unknown", "", NULL }, { "map", "", NULL }, { "map_by_agent", "map_by=agent", NULL },
	{ "map_by_subject", "map_by=subject", NULL },
	{ "map_and_claim", "map_claim=local_users", NULL }, { "time", "", NULL },
	{ "leeway", "leeway=150", "leeway=150" }, { "leeway0", "leeway=0", NULL },
	{ "sig", "", NULL }, { "algs", "algs=ES384", NULL }, { "aud", "", NULL },
	{ "aud2", "audience=elsewhere.example", NULL },
	{ "iss", "issuer=https://other.example", NULL }, { "iss_ok", "issuer=" ISS, NULL },
	{ "profile_access", "profile=access issuer=" ISS, NULL },
	{ "profile_svid", "profile=jwt-svid", NULL }, { "profile_any", "profile=any", NULL },
	{ "scope_one", "scope=ssh:login", NULL },
	{ "scope_all", "scope=ssh:login scope=read", NULL },
	{ "scope_missing", "scope=ssh:login scope=sudo", NULL },
	{ "scope_any", "scope=sudo scope=read scope_mode=any", NULL },
	{ "scope_any_flag", "scope=sudo scope=read scope_any", NULL },
	{ "scope_any_none", "scope=sudo scope=admin scope_mode=any", NULL },
	{ "allow_agent", "allow_agent=spiffe://example.org/agent/*", NULL },
	{ "deny_agent", "allow_agent=spiffe://example.org/other", NULL },
	{ "deny_subject", "allow_subject=spiffe://example.org/user/bob", NULL },
	{ "allow_subject", "allow_subject=spiffe://example.org/user/*", NULL },
	{ "depth2", "max_depth=2", NULL }, { "depth1", "max_depth=1", NULL },
	{ "actor", "allow_actor=spiffe://example.org/agent/*", NULL }, { "garbage", "", NULL },
	{ "max_len", "max_token_len=100", NULL }, { "bad_opt0", "frobnicate=1", NULL },
	{ "bad_opt1", "leeway=-1", NULL }, { "bad_opt2", "leeway=abc", NULL },
	{ "bad_opt3", "max_depth=99", NULL }, { "bad_opt4", "profile=jwt", NULL },
	{ "bad_opt5", "source=conv,smoke", NULL }, { "bad_opt6", "source=conv,conv", NULL },
	{ "bad_opt7", "map_by=user", NULL }, { "bad_opt8", "algs=HS256", NULL },
	{ "bad_opt9", "source=file", NULL }, { "bad_opt10", "scope_mode=some", NULL },
	{ "bad_opt11", "nonsense", NULL }, { "bad_opt12", "file=relative/path", NULL },
	{ "bad_opt13", "status=@/status.jwt status_timeout=0", NULL },
	{ "bad_opt14", "source=conv,", NULL },
	{ "missing_bundle", "bundle=/nonexistent/bundle.json", NULL },
	{ "bad_td", "bundle=EXAMPLE..org:/x", NULL }, { "map_bad1", "map=@/map.bad1", NULL },
	{ "map_bad2", "map=@/map.bad2", NULL }, { "map_ww", "map=@/map.ww", NULL },
	{ "map_baduser", "map=@/map.baduser", NULL }, { "acct_exp", "leeway=0", "leeway=0" },
	{ "acct_user", "", NULL }, { "setcred", "", NULL },
	{ "audit", "audit=@/audit.log", "audit=@/audit.log" },
	{ "status", "status=@/status.jwt", "bundle=" TD ":@/bundle.json status=@/status.jwt" },
	{ "status_required", "status=@/status.jwt status_required", NULL },
	{ "status_old_ok", "status=@/status.jwt status_max_age=86400", NULL },
	{ "status_open", "status=@/status.jwt status_fail_open", NULL },
	{ "status_missing", "status=@/nonexistent.jwt", NULL },
	{ "status_missing_open", "status=@/nonexistent.jwt status_fail_open", NULL },
	{ "status_stray", "status=@/status.jwt status_bundle=@/stray.jwks", NULL },
	{ "status_url", "status=https://status.example/other", NULL },
	{ "audit_bad", "audit=/nonexistent/dir/audit.log", NULL },
	{ "audit_open", "audit=/nonexistent/dir/audit.log audit_fail_open", NULL },
	{ NULL, NULL, NULL } };

/* Services written as they stand. */
static const struct svc_def raw_defs[] = {
	{ "other",
	    "auth required pam_deny.so\naccount required pam_deny.so\n"
	    "session required pam_deny.so\n",
	    NULL },
	{ "map_claim",
	    "auth required @SO bundle=" TD ":@/bundle.json audience=" AUD
	    " show_reason map_claim=local_users\n"
	    "account required @SO\nsession required @SO\n",
	    NULL },
	{ "no_aud", "auth required @SO bundle=@/bundle.json map=@/map\n", NULL },
	{ "no_bundle", "auth required @SO audience=" AUD " map=@/map\n", NULL },
	{ "no_map", "auth required @SO audience=" AUD " bundle=@/bundle.json\n", NULL },
	{ "conf",
	    "auth required @SO conf=@/agentid.conf\n"
	    "account required @SO conf=@/agentid.conf\n"
	    "session required @SO conf=@/agentid.conf\n",
	    NULL },
	/* pam_set_items (from pam_wrapper) sets PAM_AUTHTOK from the environment first. */
	{ "authtok", "auth required @PWMOD/pam_set_items.so\nauth required @SO @BASE\n", NULL },
	{ "no_authtok",
	    "auth required @PWMOD/pam_set_items.so\n"
	    "auth required @SO @BASE no_authtok\n",
	    NULL },
	{ "conf_args", "auth required @SO conf=@/agentid.conf scope=sudo\n", NULL },
	{ "conf_bad", "auth required @SO conf=@/bad.conf\n", NULL },
	{ "conf_nest", "auth required @SO conf=@/nest.conf\n", NULL },
	{ "acct_ignore", "account required @SO\naccount required pam_permit.so\n", NULL },
	{ NULL, NULL, NULL }
};

/* Expands @/, @SO and @BASE into out. */
static int
expand(const char *in, char *out, size_t outsz)
{
	size_t n = 0, add;
	const char *rep;

	for (; *in != '\0'; in += add) {
		rep = NULL;
		add = 1;
		if (strncmp(in, "@/", 2) == 0) {
			rep = g_dir;
			add = 1; /* keep the slash */
		} else if (strncmp(in, "@SO", 3) == 0) {
			rep = PAM_AGENTID_SO;
			add = 3;
		} else if (strncmp(in, "@PWMOD", 6) == 0) {
			rep = g_pwmod;
			add = 6;
		} else if (strncmp(in, "@BASE", 5) == 0) {
			rep = g_base;
			add = 5;
		}
		if (rep != NULL) {
			if (n + strlen(rep) >= outsz)
				return -1;
			memcpy(out + n, rep, strlen(rep));
			n += strlen(rep);
			continue;
		}
		if (n + 1 >= outsz)
			return -1;
		out[n++] = *in;
	}
	out[n] = '\0';
	return 0;
}

static int write_file_raw(const char *path, const char *data, mode_t mode);

static int
write_services(void)
{
	char path[2048], text[16384], exp[16384];
	const struct svc_def *d;

	for (d = svc_defs; d->name != NULL; d++) {
		snprintf(text, sizeof(text),
		    "auth required @SO @BASE %s\naccount required @SO %s\nsession required @SO "
		    "%s\n",
		    d->auth, d->acct != NULL ? d->acct : "", d->acct != NULL ? d->acct : "");
		snprintf(path, sizeof(path), "%s/%s", g_svcdir, d->name);
		if (expand(text, exp, sizeof(exp)) != 0 || write_file_raw(path, exp, 0644) != 0)
			return -1;
	}
	for (d = raw_defs; d->name != NULL; d++) {
		snprintf(path, sizeof(path), "%s/%s", g_svcdir, d->name);
		if (expand(d->auth, exp, sizeof(exp)) != 0 || write_file_raw(path, exp, 0644) != 0)
			return -1;
	}
	return 0;
}

/* The name of a service of svc_defs, after checking its options are those stated. */
static const char *
service(const char *name, const char *auth_args, const char *acct_args)
{
	const struct svc_def *d;

	for (d = svc_defs; d->name != NULL; d++) {
		if (strcmp(d->name, name) != 0)
			continue;
		CU_ASSERT_STRING_EQUAL(d->auth, auth_args);
		CU_ASSERT((d->acct == NULL && acct_args == NULL)
		    || (d->acct != NULL && acct_args != NULL && strcmp(d->acct, acct_args) == 0));
		return name;
	}
	CU_FAIL("service not in svc_defs");
	return name;
}

static const char *
service_raw(const char *name)
{
	const struct svc_def *d;

	for (d = raw_defs; d->name != NULL; d++)
		if (strcmp(d->name, name) == 0)
			return name;
	CU_FAIL("service not in raw_defs");
	return name;
}

static char *
mint_alg(const struct agentid_key *k, enum agentid_alg alg, const char *typ, json_t *claims)
{
	json_t *hdr = typ != NULL ? json_pack("{s:s}", "typ", typ) : NULL;
	char *out = NULL;

	CU_ASSERT_FATAL(claims != NULL);
	CU_ASSERT_FATAL(agentid_jws_sign(k, alg, hdr, claims, &out) == 0);
	json_decref(hdr);
	json_decref(claims);
	return out;
}

static char *
mint(const struct agentid_key *k, const char *typ, json_t *claims)
{
	return mint_alg(k, AGENTID_ALG_ES256, typ, claims);
}

static json_int_t
now_plus(long s)
{
	return (json_int_t)time(NULL) + s;
}

/* JWT-SVID claims for sub, valid for exp_off seconds. */
static json_t *
svid_claims(const char *sub, long exp_off)
{
	return json_pack("{s:s,s:[s],s:I,s:I}", "sub", sub, "aud", AUD, "exp", now_plus(exp_off),
	    "iat", now_plus(0));
}

/* Access-token claims: sub acts through agent (and orch before it when set). */
static json_t *
access_claims(const char *sub, const char *agent, const char *orch, const char *scope, long exp_off)
{
	json_t *c, *act;

	c = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "iss", ISS, "sub", sub, "aud", AUD,
	    "client_id", agent != NULL ? agent : sub, "scope", scope, "exp", now_plus(exp_off),
	    "iat", now_plus(0), "jti", "jti-0001", "task", "task-42");
	CU_ASSERT_FATAL(c != NULL);
	if (agent != NULL) {
		act = orch != NULL ? json_pack("{s:s,s:{s:s}}", "sub", agent, "act", "sub", orch)
		                   : json_pack("{s:s}", "sub", agent);
		CU_ASSERT_FATAL(json_object_set_new(c, "act", act) == 0);
	}
	return c;
}

static char *
svid_token(const char *sub, long exp_off)
{
	return mint(g_key, "JWT", svid_claims(sub, exp_off));
}

static char *
access_token(const char *agent, const char *scope)
{
	return mint(g_key, "at+jwt",
	    access_claims("spiffe://example.org/user/alice", agent, ORCH, scope, 300));
}

/* ---- running PAM ---- */

struct outcome {
	int auth, acct, sess;
	char err[PAM_MAX_MSG_SIZE];
	char env[2048]; /* "A=1\nB=2\n" */
};

/*
 * Authenticates user at service with answers typed at the prompts (NULL
 * answer: the conversation fails), then account and session when auth
 * succeeded.  Returns the auth result.
 */
static int
run_conv(const char *svc, const char *user, const char *answer, struct outcome *out)
{
	static char errbuf[8][PAM_MAX_MSG_SIZE], infobuf[8][PAM_MAX_MSG_SIZE];
	char *errs[9], *infos[9];
	const char *in[] = { answer, NULL };
	struct pamtest_conv_data conv;
	struct pam_testcase auth[] = { pam_test(PAMTEST_AUTHENTICATE, PAM_SUCCESS) };
	struct pam_testcase all[] = {
		pam_test(PAMTEST_AUTHENTICATE, PAM_SUCCESS),
		pam_test(PAMTEST_ACCOUNT, PAM_SUCCESS),
		pam_test(PAMTEST_OPEN_SESSION, PAM_SUCCESS),
		pam_test(PAMTEST_GETENVLIST, PAM_SUCCESS),
	};
	size_t i;

	memset(out, 0, sizeof(*out));
	memset(errbuf, 0, sizeof(errbuf));
	memset(infobuf, 0, sizeof(infobuf));
	for (i = 0; i < 8; i++) {
		errs[i] = errbuf[i];
		infos[i] = infobuf[i];
	}
	errs[8] = infos[8] = NULL;
	memset(&conv, 0, sizeof(conv));
	conv.in_echo_off = in;
	conv.out_err = errs;
	conv.out_info = infos;

	(void)run_pamtest(svc, user, &conv, auth, NULL);
	out->auth = auth[0].op_rv;
	snprintf(out->err, sizeof(out->err), "%s", errbuf[0]);
	if (out->auth != PAM_SUCCESS)
		return out->auth;

	/* Again, the whole sequence in one handle, for account, session and env. */
	for (i = 0; i < 8; i++)
		errbuf[i][0] = '\0';
	(void)run_pamtest(svc, user, &conv, all, NULL);
	out->auth = all[0].op_rv;
	out->acct = all[1].op_rv;
	out->sess = all[2].op_rv;
	if (all[3].case_out.envlist != NULL) {
		for (i = 0; all[3].case_out.envlist[i] != NULL; i++) {
			strncat(out->env, all[3].case_out.envlist[i],
			    sizeof(out->env) - strlen(out->env) - 2);
			strcat(out->env, "\n");
		}
		pamtest_free_env(all[3].case_out.envlist);
	}
	return out->auth;
}

/* Expects a refusal of token at svc with this PAM code and reason. */
static void
expect_refused(const char *svc, const char *user, const char *token, int code, const char *reason)
{
	struct outcome o;
	char want[256];

	run_conv(svc, user, token, &o);
	CU_ASSERT_EQUAL(o.auth, code);
	snprintf(want, sizeof(want), "agent token refused: %s", reason);
	CU_ASSERT_STRING_EQUAL(o.err, want);
	if (o.auth != code || strcmp(o.err, want) != 0)
		fprintf(stderr, "\n    %s: got %d \"%s\", want %d \"%s\"\n", svc, o.auth, o.err,
		    code, want);
}

static void
expect_ok(const char *svc, const char *user, const char *token)
{
	struct outcome o;

	run_conv(svc, user, token, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SUCCESS);
	CU_ASSERT_EQUAL(o.acct, PAM_SUCCESS);
	CU_ASSERT_EQUAL(o.sess, PAM_SUCCESS);
	if (o.auth != PAM_SUCCESS)
		fprintf(stderr, "\n    %s: refused %d \"%s\"\n", svc, o.auth, o.err);
}

/* A conversation for plain libpam calls: answers every prompt with appdata, records it. */
struct conv_state {
	const char *answer;
	char prompt[256];
	int prompts;
};

static int
simple_conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct conv_state *st = data;
	struct pam_response *r;
	int i;

	if ((r = calloc((size_t)n, sizeof(*r))) == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF
		    || msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
			st->prompts++;
			snprintf(st->prompt, sizeof(st->prompt), "%s", msg[i]->msg);
			r[i].resp = strdup(st->answer != NULL ? st->answer : "");
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

static pam_handle_t *
start(const char *svc, const char *user, struct conv_state *st, struct pam_conv *conv)
{
	pam_handle_t *ph = NULL;

	conv->conv = simple_conv;
	conv->appdata_ptr = st;
	CU_ASSERT_FATAL(pam_start(svc, user, conv, &ph) == PAM_SUCCESS);
	return ph;
}

static int
env_has(const char *env, const char *line)
{
	char want[1024];

	snprintf(want, sizeof(want), "%s\n", line);
	return strstr(env, want) != NULL;
}

/* ---- token sources ---- */

static void
test_conv_svid(void)
{
	char *tok = svid_token(AGENT, 300);
	struct outcome o;

	run_conv(service("conv_svid", "", NULL), USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SUCCESS);
	CU_ASSERT_EQUAL(o.acct, PAM_SUCCESS);
	CU_ASSERT_EQUAL(o.sess, PAM_SUCCESS);
	CU_ASSERT(env_has(o.env, "AGENTID_SUBJECT=" AGENT));
	CU_ASSERT(env_has(o.env, "AGENTID_AGENT=" AGENT));
	CU_ASSERT(env_has(o.env, "AGENTID_CHAIN=" AGENT));
	CU_ASSERT(strstr(o.env, "AGENTID_TASK=") == NULL);
	agentid_free(tok);
}

static void
test_conv_access_env(void)
{
	char *tok = access_token(AGENT, "ssh:login read");
	struct outcome o;

	run_conv(service("conv_access", "issuer=" ISS " scope=ssh:login", NULL), USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SUCCESS);
	CU_ASSERT_EQUAL(o.sess, PAM_SUCCESS);
	CU_ASSERT(env_has(o.env, "AGENTID_SUBJECT=spiffe://example.org/user/alice"));
	CU_ASSERT(env_has(o.env, "AGENTID_AGENT=" AGENT));
	CU_ASSERT(env_has(o.env, "AGENTID_CHAIN=" AGENT "," ORCH));
	CU_ASSERT(env_has(o.env, "AGENTID_TASK=task-42"));
	CU_ASSERT(env_has(o.env, "AGENTID_JTI=jti-0001"));
	agentid_free(tok);
}

static void
test_no_export(void)
{
	char *tok = svid_token(AGENT, 300);
	struct outcome o;

	run_conv(service("no_export", "no_export", "no_export"), USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SUCCESS);
	CU_ASSERT(strstr(o.env, "AGENTID_") == NULL);
	agentid_free(tok);
}

static void
test_prompt(void)
{
	struct conv_state st = { NULL, "", 0 };
	struct pam_conv conv;
	pam_handle_t *ph;
	char *tok = svid_token(AGENT, 300);

	st.answer = tok;
	ph = start(service("prompt_default", "", NULL), USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_SUCCESS);
	CU_ASSERT_STRING_EQUAL(st.prompt, "Agent token: ");
	pam_end(ph, PAM_SUCCESS);

	st.prompts = 0;
	ph = start(service("prompt_custom", "[prompt=Your JWT-SVID: ]", NULL), USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_SUCCESS);
	CU_ASSERT_STRING_EQUAL(st.prompt, "Your JWT-SVID: ");
	CU_ASSERT_EQUAL(st.prompts, 1);
	pam_end(ph, PAM_SUCCESS);
	agentid_free(tok);
}

static void
test_authtok(void)
{
	struct conv_state st = { "garbage-from-prompt", "", 0 };
	struct pam_conv conv;
	pam_handle_t *ph;
	char *tok = svid_token(AGENT, 300);

	/* An earlier module already set PAM_AUTHTOK to the token: no prompt. */
	CU_ASSERT_FATAL(setenv("PAM_AUTHTOK", tok, 1) == 0);
	ph = start(service_raw("authtok"), USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_SUCCESS);
	CU_ASSERT_EQUAL(st.prompts, 0);
	pam_end(ph, PAM_SUCCESS);

	/* no_authtok: PAM_AUTHTOK is ignored and the prompt answer is used. */
	st.prompts = 0;
	ph = start(service_raw("no_authtok"), USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_AUTH_ERR);
	CU_ASSERT_EQUAL(st.prompts, 1);
	pam_end(ph, PAM_SUCCESS);
	unsetenv("PAM_AUTHTOK");
	agentid_free(tok);
}

static void
test_env_source(void)
{
	struct conv_state st = { NULL, "", 0 };
	struct pam_conv conv;
	pam_handle_t *ph;
	char *tok = svid_token(AGENT, 300), *pe;
	size_t n;

	/* From the process environment (sudo, su). */
	CU_ASSERT_FATAL(setenv("AGENTID_TOKEN", tok, 1) == 0);
	ph = start(service("env_default", "source=env", NULL), USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_SUCCESS);
	CU_ASSERT_EQUAL(st.prompts, 0);
	pam_end(ph, PAM_SUCCESS);
	unsetenv("AGENTID_TOKEN");

	/* From the PAM environment, under a configured name. */
	n = strlen(tok) + 32;
	CU_ASSERT_FATAL((pe = malloc(n)) != NULL);
	snprintf(pe, n, "AGENT_JWT=%s", tok);
	ph = start(service("env_named", "source=env env=AGENT_JWT", NULL), USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_putenv(ph, pe), PAM_SUCCESS);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_SUCCESS);
	pam_end(ph, PAM_SUCCESS);

	/* Nothing there: no token, and no prompt either. */
	ph = start("env_named", USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_AUTHINFO_UNAVAIL);
	CU_ASSERT_EQUAL(st.prompts, 0);
	pam_end(ph, PAM_SUCCESS);
	free(pe);
	agentid_free(tok);
}

static void
test_file_source(void)
{
	struct conv_state st = { NULL, "", 0 };
	struct pam_conv conv;
	pam_handle_t *ph;
	char *tok = svid_token(AGENT, 300), text[16384];

	CU_ASSERT_FATAL(mkdir(path_in("tokens"), 0755) == 0 || errno == EEXIST);
	snprintf(text, sizeof(text), "%s\n", tok);
	write_file(path_in("tokens/" USER1 ".jwt"), text, 0600);
	ph = start(
	    service("file_user", "source=file file=@/tokens/%u.jwt", NULL), USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_SUCCESS);
	CU_ASSERT_EQUAL(st.prompts, 0);
	pam_end(ph, PAM_SUCCESS);

	/* USER2 has no file: no token. */
	ph = start("file_user", USER2, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_AUTHINFO_UNAVAIL);
	pam_end(ph, PAM_SUCCESS);

	/* A symlink is not followed. */
	CU_ASSERT(symlink(path_in("tokens/" USER1 ".jwt"), path_in("tokens/" USER2 ".jwt")) == 0);
	ph = start("file_user", USER2, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_AUTHINFO_UNAVAIL);
	pam_end(ph, PAM_SUCCESS);
	agentid_free(tok);
}

static void
test_source_order(void)
{
	struct conv_state st = { NULL, "", 0 };
	struct pam_conv conv;
	pam_handle_t *ph;
	char *tok = svid_token(AGENT, 300);

	/* env first; absent, so the prompt is used. */
	unsetenv("AGENTID_TOKEN");
	st.answer = tok;
	ph = start(service("order_env_conv", "source=env,conv", NULL), USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_SUCCESS);
	CU_ASSERT_EQUAL(st.prompts, 1);
	pam_end(ph, PAM_SUCCESS);

	/* env present: no prompt. */
	st.prompts = 0;
	st.answer = "not-a-token";
	CU_ASSERT_FATAL(setenv("AGENTID_TOKEN", tok, 1) == 0);
	ph = start("order_env_conv", USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_SUCCESS);
	CU_ASSERT_EQUAL(st.prompts, 0);
	pam_end(ph, PAM_SUCCESS);
	unsetenv("AGENTID_TOKEN");
	agentid_free(tok);
}

static void
test_no_token(void)
{
	struct outcome o;

	run_conv(service("no_token", "", NULL), USER1, "", &o);
	CU_ASSERT_EQUAL(o.auth, PAM_AUTHINFO_UNAVAIL);
	CU_ASSERT_STRING_EQUAL(o.err, "agent token refused: no_token");
	run_conv("no_token", USER1, "  \t ", &o);
	CU_ASSERT_EQUAL(o.auth, PAM_AUTHINFO_UNAVAIL);
	/* The conversation has no answer at all. */
	run_conv("no_token", USER1, NULL, &o);
	CU_ASSERT_NOT_EQUAL(o.auth, PAM_SUCCESS);
}

/* ---- users and mapping ---- */

static void
test_user_unknown(void)
{
	char *tok = svid_token(AGENT, 300);

	expect_refused(
	    service("user_unknown", "", NULL), NOUSER, tok, PAM_USER_UNKNOWN, "user_unknown");
	agentid_free(tok);
}

static void
test_map_file(void)
{
	char *t1 = svid_token(AGENT, 300), *t2 = svid_token(AGENT2, 300),
	     *t3 = svid_token("spiffe://example.org/robot", 300);
	const char *svc = service("map", "", NULL);

	expect_ok(svc, USER1, t1);
	/* First match wins: AGENT is mapped to USER1 before the wildcard line. */
	expect_refused(svc, USER2, t1, PAM_AUTH_ERR, "not_mapped");
	expect_ok(svc, USER2, t2);
	expect_refused(svc, USER1, t2, PAM_AUTH_ERR, "not_mapped");
	/* No line matches at all. */
	expect_refused(svc, USER1, t3, PAM_AUTH_ERR, "not_mapped");
	expect_refused(svc, "root", t1, PAM_AUTH_ERR, "not_mapped");
	agentid_free(t1);
	agentid_free(t2);
	agentid_free(t3);
}

static void
test_map_by(void)
{
	/* sub alice acting through AGENT2: by agent -> USER2; by subject -> the alice line. */
	char *tok = mint(g_key, "at+jwt",
	    access_claims("spiffe://example.org/user/alice", AGENT2, NULL, "ssh:login", 300));
	const char *by_agent = service("map_by_agent", "map_by=agent", NULL);
	const char *by_sub = service("map_by_subject", "map_by=subject", NULL);

	expect_ok(by_agent, USER2, tok);
	expect_refused(by_agent, "nobody", tok, PAM_AUTH_ERR, "not_mapped");
	expect_ok(by_sub, "nobody", tok);
	expect_refused(by_sub, USER2, tok, PAM_AUTH_ERR, "not_mapped");
	agentid_free(tok);
}

static void
test_map_claim(void)
{
	json_t *c = svid_claims("spiffe://example.org/robot", 300);
	char *tok, *tok2;

	CU_ASSERT_FATAL(json_object_set_new(c, "local_users", json_pack("[s,s]", USER2, "x")) == 0);
	tok = mint(g_key, "JWT", c);
	c = svid_claims("spiffe://example.org/robot", 300);
	CU_ASSERT_FATAL(json_object_set_new(c, "local_users", json_string(USER1)) == 0);
	tok2 = mint(g_key, "JWT", c);

	/* Claim only (no map file). */
	service_raw("map_claim");
	expect_ok("map_claim", USER2, tok);
	expect_refused("map_claim", USER1, tok, PAM_AUTH_ERR, "not_mapped");
	expect_ok("map_claim", USER1, tok2);
	/* With a map file too, the claim is the fallback when no line matches. */
	expect_ok(service("map_and_claim", "map_claim=local_users", NULL), USER2, tok);
	agentid_free(tok);
	agentid_free(tok2);
}

/* ---- verification options and every refusal ---- */

static void
test_time(void)
{
	char *expired = svid_token(AGENT, -100), *fresh = svid_token(AGENT, 300);
	json_t *c = svid_claims(AGENT, 600);
	char *future;

	CU_ASSERT_FATAL(json_object_set_new(c, "nbf", json_integer(now_plus(200))) == 0);
	future = mint(g_key, "JWT", c);
	expect_refused(service("time", "", NULL), USER1, expired, PAM_AUTH_ERR, "expired");
	expect_refused("time", USER1, future, PAM_AUTH_ERR, "not_yet_valid");
	/* leeway covers 100 s of clock skew. */
	expect_ok(service("leeway", "leeway=150", "leeway=150"), USER1, expired);
	expect_refused(
	    service("leeway0", "leeway=0", NULL), USER1, expired, PAM_AUTH_ERR, "expired");
	expect_ok("leeway0", USER1, fresh);
	agentid_free(expired);
	agentid_free(future);
	agentid_free(fresh);
}

static void
test_signature_and_keys(void)
{
	char *stray = mint(g_stray, "JWT", svid_claims(AGENT, 300));
	char *other = mint(g_other, "JWT", svid_claims("spiffe://other.org/agent/x", 300));
	char *third = mint(g_other, "JWT", svid_claims("spiffe://third.org/agent/x", 300));
	char *tok = svid_token(AGENT, 300), *tampered, *dot;

	/* Same kid as g_key, another key's signature. */
	CU_ASSERT_FATAL((tampered = strdup(tok)) != NULL);
	dot = strrchr(tampered, '.');
	CU_ASSERT_FATAL(dot != NULL && dot[1] != '\0');
	dot[1] = dot[1] == 'A' ? 'B' : 'A';

	service("sig", "", NULL);
	expect_refused("sig", USER1, stray, PAM_AUTH_ERR, "unknown_kid");
	/* other.org is trusted (its own bundle) but maps to nobody; third.org is not trusted. */
	expect_refused("sig", USER1, other, PAM_AUTH_ERR, "not_mapped");
	expect_refused("sig", USER1, third, PAM_AUTH_ERR, "untrusted_domain");
	expect_refused("sig", USER1, tampered, PAM_AUTH_ERR, "bad_signature");
	expect_refused(
	    service("algs", "algs=ES384", NULL), USER1, tok, PAM_AUTH_ERR, "alg_not_allowed");
	free(tampered);
	agentid_free(stray);
	agentid_free(other);
	agentid_free(third);
	agentid_free(tok);
}

static void
test_claims_options(void)
{
	char *svid = svid_token(AGENT, 300), *at = access_token(AGENT, "ssh:login read");
	json_t *c = svid_claims(AGENT, 300);
	char *wrong_aud, *svid_iss;

	CU_ASSERT_FATAL(json_object_set_new(c, "aud", json_string("elsewhere.example")) == 0);
	wrong_aud = mint(g_key, "JWT", c);
	expect_refused(service("aud", "", NULL), USER1, wrong_aud, PAM_AUTH_ERR, "aud_mismatch");
	/* Several audiences: any one of them. */
	expect_ok(service("aud2", "audience=elsewhere.example", NULL), USER1, wrong_aud);

	expect_refused(service("iss", "issuer=https://other.example", NULL), USER1, at,
	    PAM_AUTH_ERR, "iss_mismatch");
	expect_ok(service("iss_ok", "issuer=" ISS, NULL), USER1, at);

	/* A JWT-SVID (typ JWT) where access tokens are required. */
	c = svid_claims(AGENT, 300);
	CU_ASSERT_FATAL(json_object_set_new(c, "iss", json_string(ISS)) == 0);
	svid_iss = mint(g_key, "JWT", c);
	expect_refused(service("profile_access", "profile=access issuer=" ISS, NULL), USER1,
	    svid_iss, PAM_AUTH_ERR, "typ_mismatch");
	agentid_free(svid_iss);
	expect_refused(service("profile_svid", "profile=jwt-svid", NULL), USER1, at, PAM_AUTH_ERR,
	    "typ_mismatch");
	expect_ok("profile_svid", USER1, svid);
	expect_ok(service("profile_any", "profile=any", NULL), USER1, at);
	agentid_free(wrong_aud);
	agentid_free(svid);
	agentid_free(at);
}

static void
test_scopes(void)
{
	char *at = access_token(AGENT, "ssh:login read");

	expect_ok(service("scope_one", "scope=ssh:login", NULL), USER1, at);
	expect_ok(service("scope_all", "scope=ssh:login scope=read", NULL), USER1, at);
	expect_refused(service("scope_missing", "scope=ssh:login scope=sudo", NULL), USER1, at,
	    PAM_AUTH_ERR, "insufficient_scope");
	expect_ok(service("scope_any", "scope=sudo scope=read scope_mode=any", NULL), USER1, at);
	expect_ok(service("scope_any_flag", "scope=sudo scope=read scope_any", NULL), USER1, at);
	expect_refused(service("scope_any_none", "scope=sudo scope=admin scope_mode=any", NULL),
	    USER1, at, PAM_AUTH_ERR, "insufficient_scope");
	agentid_free(at);
}

static void
test_agents_and_chain(void)
{
	char *at = access_token(AGENT, "ssh:login");

	expect_ok(
	    service("allow_agent", "allow_agent=spiffe://example.org/agent/*", NULL), USER1, at);
	expect_refused(service("deny_agent", "allow_agent=spiffe://example.org/other", NULL), USER1,
	    at, PAM_AUTH_ERR, "agent_not_allowed");
	expect_refused(service("deny_subject", "allow_subject=spiffe://example.org/user/bob", NULL),
	    USER1, at, PAM_AUTH_ERR, "subject_not_allowed");
	expect_ok(
	    service("allow_subject", "allow_subject=spiffe://example.org/user/*", NULL), USER1, at);
	/* The chain has two hops (AGENT, then ORCH). */
	expect_ok(service("depth2", "max_depth=2", NULL), USER1, at);
	expect_refused(
	    service("depth1", "max_depth=1", NULL), USER1, at, PAM_AUTH_ERR, "chain_too_deep");
	expect_refused(service("actor", "allow_actor=spiffe://example.org/agent/*", NULL), USER1,
	    at, PAM_AUTH_ERR, "agent_not_allowed");
	agentid_free(at);
}

static void
test_garbage(void)
{
	static const char *junk[] = {
		"x",
		"a.b.c",
		"....",
		"eyJhbGciOiJub25lIn0.e30.",
		"eyJ.eyJ.eyJ",
		"\xff\xfe\x01\x02",
		"%s%s%s%n",
		"Bearer abc",
		"{\"alg\":\"none\"}",
		"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.!!!!",
	};
	char big[20000], *rnd;
	unsigned seed = 12345;
	size_t i, j;
	struct outcome o;

	service("garbage", "", NULL);
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		run_conv("garbage", USER1, junk[i], &o);
		CU_ASSERT_EQUAL(o.auth, PAM_AUTH_ERR);
		CU_ASSERT(strncmp(o.err, "agent token refused: ", 21) == 0);
	}
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_refused("garbage", USER1, big, PAM_AUTH_ERR, "too_large");
	expect_refused(service("max_len", "max_token_len=100", NULL), USER1,
	    "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0."
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    PAM_AUTH_ERR, "too_large");
	/* Random printable strings, with dots sprinkled in. */
	CU_ASSERT_FATAL((rnd = malloc(600)) != NULL);
	for (i = 0; i < 200; i++) {
		size_t n = 1 + (size_t)(rand_r(&seed) % 598);

		for (j = 0; j < n; j++) {
			int c = rand_r(&seed) % 96;

			rnd[j] = c == 95 ? '.' : (char)(0x21 + c % 94);
		}
		rnd[n] = '\0';
		run_conv("garbage", USER1, rnd, &o);
		CU_ASSERT_EQUAL(o.auth, PAM_AUTH_ERR);
	}
	free(rnd);
}

/* ---- configuration ---- */

static void
test_config_errors(void)
{
	char *tok = svid_token(AGENT, 300), name[32];
	struct outcome o;

	/* Unknown option, bad values, and missing required options: PAM_SERVICE_ERR. */
	static const char *bad[] = {
		"frobnicate=1",
		"leeway=-1",
		"leeway=abc",
		"max_depth=99",
		"profile=jwt",
		"source=conv,smoke",
		"source=conv,conv",
		"map_by=user",
		"algs=HS256",
		"source=file",
		"scope_mode=some",
		"nonsense",
		"file=relative/path",
		"status=@/status.jwt status_timeout=0",
		"source=conv,",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(name, sizeof(name), "bad_opt%zu", i);
		run_conv(service(name, bad[i], NULL), USER1, tok, &o);
		CU_ASSERT_EQUAL(o.auth, PAM_SERVICE_ERR);
		if (o.auth != PAM_SERVICE_ERR)
			fprintf(stderr, "\n    option %s accepted\n", bad[i]);
	}
	/* Without audience, bundle, or mapping. */
	run_conv(service_raw("no_aud"), USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SERVICE_ERR);
	run_conv(service_raw("no_bundle"), USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SERVICE_ERR);
	run_conv(service_raw("no_map"), USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SERVICE_ERR);

	/* A bundle that does not exist, or a bad trust domain prefix. */
	run_conv(
	    service("missing_bundle", "bundle=/nonexistent/bundle.json", NULL), USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SERVICE_ERR);
	run_conv(service("bad_td", "bundle=EXAMPLE..org:/x", NULL), USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SERVICE_ERR);

	/* A malformed map file line, a bad pattern, and a world-writable map file. */
	write_file(path_in("map.bad1"), AGENT " " USER1 " extra\n", 0644);
	run_conv(service("map_bad1", "map=@/map.bad1", NULL), USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SERVICE_ERR);
	write_file(path_in("map.bad2"), "spiffe://Example.org/x " USER1 "\n", 0644);
	run_conv(service("map_bad2", "map=@/map.bad2", NULL), USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SERVICE_ERR);
	write_file(path_in("map.ww"), AGENT " " USER1 "\n", 0666);
	run_conv(service("map_ww", "map=@/map.ww", NULL), USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SERVICE_ERR);
	write_file(path_in("map.baduser"), AGENT " ../root\n", 0644);
	run_conv(service("map_baduser", "map=@/map.baduser", NULL), USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SERVICE_ERR);
	agentid_free(tok);
}

static void
test_conf_file(void)
{
	char *tok = access_token(AGENT, "ssh:login"), conf[8192];
	struct conv_state st = { NULL, "", 0 };
	struct outcome o;
	struct pam_conv pconv;
	pam_handle_t *ph;

	snprintf(conf, sizeof(conf),
	    "# pam_agentid test configuration\n"
	    "\n"
	    "bundle = %s\n"
	    "audience = " AUD "\n"
	    "issuer=" ISS "\n"
	    "scope = ssh:login\n"
	    "map = %s\n"
	    "prompt = \"Token, please: \"\n"
	    "show_reason\n"
	    "debug = no\n",
	    path_in("issuer.jwks"), path_in("map"));
	write_file(path_in("agentid.conf"), conf, 0644);
	expect_ok(service_raw("conf"), USER1, tok);

	st.answer = tok;
	ph = start("conf", USER1, &st, &pconv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_SUCCESS);
	CU_ASSERT_STRING_EQUAL(st.prompt, "Token, please: ");
	pam_end(ph, PAM_SUCCESS);

	/* Arguments come after the file: an extra required scope the token lacks. */
	expect_refused(service_raw("conf_args"), USER1, tok, PAM_AUTH_ERR, "insufficient_scope");

	/* A bad line, a world-writable file, nested conf=. */
	write_file(path_in("bad.conf"), "audience = " AUD "\nwhatever = 1\n", 0644);
	run_conv(service_raw("conf_bad"), USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SERVICE_ERR);
	CU_ASSERT(chmod(path_in("agentid.conf"), 0666) == 0);
	run_conv("conf", USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SERVICE_ERR);
	CU_ASSERT(chmod(path_in("agentid.conf"), 0644) == 0);
	write_file(path_in("nest.conf"), "conf = /etc/passwd\n", 0644);
	run_conv(service_raw("conf_nest"), USER1, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_SERVICE_ERR);
	agentid_free(tok);
}

/* ---- account ---- */

static void
test_account(void)
{
	struct conv_state st = { NULL, "", 0 };
	struct pam_conv conv;
	pam_handle_t *ph;
	char *tok = svid_token(AGENT, 2);

	/* Valid at auth; expired (leeway 0) by the time account runs. */
	st.answer = tok;
	ph = start(service("acct_exp", "leeway=0", "leeway=0"), USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_SUCCESS);
	CU_ASSERT_EQUAL(pam_acct_mgmt(ph, 0), PAM_SUCCESS);
	sleep(3);
	CU_ASSERT_EQUAL(pam_acct_mgmt(ph, 0), PAM_ACCT_EXPIRED);
	pam_end(ph, PAM_SUCCESS);
	agentid_free(tok);

	/* PAM_USER changed between auth and account. */
	tok = svid_token(AGENT, 300);
	st.answer = tok;
	ph = start(service("acct_user", "", NULL), USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_SUCCESS);
	CU_ASSERT_EQUAL(pam_set_item(ph, PAM_USER, USER2), PAM_SUCCESS);
	CU_ASSERT_EQUAL(pam_acct_mgmt(ph, 0), PAM_PERM_DENIED);
	pam_end(ph, PAM_SUCCESS);

	/* A failed second attempt drops the identity of the first. */
	ph = start("acct_user", USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_SUCCESS);
	st.answer = "garbage";
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_AUTH_ERR);
	/* No identity of ours: account is not our business (PAM_IGNORE; the stack fails). */
	CU_ASSERT_NOT_EQUAL(pam_acct_mgmt(ph, 0), PAM_SUCCESS);
	pam_end(ph, PAM_SUCCESS);

	/* Account without any auth by this module: ignored, so a stack with pam_permit passes. */
	ph = start(service_raw("acct_ignore"), USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_acct_mgmt(ph, 0), PAM_SUCCESS);
	pam_end(ph, PAM_SUCCESS);
	agentid_free(tok);
}

static void
test_setcred_session(void)
{
	struct conv_state st = { NULL, "", 0 };
	struct pam_conv conv;
	pam_handle_t *ph;
	char *tok = svid_token(AGENT, 300);

	st.answer = tok;
	ph = start(service("setcred", "", NULL), USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_SUCCESS);
	CU_ASSERT_EQUAL(pam_setcred(ph, PAM_ESTABLISH_CRED), PAM_SUCCESS);
	CU_ASSERT_EQUAL(pam_open_session(ph, 0), PAM_SUCCESS);
	CU_ASSERT_STRING_EQUAL(pam_getenv(ph, "AGENTID_AGENT"), AGENT);
	CU_ASSERT_EQUAL(pam_close_session(ph, 0), PAM_SUCCESS);
	CU_ASSERT_EQUAL(pam_setcred(ph, PAM_DELETE_CRED), PAM_SUCCESS);
	pam_end(ph, PAM_SUCCESS);
	agentid_free(tok);
}

/* ---- revocation (status lists) ---- */

#define STATUS_URI "https://exchange.example/status/1"

/* Writes @/status.jwt: 16 entries, idx 3 and rev revoked, idx 4 suspended, signed by k. */
static void
write_status(const struct agentid_key *k, const char *uri, long age, int rev)
{
	struct agentid_status_list *l = NULL;
	struct agentid_status_list_claims sc;
	char *jwt = NULL, text[8192];

	CU_ASSERT_FATAL(agentid_status_list_new(16, 2, &l) == 0);
	CU_ASSERT_FATAL(agentid_status_list_set(l, 3, AGENTID_STATUS_INVALID) == 0);
	CU_ASSERT_FATAL(agentid_status_list_set(l, 4, AGENTID_STATUS_SUSPENDED) == 0);
	if (rev >= 0)
		CU_ASSERT_FATAL(
		    agentid_status_list_set(l, (size_t)rev, AGENTID_STATUS_INVALID) == 0);
	memset(&sc, 0, sizeof(sc));
	sc.uri = uri;
	sc.iat = now_plus(-age);
	sc.ttl = 60;
	CU_ASSERT_FATAL(agentid_status_list_sign(l, k, AGENTID_ALG_ES256, &sc, &jwt) == 0);
	snprintf(text, sizeof(text), "%s\n", jwt);
	write_file(path_in("status.jwt"), text, 0644);
	agentid_free(jwt);
	agentid_status_list_free(l);
}

/* A JWT-SVID of AGENT pointing at entry idx of list uri (no status claim when idx < 0). */
static char *
status_token(const char *uri, long idx)
{
	json_t *c = svid_claims(AGENT, 300);

	if (idx >= 0)
		CU_ASSERT_FATAL(json_object_set_new(c, "status",
		                    json_pack("{s:{s:I,s:s}}", "status_list", "idx",
		                        (json_int_t)idx, "uri", uri))
		    == 0);
	return mint(g_key, "JWT", c);
}

static void
test_status(void)
{
	char *ok = status_token(STATUS_URI, 1), *revoked = status_token(STATUS_URI, 3),
	     *suspended = status_token(STATUS_URI, 4), *beyond = status_token(STATUS_URI, 99),
	     *none = status_token(STATUS_URI, -1), *elsewhere = status_token(STATUS_URI "x", 1);
	const char *svc = service(
	    "status", "status=@/status.jwt", "bundle=" TD ":@/bundle.json status=@/status.jwt");

	write_status(g_key, STATUS_URI, 0, -1);
	expect_ok(svc, USER1, ok);
	expect_ok(svc, USER1, none);
	expect_refused(svc, USER1, revoked, PAM_AUTH_ERR, "revoked");
	expect_refused(svc, USER1, suspended, PAM_AUTH_ERR, "suspended");
	expect_refused(svc, USER1, beyond, PAM_AUTH_ERR, "bad_claim");
	/* The file holds another list than the one the token names. */
	expect_refused(svc, USER1, elsewhere, PAM_AUTH_ERR, "status_unavailable");
	expect_refused(service("status_required", "status=@/status.jwt status_required", NULL),
	    USER1, none, PAM_AUTH_ERR, "missing_claim");
	expect_refused(service("status_url", "status=https://status.example/other", NULL), USER1,
	    ok, PAM_AUTH_ERR, "status_unavailable");

	/* Missing list: fail closed unless status_fail_open. */
	expect_refused(service("status_missing", "status=@/nonexistent.jwt", NULL), USER1, ok,
	    PAM_AUTH_ERR, "status_unavailable");
	expect_ok(service("status_missing_open", "status=@/nonexistent.jwt status_fail_open", NULL),
	    USER1, ok);

	/* A stale list (two hours old, default max age one hour). */
	write_status(g_key, STATUS_URI, 7200, -1);
	expect_refused(svc, USER1, ok, PAM_AUTH_ERR, "status_unavailable");
	expect_ok(
	    service("status_old_ok", "status=@/status.jwt status_max_age=86400", NULL), USER1, ok);
	expect_ok(service("status_open", "status=@/status.jwt status_fail_open", NULL), USER1, ok);
	/* Revoked stays revoked under status_fail_open. */
	write_status(g_key, STATUS_URI, 0, -1);
	expect_refused("status_open", USER1, revoked, PAM_AUTH_ERR, "revoked");

	/* A list signed by a key nobody trusts, then by one status_bundle= names. */
	write_status(g_stray, STATUS_URI, 0, -1);
	expect_refused(svc, USER1, ok, PAM_AUTH_ERR, "status_unavailable");
	expect_ok(service("status_stray", "status=@/status.jwt status_bundle=@/stray.jwks", NULL),
	    USER1, ok);

	agentid_free(ok);
	agentid_free(revoked);
	agentid_free(suspended);
	agentid_free(beyond);
	agentid_free(none);
	agentid_free(elsewhere);
}

static void
test_account_revoked(void)
{
	struct conv_state st = { NULL, "", 0 };
	struct pam_conv conv;
	pam_handle_t *ph;
	char *tok = status_token(STATUS_URI, 5);

	/* Valid at auth; revoked before account runs. */
	write_status(g_key, STATUS_URI, 0, -1);
	st.answer = tok;
	ph = start(service("status", "status=@/status.jwt",
	               "bundle=" TD ":@/bundle.json status=@/status.jwt"),
	    USER1, &st, &conv);
	CU_ASSERT_EQUAL(pam_authenticate(ph, 0), PAM_SUCCESS);
	CU_ASSERT_EQUAL(pam_acct_mgmt(ph, 0), PAM_SUCCESS);
	write_status(g_key, STATUS_URI, 0, 5);
	CU_ASSERT_EQUAL(pam_acct_mgmt(ph, 0), PAM_PERM_DENIED);
	/* The list goes missing: fail closed. */
	CU_ASSERT(unlink(path_in("status.jwt")) == 0);
	CU_ASSERT_EQUAL(pam_acct_mgmt(ph, 0), PAM_PERM_DENIED);
	pam_end(ph, PAM_SUCCESS);
	agentid_free(tok);
}

/* ---- audit ---- */

struct audit_seen {
	int allowed, denied;
	char last_reason[64];
	char agent_expired[128], agent_not_mapped[128]; /* "-": a record without agent */
};

static int
audit_cb(void *arg, const json_t *rec, const char *file, size_t line)
{
	struct audit_seen *s = arg;
	const char *ev = json_string_value(json_object_get(rec, "event"));
	const char *reason = json_string_value(json_object_get(rec, "reason"));

	(void)file;
	(void)line;
	if (ev == NULL)
		return 0;
	if (strcmp(ev, "login.allowed") == 0)
		s->allowed++;
	if (strcmp(ev, "login.denied") == 0) {
		const char *agent = json_string_value(json_object_get(rec, "agent"));

		s->denied++;
		snprintf(
		    s->last_reason, sizeof(s->last_reason), "%s", reason != NULL ? reason : "");
		if (reason != NULL && strcmp(reason, "expired") == 0)
			snprintf(s->agent_expired, sizeof(s->agent_expired), "%s",
			    agent != NULL ? agent : "-");
		if (reason != NULL && strcmp(reason, "not_mapped") == 0)
			snprintf(s->agent_not_mapped, sizeof(s->agent_not_mapped), "%s",
			    agent != NULL ? agent : "-");
	}
	return 0;
}

static void
test_audit(void)
{
	char *tok = svid_token(AGENT, 300), *expired = svid_token(AGENT, -100);
	const char *log = path_in("audit.log");
	struct audit_seen seen;
	struct agentid_error err;
	struct outcome o;

	service("audit", "audit=@/audit.log", "audit=@/audit.log");
	run_conv("audit", USER1, tok, &o); /* one auth alone, then auth+account+session */
	CU_ASSERT_EQUAL(o.auth, PAM_SUCCESS);
	run_conv("audit", USER1, expired, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_AUTH_ERR);
	run_conv("audit", USER2, tok, &o);
	CU_ASSERT_EQUAL(o.auth, PAM_AUTH_ERR);

	memset(&seen, 0, sizeof(seen));
	CU_ASSERT_EQUAL(agentid_audit_read_files(&log, 1, audit_cb, &seen, &err), 0);
	CU_ASSERT_EQUAL(seen.allowed, 2);
	CU_ASSERT_EQUAL(seen.denied, 2);
	CU_ASSERT_STRING_EQUAL(seen.last_reason, "not_mapped");
	/* An authentic token refused for this user names its agent; an expired one nobody. */
	CU_ASSERT_STRING_EQUAL(seen.agent_not_mapped, AGENT);
	CU_ASSERT_STRING_EQUAL(seen.agent_expired, "-");

	/* The log cannot be written: the login is refused unless audit_fail_open. */
	expect_refused(service("audit_bad", "audit=/nonexistent/dir/audit.log", NULL), USER1, tok,
	    PAM_SYSTEM_ERR, "audit_failed");
	expect_ok(service("audit_open", "audit=/nonexistent/dir/audit.log audit_fail_open", NULL),
	    USER1, tok);
	agentid_free(tok);
	agentid_free(expired);
}

/* ---- setup ---- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
cleanup(void)
{
	const char *top = getenv("AGENTID_PAM_TEST_DIR");

	if (top != NULL && getenv("AGENTID_PAM_TEST_KEEP") == NULL)
		(void)nftw(top, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int
write_json(const char *path, json_t *j)
{
	int r = json_dump_file(j, path, JSON_COMPACT);

	json_decref(j);
	return r == 0 && chmod(path, 0644) == 0 ? 0 : -1;
}

/* The private paths and the options every service shares. */
static void
paths_init(const char *top)
{
	const char *slash = strrchr(PAM_WRAPPER_LIB, '/');

	snprintf(g_dir, sizeof(g_dir), "%s", top);
	snprintf(g_pwmod, sizeof(g_pwmod), "%.*s/pam_wrapper",
	    slash != NULL ? (int)(slash - PAM_WRAPPER_LIB) : 1,
	    slash != NULL ? PAM_WRAPPER_LIB : ".");
	snprintf(g_svcdir, sizeof(g_svcdir), "%s/services", top);
	snprintf(g_base, sizeof(g_base),
	    "bundle=" TD ":%s bundle=other.org:%s bundle=%s audience=" AUD " map=%s show_reason",
	    path_in("bundle.json"), path_in("other.json"), path_in("issuer.jwks"), path_in("map"));
}

static int
setup(void)
{
	struct agentid_bundle *b = NULL, *bo = NULL;
	struct agentid_keyset *ks = NULL;
	char kid[AGENTID_THUMBPRINT_LEN + 1];
	json_t *j = NULL;
	int r = -1;

	if (agentid_key_generate(AGENTID_ALG_ES256, &g_key) != 0
	    || agentid_key_generate(AGENTID_ALG_ES256, &g_stray) != 0
	    || agentid_key_generate(AGENTID_ALG_ES256, &g_other) != 0)
		goto out;
	if (agentid_key_thumbprint(g_key, kid, sizeof(kid)) != 0
	    || agentid_key_set_kid(g_key, kid) != 0
	    || agentid_key_thumbprint(g_stray, kid, sizeof(kid)) != 0
	    || agentid_key_set_kid(g_stray, kid) != 0
	    || agentid_key_thumbprint(g_other, kid, sizeof(kid)) != 0
	    || agentid_key_set_kid(g_other, kid) != 0)
		goto out;
	/* The example.org SPIFFE bundle, an issuer JWKS with the same key, other.org's bundle. */
	if (agentid_bundle_new(TD, &b) != 0 || agentid_bundle_add_jwt_key(b, g_key) != 0
	    || agentid_bundle_to_json(b, &j) != 0 || write_json(path_in("bundle.json"), j) != 0)
		goto out;
	if (agentid_keyset_new(&ks) != 0 || agentid_keyset_add(ks, g_key) != 0
	    || agentid_keyset_to_json(ks, &j) != 0 || write_json(path_in("issuer.jwks"), j) != 0)
		goto out;
	agentid_keyset_free(ks);
	ks = NULL;
	if (agentid_keyset_new(&ks) != 0 || agentid_keyset_add(ks, g_stray) != 0
	    || agentid_keyset_to_json(ks, &j) != 0 || write_json(path_in("stray.jwks"), j) != 0)
		goto out;
	if (agentid_bundle_new("other.org", &bo) != 0
	    || agentid_bundle_add_jwt_key(bo, g_other) != 0 || agentid_bundle_to_json(bo, &j) != 0
	    || write_json(path_in("other.json"), j) != 0)
		goto out;
	if (write_file_raw(path_in("map"),
	        "# SPIFFE ID pattern        local user\n" AGENT "   " USER1 "\n"
	        "\n"
	        "spiffe://example.org/agent/*\t" USER2 "\n"
	        "   spiffe://example.org/user/alice nobody\n",
	        0644)
	    != 0)
		goto out;
	r = 0;
out:
	agentid_bundle_free(b);
	agentid_bundle_free(bo);
	agentid_keyset_free(ks);
	return r;
}

/* Re-executes this program under pam_wrapper with a private service directory. */
static int
reexec(char **argv)
{
	const char *tmp = getenv("TMPDIR"), *pre = getenv("LD_PRELOAD"), *asan;
	char top[900], preload[PATH_MAX * 2], asanopt[512];

	snprintf(top, sizeof(top), "%s/agentid-pam-XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(top) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	paths_init(top);
	if (mkdir(g_svcdir, 0755) != 0 || write_services() != 0) {
		perror("writing the PAM services");
		return 1;
	}
	snprintf(preload, sizeof(preload), "%s%s%s", pre != NULL ? pre : "", pre != NULL ? " " : "",
	    PAM_WRAPPER_LIB);
	/* An ASan build must tolerate pam_wrapper being preloaded ahead of its runtime. */
	asan = getenv("ASAN_OPTIONS");
	snprintf(asanopt, sizeof(asanopt), "%s%sverify_asan_link_order=0", asan != NULL ? asan : "",
	    asan != NULL ? ":" : "");
	/*
	 * pam_wrapper dlopen()s libpam with RTLD_DEEPBIND, which the sanitizer runtimes refuse;
	 * pam_wrapper 1.1 reads its opt-out under uid_wrapper's name.
	 */
	if (setenv("UID_WRAPPER_DISABLE_DEEPBIND", "1", 1) != 0
	    || setenv("PAM_WRAPPER_DISABLE_DEEPBIND", "1", 1) != 0
	    || setenv("PAM_WRAPPER", "1", 1) != 0
	    || setenv("PAM_WRAPPER_SERVICE_DIR", g_svcdir, 1) != 0
	    || setenv("AGENTID_PAM_TEST_DIR", top, 1) != 0 || setenv("LD_PRELOAD", preload, 1) != 0
	    || setenv("ASAN_OPTIONS", asanopt, 1) != 0) {
		perror("setenv");
		return 1;
	}
	execv("/proc/self/exe", argv);
	perror("execv");
	return 1;
}

int
main(int argc, char **argv)
{
	static const struct tu_test tests[] = { { "conv_svid", test_conv_svid },
		{ "conv_access_env", test_conv_access_env }, { "no_export", test_no_export },
		{ "prompt", test_prompt }, { "authtok", test_authtok },
		{ "env_source", test_env_source }, { "file_source", test_file_source },
		{ "source_order", test_source_order }, { "no_token", test_no_token },
		{ "user_unknown", test_user_unknown }, { "map_file", test_map_file },
		{ "map_by", test_map_by }, { "map_claim", test_map_claim }, { "time", test_time },
		{ "signature_and_keys", test_signature_and_keys },
		{ "claims_options", test_claims_options }, { "scopes", test_scopes },
		{ "agents_and_chain", test_agents_and_chain }, { "garbage", test_garbage },
		{ "config_errors", test_config_errors }, { "conf_file", test_conf_file },
		{ "account", test_account }, { "setcred_session", test_setcred_session },
		{ "status", test_status }, { "account_revoked", test_account_revoked },
		{ "audit", test_audit }, TU_END };
	const char *top;
	int rc;

	(void)argc;
	if (access(PAM_AGENTID_SO, R_OK) != 0) {
		printf("test_pam: %s not built; skipped\n", PAM_AGENTID_SO);
		return 77;
	}
	if (access(PAM_WRAPPER_LIB, R_OK) != 0) {
		printf("test_pam: %s missing; skipped\n", PAM_WRAPPER_LIB);
		return 77;
	}
	if (getpwnam(USER1) == NULL || getpwnam(USER2) == NULL || getpwnam("nobody") == NULL
	    || getpwnam(NOUSER) != NULL) {
		printf("test_pam: needs local users %s, %s and nobody; skipped\n", USER1, USER2);
		return 77;
	}
	if (getenv("PAM_WRAPPER") == NULL)
		return reexec(argv);

	if ((top = getenv("AGENTID_PAM_TEST_DIR")) == NULL)
		return 99;
	paths_init(top);
	atexit(cleanup);
	if (setup() != 0) {
		fprintf(stderr, "test_pam: setup failed\n");
		rc = 99;
		goto out;
	}
	rc = tu_run("pam_agentid", tests);
out:
	agentid_key_free(g_key);
	agentid_key_free(g_stray);
	agentid_key_free(g_other);
	return rc;
}
