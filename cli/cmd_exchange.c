/*
 * agentid exchange / agentid revoke: clients of agentid-exchange.
 *
 * exchange performs one RFC 8693 request (client authentication by mTLS
 * with an X.509-SVID or by a JWT-SVID client assertion, optional DPoP
 * proof) and prints the JSON response; revoke calls the admin revocation
 * API.  A refusal prints the RFC 6749 error on stderr and exits 1; usage,
 * file and connection problems exit 2.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/rand.h>

#include "cli.h"

#define TE_GRANT "urn:ietf:params:oauth:grant-type:token-exchange"
#define TT_PREFIX "urn:ietf:params:oauth:token-type:"
#define MAX_RESPONSE (1024 * 1024)
#define MAX_AUD 16

struct conn_opts {
	const char *server;
	const char *cacert;
	const char *cert;
	const char *key;
	int insecure_http;
};

/* The connection options both commands share (--server, --cacert, --cert, --key); 1 when ch was
 * one. */
static int
conn_opt(struct conn_opts *o, int ch, const char *arg)
{
	switch (ch) {
	case 's':
		o->server = arg;
		return 1;
	case 'C':
		o->cacert = arg;
		return 1;
	case 'c':
		o->cert = arg;
		return 1;
	case 'k':
		o->key = arg;
		return 1;
	default:
		return 0;
	}
}

struct body {
	char *data;
	size_t len;
	int too_big;
};

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t add = size * n;
	char *nd;

	if (b->len + add > MAX_RESPONSE) {
		b->too_big = 1;
		return 0;
	}
	if ((nd = realloc(b->data, b->len + add + 1)) == NULL)
		return 0;
	b->data = nd;
	memcpy(b->data + b->len, p, add);
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}

/* Appends "&name=value" (URL-encoded) to *form. */
static int
form_add(CURL *c, char **form, const char *name, const char *value)
{
	char *ev, *nf;
	size_t old = *form != NULL ? strlen(*form) : 0, need;

	if ((ev = curl_easy_escape(c, value, 0)) == NULL)
		return -1;
	need = old + strlen(name) + strlen(ev) + 3;
	if ((nf = realloc(*form, need)) == NULL) {
		curl_free(ev);
		return -1;
	}
	snprintf(nf + old, need - old, "%s%s=%s", old > 0 ? "&" : "", name, ev);
	curl_free(ev);
	*form = nf;
	return 0;
}

/* base URL + path, unless the URL already ends with path. */
static char *
endpoint(const char *server, const char *path)
{
	size_t sl = strlen(server), pl = strlen(path);
	char *u;

	while (sl > 0 && server[sl - 1] == '/')
		sl--;
	if (sl >= pl && strncmp(server + sl - pl, path, pl) == 0)
		pl = 0;
	if ((u = malloc(sl + pl + 1)) == NULL)
		return NULL;
	memcpy(u, server, sl);
	memcpy(u + sl, path, pl);
	u[sl + pl] = '\0';
	return u;
}

/*
 * POSTs form to url.  Returns the HTTP status (0 on a transport error,
 * message printed); *resp is the body.
 */
static long
post(const struct conn_opts *o, const char *url, const char *form, const char *dpop,
    struct body *resp)
{
	struct curl_slist *h = NULL;
	char *dh = NULL;
	CURLcode cc;
	CURL *c;
	long status = 0;

	memset(resp, 0, sizeof(*resp));
	if ((c = curl_easy_init()) == NULL)
		return 0;
	h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
	h = curl_slist_append(h, "Accept: application/json");
	if (dpop != NULL) {
		size_t n = strlen(dpop) + 7;

		if ((dh = malloc(n)) != NULL) {
			snprintf(dh, n, "DPoP: %s", dpop);
			h = curl_slist_append(h, dh);
		}
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, o->insecure_http ? "https,http" : "https");
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (o->cacert != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->cacert);
	if (o->cert != NULL) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, o->cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, o->key != NULL ? o->key : o->cert);
	}
	if ((cc = curl_easy_perform(c)) != CURLE_OK)
		cli_err(
		    "%s: %s", url, resp->too_big ? "response too large" : curl_easy_strerror(cc));
	else
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	free(dh);
	curl_easy_cleanup(c);
	return status;
}

