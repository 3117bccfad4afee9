/*
 * liboauth2_verify: an independent verifier for the tokens agentid-exchange
 * issues.  It asks liboauth2 (OpenIDC, the library behind mod_oauth2 and
 * ngx_oauth2_module) to verify an access token against a jwks_uri, the way a
 * resource server configured with "jwks_uri <url>" would, and prints the
 * verified claims as one line of JSON.
 *
 *   liboauth2_verify [-k] [-d PROOF -m METHOD -u URL] JWKS_URI TOKEN
 *
 *   -k         do not verify the TLS certificate of JWKS_URI (liboauth2 has
 *              no option for a private CA file; its libcurl uses the system
 *              bundle only)
 *   -d PROOF   verify as a DPoP-bound token ("type=dpop"): PROOF is the DPoP
 *              header of a request with METHOD (-m) to URL (-u)
 *
 * Exit status: 0 verified, 1 rejected, 2 usage or setup error.  liboauth2's
 * own diagnostics (its log at level "error") go to stderr.
 *
 * Built by tests/integration/exchange_peers.sh into a temporary directory;
 * it is not part of the product, which never links liboauth2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <oauth2/http.h>
#include <oauth2/log.h>
#include <oauth2/mem.h>
#include <oauth2/oauth2.h>
#include <oauth2/util.h>

static void
usage(void)
{
	fprintf(
	    stderr, "usage: liboauth2_verify [-k] [-d PROOF -m METHOD -u URL] JWKS_URI TOKEN\n");
	exit(2);
}

static oauth2_http_method_t
method_from_name(const char *m)
{
	if (strcmp(m, "GET") == 0)
		return OAUTH2_HTTP_METHOD_GET;
	if (strcmp(m, "POST") == 0)
		return OAUTH2_HTTP_METHOD_POST;
	if (strcmp(m, "PUT") == 0)
		return OAUTH2_HTTP_METHOD_PUT;
	if (strcmp(m, "DELETE") == 0)
		return OAUTH2_HTTP_METHOD_DELETE;
	return OAUTH2_HTTP_METHOD_UNKNOWN;
}

/*
 * Describes the request the token arrived on, as a web server module would:
 * scheme, host, port and path of URL, the method and the DPoP header.
 */
static oauth2_http_request_t *
make_request(oauth2_log_t *log, const char *url, const char *method, const char *proof)
{
	oauth2_http_request_t *r;
	char scheme[8], host[256], path[1024];
	unsigned long port;
	const char *p, *hs, *he, *ps;
	size_t n;

	if ((p = strstr(url, "://")) == NULL || (size_t)(p - url) >= sizeof(scheme))
		return NULL;
	memcpy(scheme, url, (size_t)(p - url));
	scheme[p - url] = '\0';
	hs = p + 3;
	ps = strchr(hs, '/');
	if (ps == NULL)
		ps = hs + strlen(hs);
	he = memchr(hs, ':', (size_t)(ps - hs));
	port = strcmp(scheme, "https") == 0 ? 443 : 80;
	if (he != NULL)
		port = strtoul(he + 1, NULL, 10);
	else
		he = ps;
	n = (size_t)(he - hs);
	if (n == 0 || n >= sizeof(host))
		return NULL;
	memcpy(host, hs, n);
	host[n] = '\0';
	if (snprintf(path, sizeof(path), "%s", *ps != '\0' ? ps : "/") >= (int)sizeof(path))
		return NULL;

	if ((r = oauth2_http_request_init(log)) == NULL)
		return NULL;
	if (!oauth2_http_request_scheme_set(log, r, scheme)
	    || !oauth2_http_request_hostname_set(log, r, host)
	    || !oauth2_http_request_port_set(log, r, port)
	    || !oauth2_http_request_path_set(log, r, path)
	    || !oauth2_http_request_method_set(log, r, method_from_name(method))
	    || !oauth2_http_request_header_set(log, r, "DPoP", proof)) {
		oauth2_http_request_free(log, r);
		return NULL;
	}
	return r;
}

int
main(int argc, char **argv)
{
	oauth2_log_t *log = NULL;
	oauth2_cfg_token_verify_t *verify = NULL;
	oauth2_http_request_t *request = NULL;
	json_t *claims = NULL;
	const char *proof = NULL, *method = NULL, *url = NULL;
	char options[256], *rv = NULL, *out = NULL;
	int ch, insecure = 0, ret = 2;

	while ((ch = getopt(argc, argv, "kd:m:u:")) != -1) {
		switch (ch) {
		case 'k':
			insecure = 1;
			break;
		case 'd':
			proof = optarg;
			break;
		case 'm':
			method = optarg;
			break;
		case 'u':
			url = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 2 || (proof != NULL && (method == NULL || url == NULL)))
		usage();

	log = oauth2_init(OAUTH2_LOG_ERROR, &oauth2_log_sink_stderr);
	if (log == NULL) {
		fprintf(stderr, "liboauth2_verify: oauth2_init failed\n");
		return 2;
	}
	/*
	 * exp and iat are required (liboauth2 treats them as optional by
	 * default); the issuer, audience and typ are checked by the caller on
	 * the printed claims, since liboauth2's jwks_uri verifier has no
	 * setting for them.
	 */
	snprintf(options, sizeof(options), "verify.exp=required&verify.iat=required%s%s",
	    insecure ? "&jwks_uri.ssl_verify=false" : "", proof != NULL ? "&type=dpop" : "");
	rv = oauth2_cfg_token_verify_add_options(log, &verify, "jwks_uri", argv[0], options);
	if (rv != NULL) {
		fprintf(stderr, "liboauth2_verify: configuration rejected: %s\n", rv);
		goto out;
	}
	if (proof != NULL && (request = make_request(log, url, method, proof)) == NULL) {
		fprintf(stderr, "liboauth2_verify: cannot describe the request to %s\n", url);
		goto out;
	}
	if (!oauth2_token_verify(log, request, verify, argv[1], &claims)) {
		fprintf(stderr, "liboauth2_verify: token rejected\n");
		ret = 1;
		goto out;
	}
	if ((out = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		fprintf(stderr, "liboauth2_verify: cannot print the claims\n");
		goto out;
	}
	printf("%s\n", out);
	ret = 0;
out:
	free(out);
	if (claims != NULL)
		json_decref(claims);
	if (rv != NULL)
		oauth2_mem_free(rv);
	oauth2_http_request_free(log, request);
	oauth2_cfg_token_verify_free(log, verify);
	oauth2_shutdown(log);
	return ret;
}
