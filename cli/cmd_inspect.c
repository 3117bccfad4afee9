/*
 * agentid inspect: decodes a compact JWS WITHOUT verifying it, for people
 * debugging tokens.  The output says so on stderr and in the JSON itself,
 * so that nobody mistakes it for a verification.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"

static void
inspect_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid inspect TOKEN|-\n"
	    "\n"
	    "Decodes the header and claims of a compact JWS WITHOUT VERIFYING ANYTHING: no\n"
	    "signature, time, issuer or audience check.  Use 'agentid verify' to decide whether\n"
	    "a token is valid.  Prints {\"verified\": false, \"header\": ..., \"claims\": ...} on\n"
	    "stdout and a warning on stderr; exits 1 when the input is not a JWS.\n"
	    "TOKEN may be '-' (standard input) or '@FILE'.\n"
	    "\n"
	    "options:\n"
	    "  -h, --help   this text\n");
}

static const struct option inspect_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Decodes one base64url part holding a JSON object. */
static int
decode_part(const char *what, const char *s, size_t len, json_t **out, struct agentid_error *err)
{
	unsigned char *raw = NULL;
	size_t max, rawlen = 0;
	json_t *j = NULL;
	int r;

	*out = NULL;
	max = agentid_b64url_decoded_max(len);
	if ((raw = malloc(max + 1)) == NULL)
		return agentid_error_set(err, AGENTID_R_INTERNAL, "out of memory");
	if ((r = agentid_b64url_decode(s, len, raw, max + 1, &rawlen)) != 0) {
		if (r != AGENTID_EREJECTED || err->reason == AGENTID_R_OK)
			agentid_error_set(err, AGENTID_R_BAD_ENCODING, "%s", what);
		r = AGENTID_EREJECTED;
		goto out;
	}
	if ((r = agentid_json_parse(
	         (const char *)raw, rawlen, AGENTID_DEFAULT_MAX_JSON_DEPTH, &j, err))
	    != 0) {
		if (r != AGENTID_EREJECTED || err->reason == AGENTID_R_OK)
			agentid_error_set(err, AGENTID_R_BAD_JSON, "%s", what);
		r = AGENTID_EREJECTED;
		goto out;
	}
	if (!json_is_object(j)) {
		r = agentid_error_set(err, AGENTID_R_MALFORMED, "%s is not a JSON object", what);
		goto out;
	}
	*out = j;
	j = NULL;
out:
	json_decref(j);
	OPENSSL_cleanse(raw, max + 1);
	free(raw);
	return r;
}

/* The structural part of JWS parsing, without the algorithm policy of agentid_jws_parse. */
static int
decode_jws(const char *tok, json_t **header, json_t **claims, struct agentid_error *err)
{
	const char *d1, *d2, *sig;
	size_t len = strlen(tok), siglen;
	unsigned char *raw = NULL;
	size_t rawlen;
	int r;

	*header = *claims = NULL;
	if (len == 0)
		return agentid_error_set(err, AGENTID_R_MALFORMED, "empty input");
	if (len > AGENTID_DEFAULT_MAX_TOKEN_LEN)
		return agentid_error_set(err, AGENTID_R_TOO_LARGE, "%zu bytes", len);
	if ((d1 = strchr(tok, '.')) == NULL || (d2 = strchr(d1 + 1, '.')) == NULL
	    || strchr(d2 + 1, '.') != NULL)
		return agentid_error_set(err, AGENTID_R_MALFORMED, "not three dot-separated parts");
	if ((r = decode_part("header", tok, (size_t)(d1 - tok), header, err)) != 0
	    || (r = decode_part("payload", d1 + 1, (size_t)(d2 - d1 - 1), claims, err)) != 0)
		goto fail;
	/* The signature is not checked, but it must at least be base64url. */
	sig = d2 + 1;
	siglen = strlen(sig);
	rawlen = agentid_b64url_decoded_max(siglen);
	if ((raw = malloc(rawlen + 1)) == NULL) {
		r = agentid_error_set(err, AGENTID_R_INTERNAL, "out of memory");
		goto fail;
	}
	if (agentid_b64url_decode(sig, siglen, raw, rawlen + 1, &rawlen) != 0) {
		r = agentid_error_set(err, AGENTID_R_BAD_ENCODING, "signature");
		goto fail;
	}
	free(raw);
	return 0;
fail:
	free(raw);
	json_decref(*header);
	json_decref(*claims);
	*header = *claims = NULL;
	return r;
}

int
cmd_inspect(int argc, char **argv)
{
	struct agentid_error err;
	json_t *header = NULL, *claims = NULL, *o = NULL;
	char *token = NULL;
	int c, ret = EXIT_USAGE;

	agentid_error_clear(&err);
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", inspect_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			inspect_usage(stdout);
			return 0;
		default:
			inspect_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		cli_err("inspect: exactly one token");
		inspect_usage(stderr);
		return EXIT_USAGE;
	}
	if ((token = cli_read_token(argv[optind])) == NULL)
		return EXIT_USAGE;
	if (decode_jws(token, &header, &claims, &err) != 0) {
		cli_print_invalid(&err);
		ret = EXIT_INVALID;
		goto out;
	}
	if ((o = json_pack("{s:b, s:O, s:O}", "verified", 0, "header", header, "claims", claims))
	    == NULL) {
		cli_err("out of memory");
		goto out;
	}
	fputs("WARNING: NOT VERIFIED -- decoded only\n", stderr);
	fflush(stderr);
	cli_print_json(o);
	ret = 0;
out:
	json_decref(o);
	json_decref(header);
	json_decref(claims);
	OPENSSL_cleanse(token, strlen(token));
	free(token);
	return ret;
}