/* Prints the response: JSON on stdout for 200, the OAuth error on stderr otherwise. */
static int
report(long status, const struct body *b)
{
	struct agentid_error err;
	json_t *j = NULL;

	if (status == 0)
		return EXIT_USAGE;
	if (b->data == NULL
	    || agentid_json_parse(b->data, b->len, AGENTID_DEFAULT_MAX_JSON_DEPTH, &j, &err) != 0) {
		cli_err("HTTP %ld with a body that is not JSON", status);
		return status == 200 ? EXIT_USAGE : EXIT_INVALID;
	}
	if (status == 200) {
		cli_print_json(j);
		json_decref(j);
		return 0;
	}
	fprintf(stderr, "refused: HTTP %ld: ", status);
	cli_print_sanitized(stderr,
	    json_string_value(json_object_get(j, "error")) != NULL
	        ? json_string_value(json_object_get(j, "error"))
	        : "error");
	if (json_is_string(json_object_get(j, "error_description"))) {
		fputs(": ", stderr);
		cli_print_sanitized(
		    stderr, json_string_value(json_object_get(j, "error_description")));
	}
	fputc('\n', stderr);
	json_decref(j);
	return EXIT_INVALID;
}

/* RFC 9449 proof: typ dpop+jwt, the public jwk, htm, htu, iat, a random jti. */
static char *
dpop_proof(const char *keyfile, const char *htm, const char *htu)
{
	struct agentid_key *key = NULL;
	struct agentid_error err;
	json_t *jwk = NULL, *hdr = NULL, *claims = NULL;
	unsigned char rnd[16];
	char jti[32], *out = NULL;
	enum agentid_alg alg;
	size_t n;

	agentid_error_clear(&err);
	if (agentid_key_load_file(keyfile, &key, &err) != 0 || !agentid_key_is_private(key)) {
		cli_err("%s: not a usable private key", keyfile);
		goto out;
	}
	alg = agentid_key_default_alg(key);
	if (alg == AGENTID_ALG_UNKNOWN || RAND_bytes(rnd, sizeof(rnd)) != 1
	    || agentid_b64url_encode(rnd, sizeof(rnd), jti, sizeof(jti), &n) != 0
	    || agentid_key_to_jwk(key, &jwk) != 0)
		goto out;
	/* The proof's jwk carries the public key members only. */
	json_object_del(jwk, "kid");
	json_object_del(jwk, "alg");
	json_object_del(jwk, "use");
	json_object_del(jwk, "x5c");
	hdr = json_pack("{s:s,s:O}", "typ", "dpop+jwt", "jwk", jwk);
	claims = json_pack(
	    "{s:s,s:s,s:s,s:I}", "jti", jti, "htm", htm, "htu", htu, "iat", (json_int_t)time(NULL));
	if (hdr == NULL || claims == NULL || agentid_jws_sign(key, alg, hdr, claims, &out) != 0)
		cli_err("cannot make the DPoP proof");
out:
	json_decref(jwk);
	json_decref(hdr);
	json_decref(claims);
	agentid_key_free(key);
	return out;
}

static const char *
token_type_urn(const char *t, char *buf, size_t len)
{
	if (strncmp(t, "urn:", 4) == 0)
		return t;
	snprintf(buf, len, TT_PREFIX "%s", t);
	return buf;
}

/* "access_token" when the token's header says typ at+jwt, otherwise "jwt". */
static const char *
guess_type(const char *tok)
{
	struct agentid_jws *jws = NULL;
	struct agentid_error err;
	const char *t = "jwt";

	if (agentid_jws_parse(tok, strlen(tok), NULL, &jws, &err) == 0 && jws->typ != NULL
	    && strcmp(jws->typ, "at+jwt") == 0)
		t = "access_token";
	agentid_jws_free(jws);
	return t;
}

static void
exchange_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid exchange --server URL [--cacert F] [--cert F --key F | "
	    "--client-assertion T]\n"
	    "           --subject-token T|@FILE [--subject-token-type TYPE]\n"
	    "           [--actor-token T|@FILE] [--scope S] [--audience A]... [--resource R]...\n"
	    "           [--task ID] [--task-description TEXT] [--requested-token-type TYPE]\n"
	    "           [--dpop-key F]\n"
	    "\n"
	    "Performs an RFC 8693 token exchange against agentid-exchange and prints the JSON\n"
	    "response.  Exit 0 on success, 1 when the server refuses (the RFC 6749 error is\n"
	    "printed on stderr), 2 on usage, file or connection errors.\n"
	    "\n"
	    "  --server URL            the server's base URL (or its token endpoint)\n"
	    "  --cacert F              CA certificate(s) to verify the server with\n"
	    "  --cert F --key F        authenticate with an X.509-SVID (mTLS)\n"
	    "  --client-assertion T    authenticate with a JWT-SVID (T, @FILE or -)\n"
	    "  --subject-token T       the token to exchange (T, @FILE or -)\n"
	    "  --subject-token-type    jwt, access_token or a full URN (default: access_token for\n"
	    "                          at+jwt tokens, otherwise jwt)\n"
	    "  --actor-token T         JWT-SVID of the agent that will act (delegation)\n"
	    "  --task ID, --task-description TEXT   task context carried into the token\n"
	    "  --dpop-key F            send a DPoP proof made with this private key\n");
}

int
cmd_exchange(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "cacert", required_argument, NULL, 'C' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "client-assertion", required_argument, NULL, 'A' },
		{ "subject-token", required_argument, NULL, 'S' },
		{ "subject-token-type", required_argument, NULL, 'T' },
		{ "actor-token", required_argument, NULL, 'a' },
		{ "scope", required_argument, NULL, 'o' },
		{ "audience", required_argument, NULL, 'u' },
		{ "resource", required_argument, NULL, 'r' },
		{ "task", required_argument, NULL, 't' },
		{ "task-description", required_argument, NULL, 'd' },
		{ "requested-token-type", required_argument, NULL, 'R' },
		{ "dpop-key", required_argument, NULL, 'D' },
		{ "insecure-http", no_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct conn_opts o;
	const char *assertion_arg = NULL, *subject_arg = NULL, *stype = NULL, *actor_arg = NULL;
	const char *scope = NULL, *task = NULL, *task_desc = NULL, *rtype = NULL, *dpop_key = NULL;
	const char *aud[MAX_AUD], *res[MAX_AUD];
	char *assertion = NULL, *subject = NULL, *actor = NULL, *form = NULL, *url = NULL;
	char *proof = NULL, tbuf[128], rbuf[128];
	size_t n_aud = 0, n_res = 0, i;
	struct body b;
	CURL *c = NULL;
	long status;
	int ch, ret = EXIT_USAGE;

	memset(&o, 0, sizeof(o));
	memset(&b, 0, sizeof(b));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (conn_opt(&o, ch, optarg))
			continue;
		switch (ch) {
		case 'A':
			assertion_arg = optarg;
			break;
		case 'S':
			subject_arg = optarg;
			break;
		case 'T':
			stype = optarg;
			break;
		case 'a':
			actor_arg = optarg;
			break;
		case 'o':
			scope = optarg;
			break;
		case 'u':
			if (n_aud == MAX_AUD) {
				cli_err("exchange: too many --audience");
				return EXIT_USAGE;
			}
			aud[n_aud++] = optarg;
			break;
		case 'r':
			if (n_res == MAX_AUD) {
				cli_err("exchange: too many --resource");
				return EXIT_USAGE;
			}
			res[n_res++] = optarg;
			break;
		case 't':
			task = optarg;
			break;
		case 'd':
			task_desc = optarg;
			break;
		case 'R':
			rtype = optarg;
			break;
		case 'D':
			dpop_key = optarg;
			break;
		case 'H':
			o.insecure_http = 1;
			break;
		case 'h':
			exchange_usage(stdout);
			return 0;
		default:
			exchange_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || o.server == NULL || subject_arg == NULL
	    || (o.cert == NULL && assertion_arg == NULL) || (o.key != NULL && o.cert == NULL)) {
		exchange_usage(stderr);
		return EXIT_USAGE;
	}
	if ((subject = cli_read_token(subject_arg)) == NULL
	    || (assertion_arg != NULL && (assertion = cli_read_token(assertion_arg)) == NULL)
	    || (actor_arg != NULL && (actor = cli_read_token(actor_arg)) == NULL))
		goto out;
	if ((url = endpoint(o.server, "/token")) == NULL || (c = curl_easy_init()) == NULL)
		goto out;
	if (form_add(c, &form, "grant_type", TE_GRANT) != 0
	    || form_add(c, &form, "subject_token", subject) != 0
	    || form_add(c, &form, "subject_token_type",
	           token_type_urn(stype != NULL ? stype : guess_type(subject), tbuf, sizeof(tbuf)))
	        != 0)
		goto out;
	if (actor != NULL
	    && (form_add(c, &form, "actor_token", actor) != 0
	        || form_add(c, &form, "actor_token_type", TT_PREFIX "jwt") != 0))
		goto out;
	if (assertion != NULL
	    && (form_add(c, &form, "client_assertion_type",
	            "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe")
	            != 0
	        || form_add(c, &form, "client_assertion", assertion) != 0))
		goto out;
	if ((scope != NULL && form_add(c, &form, "scope", scope) != 0)
	    || (task != NULL && form_add(c, &form, "task_id", task) != 0)
	    || (task_desc != NULL && form_add(c, &form, "task_description", task_desc) != 0)
	    || (rtype != NULL
	        && form_add(
	               c, &form, "requested_token_type", token_type_urn(rtype, rbuf, sizeof(rbuf)))
	            != 0))
		goto out;
	for (i = 0; i < n_aud; i++)
		if (form_add(c, &form, "audience", aud[i]) != 0)
			goto out;
	for (i = 0; i < n_res; i++)
		if (form_add(c, &form, "resource", res[i]) != 0)
			goto out;
	if (dpop_key != NULL && (proof = dpop_proof(dpop_key, "POST", url)) == NULL)
		goto out;
	status = post(&o, url, form, proof, &b);
	ret = report(status, &b);
out:
	if (c != NULL)
		curl_easy_cleanup(c);
	free(b.data);
	free(url);
	if (form != NULL) {
		OPENSSL_cleanse(form, strlen(form));
		free(form);
	}
	agentid_free(proof);
	free(subject);
	free(assertion);
	free(actor);
	return ret;
}

static void
revoke_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid revoke --server URL (--jti J | --agent ID | --subject S | --task T)\n"
	    "           [--cacert F] --cert F --key F\n"
	    "\n"
	    "Revokes tokens through agentid-exchange's admin API (mTLS with an admin X.509-SVID).\n"
	    "Every token derived from a revoked one is revoked too.  Prints {\"revoked\": N}.\n");
}

int
cmd_revoke(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "cacert", required_argument, NULL, 'C' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "jti", required_argument, NULL, 'j' },
		{ "agent", required_argument, NULL, 'a' },
		{ "subject", required_argument, NULL, 'S' },
		{ "task", required_argument, NULL, 't' },
		{ "insecure-http", no_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct conn_opts o;
	const char *what = NULL, *value = NULL;
	char *form = NULL, *url = NULL;
	struct body b;
	CURL *c = NULL;
	int ch, ret = EXIT_USAGE, n = 0;

	memset(&o, 0, sizeof(o));
	memset(&b, 0, sizeof(b));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (conn_opt(&o, ch, optarg))
			continue;
		switch (ch) {
		case 'j':
			what = "jti";
			value = optarg;
			n++;
			break;
		case 'a':
			what = "agent";
			value = optarg;
			n++;
			break;
		case 'S':
			what = "subject";
			value = optarg;
			n++;
			break;
		case 't':
			what = "task";
			value = optarg;
			n++;
			break;
		case 'H':
			o.insecure_http = 1;
			break;
		case 'h':
			revoke_usage(stdout);
			return 0;
		default:
			revoke_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || o.server == NULL || n != 1 || o.cert == NULL) {
		revoke_usage(stderr);
		return EXIT_USAGE;
	}
	if ((url = endpoint(o.server, "/admin/revoke")) == NULL || (c = curl_easy_init()) == NULL
	    || form_add(c, &form, what, value) != 0)
		goto out;
	ret = report(post(&o, url, form, NULL, &b), &b);
out:
	if (c != NULL)
		curl_easy_cleanup(c);
	free(b.data);
	free(url);
	free(form);
	return ret;
}
