/*
 * agentid status-list: check a token against its issuer's status list
 * (draft-ietf-oauth-status-list), and make signed lists for tests and demos.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli.h"

static void
status_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid status-list check --bundle FILE --list URL_OR_FILE [options] TOKEN\n"
	    "       agentid status-list make --key KEY --uri URI --size N [--revoke IDX]...\n"
	    "                                [--suspend IDX]... [options] --out FILE\n"
	    "\n"
	    "Run 'agentid status-list SUBCOMMAND --help' for the options.\n");
}

enum {
	OPT_BUNDLE = 256,
	OPT_LIST,
	OPT_ISSUER,
	OPT_CAFILE,
	OPT_ALLOW_HTTP,
	OPT_TIMEOUT,
	OPT_JSON,
	OPT_KEY,
	OPT_URI,
	OPT_SIZE,
	OPT_BITS,
	OPT_REVOKE,
	OPT_SUSPEND,
	OPT_ISS,
	OPT_TTL,
	OPT_EXP_IN,
	OPT_OUT,
	OPT_ALG,
};

/* ---------------------------------------------------------------- check */

static void
check_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid status-list check --bundle FILE --list URL_OR_FILE [options] TOKEN\n"
	    "\n"
	    "Verifies TOKEN's signature with the issuer keys in FILE (a JWK Set or SPIFFE\n"
	    "bundle), then fetches (https) or reads the Status List Token its status claim\n"
	    "points to, verifies that list (signature, typ statuslist+jwt, sub = the token's\n"
	    "status URI, exp) and prints the token's status.  A token past its exp, or\n"
	    "before its nbf (30 s leeway), is reported expired or not_yet_valid without\n"
	    "looking at any list.  TOKEN may be '-' (stdin) or @FILE.  Exit 0: valid;\n"
	    "1: revoked, suspended, expired, not yet valid, or the status cannot be known;\n"
	    "2: usage error.\n"
	    "\n"
	    "options:\n"
	    "  --bundle FILE     issuer keys for the token and the list (required)\n"
	    "  --list SRC        the list: an https:// URL, or a file holding the list JWT\n"
	    "                    (required)\n"
	    "  --issuer ISS      the list must carry this iss\n"
	    "  --cafile FILE     CA certificates for https\n"
	    "  --allow-http      permit http:// (loopback testing only)\n"
	    "  --timeout MS      fetch timeout (default 5000)\n"
	    "  --json            print the result as JSON\n"
	    "  -h, --help        this text\n");
}

static const struct option check_options[] = {
	{ "bundle", required_argument, NULL, OPT_BUNDLE },
	{ "list", required_argument, NULL, OPT_LIST },
	{ "issuer", required_argument, NULL, OPT_ISSUER },
	{ "cafile", required_argument, NULL, OPT_CAFILE },
	{ "allow-http", no_argument, NULL, OPT_ALLOW_HTTP },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int
is_url(const char *s)
{
	return strncasecmp(s, "https://", 8) == 0 || strncasecmp(s, "http://", 7) == 0;
}

/* The token's signature, by the key its kid names (or any key of the set without kid). */
static int
verify_token_signature(const char *token, const struct agentid_keyset *keys, json_t **claims,
    struct agentid_error *err)
{
	struct agentid_jws *jws = NULL;
	const struct agentid_key *k;
	size_t i;
	int r;

	*claims = NULL;
	if ((r = agentid_jws_parse(token, strlen(token), NULL, &jws, err)) != 0)
		return r;
	if (jws->kid != NULL) {
		if ((k = agentid_keyset_find(keys, jws->kid, strlen(jws->kid))) == NULL)
			r = agentid_error_set(
			    err, AGENTID_R_UNKNOWN_KID, "no key with the token's kid");
		else if (!agentid_key_supports_alg(k, jws->alg))
			r = agentid_error_set(
			    err, AGENTID_R_KEY_MISMATCH, "key does not fit the alg");
		else
			r = agentid_jws_verify(jws, k, err);
	} else {
		r = agentid_error_set(err, AGENTID_R_BAD_SIGNATURE, "no key verifies the token");
		for (i = 0; i < agentid_keyset_count(keys); i++) {
			k = agentid_keyset_get(keys, i);
			if (agentid_key_supports_alg(k, jws->alg)
			    && agentid_jws_verify(jws, k, NULL) == 0) {
				r = 0;
				break;
			}
		}
	}
	if (r == 0)
		*claims = json_incref(jws->payload);
	agentid_jws_free(jws);
	return r;
}

static void
print_result(
    int json, const char *status, const char *uri, long long idx, const struct agentid_error *err)
{
	json_t *j;

	if (json) {
		j = json_pack("{s:s}", "status", status);
		if (uri != NULL)
			json_object_set_new(j, "uri", json_string(uri));
		if (idx >= 0)
			json_object_set_new(j, "idx", json_integer(idx));
		if (err != NULL && err->reason != AGENTID_R_OK)
			json_object_set_new(
			    j, "reason", json_string(agentid_reason_code(err->reason)));
		if (err != NULL && err->detail[0] != '\0')
			json_object_set_new(j, "detail", json_string(err->detail));
		cli_print_json(j);
		json_decref(j);
		return;
	}
	printf("%s", status);
	if (uri != NULL) {
		printf(" (");
		cli_print_sanitized(stdout, uri);
		printf(" idx %lld)", idx);
	}
	printf("\n");
	if (err != NULL && err->reason != AGENTID_R_OK && err->reason != AGENTID_R_REVOKED
	    && err->reason != AGENTID_R_SUSPENDED)
		cli_print_invalid(err);
}

static int
status_check(int argc, char **argv)
{
	struct agentid_status_checker_config cfg;
	struct agentid_status_checker *chk = NULL;
	struct agentid_bundle *bundle = NULL;
	struct agentid_error err;
	const struct agentid_keyset *keys;
	const char *bpath = NULL, *list = NULL, *uri, *what;
	const json_t *sl;
	json_t *claims = NULL;
	char *token = NULL;
	long long v, idx = -1;
	time_t now = time(NULL);
	int c, json = 0, r, ret = EXIT_USAGE;

	agentid_status_checker_config_init(&cfg);
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", check_options, NULL)) != -1) {
		switch (c) {
		case OPT_BUNDLE:
			bpath = optarg;
			break;
		case OPT_LIST:
			list = optarg;
			break;
		case OPT_ISSUER:
			cfg.issuer = optarg;
			break;
		case OPT_CAFILE:
			cfg.fetch.cafile = optarg;
			break;
		case OPT_ALLOW_HTTP:
			cfg.fetch.allow_http = 1;
			break;
		case OPT_TIMEOUT:
			if (cli_parse_long(optarg, 1, 600000, &v) != 0) {
				cli_err("status-list check: bad --timeout");
				return EXIT_USAGE;
			}
			cfg.fetch.timeout_ms = (long)v;
			break;
		case OPT_JSON:
			json = 1;
			break;
		case 'h':
			check_usage(stdout);
			return 0;
		default:
			check_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (bpath == NULL || list == NULL || optind + 1 != argc) {
		cli_err("status-list check: --bundle, --list and one TOKEN are required");
		check_usage(stderr);
		return EXIT_USAGE;
	}
	if ((token = cli_read_token(argv[optind])) == NULL)
		return EXIT_USAGE;
	agentid_error_clear(&err);
	if (agentid_bundle_load_file(NULL, bpath, &bundle, &err) != 0) {
		cli_err("status-list check: %s: %s", bpath, err.detail);
		goto out;
	}
	keys = agentid_bundle_jwt_keys(bundle);
	if (keys == NULL || agentid_keyset_count(keys) == 0) {
		cli_err("status-list check: %s holds no JWT keys", bpath);
		goto out;
	}
	ret = EXIT_INVALID;
	if ((r = verify_token_signature(token, keys, &claims, &err)) != 0) {
		if (r != AGENTID_EREJECTED)
			agentid_error_set(&err, AGENTID_R_MALFORMED, "%s", agentid_strerror(r));
		print_result(json, "invalid", NULL, -1, &err);
		goto out;
	}
	if (agentid_claims_check_lifetime(claims, now, cfg.leeway, &err) != 0) {
		what = "invalid";
		if (err.reason == AGENTID_R_EXPIRED)
			what = "expired";
		else if (err.reason == AGENTID_R_NOT_YET_VALID)
			what = "not_yet_valid";
		print_result(json, what, NULL, -1, &err);
		goto out;
	}
	sl = json_object_get(json_object_get(claims, "status"), "status_list");
	if (sl == NULL) {
		print_result(json, "valid", NULL, -1, NULL);
		if (!json)
			fprintf(stderr,
			    "agentid: note: the token has no status list entry; it can "
			    "only expire\n");
		ret = 0;
		goto out;
	}
	uri = json_string_value(json_object_get(sl, "uri"));
	if (uri == NULL || !json_is_integer(json_object_get(sl, "idx"))) {
		agentid_error_set(
		    &err, AGENTID_R_BAD_CLAIM, "status.status_list needs idx and uri");
		print_result(json, "invalid", NULL, -1, &err);
		goto out;
	}
	idx = json_integer_value(json_object_get(sl, "idx"));
	if (is_url(list) && strcmp(list, uri) != 0) {
		cli_err("status-list check: the token's list is %s, not --list", uri);
		ret = EXIT_USAGE;
		goto out;
	}
	cfg.keys = keys;
	if ((r = agentid_status_checker_new(&cfg, &chk, &err)) != 0
	    || (r = agentid_status_checker_add_source(chk, uri, is_url(list) ? NULL : list)) != 0) {
		cli_err("status-list check: %s", agentid_strerror(r));
		ret = EXIT_USAGE;
		goto out;
	}
	if (agentid_status_checker_refresh(chk, now, 1, &err) != 0) {
		print_result(json, "unavailable", uri, idx, &err);
		goto out;
	}
	agentid_error_clear(&err);
	r = agentid_status_check_claims(chk, claims, now, &err);
	if (r == 0) {
		print_result(json, "valid", uri, idx, NULL);
		ret = 0;
	} else if (err.reason == AGENTID_R_REVOKED) {
		print_result(json, "revoked", uri, idx, &err);
	} else if (err.reason == AGENTID_R_SUSPENDED) {
		print_result(json, "suspended", uri, idx, &err);
	} else {
		print_result(json, "invalid", uri, idx, &err);
	}
out:
	agentid_status_checker_free(chk);
	agentid_bundle_free(bundle);
	json_decref(claims);
	free(token);
	return ret;
}

/* ---------------------------------------------------------------- make */

static void
make_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid status-list make --key KEY --uri URI --size N [--revoke IDX]...\n"
	    "                                [--suspend IDX]... [options] --out FILE\n"
	    "\n"
	    "Builds a status list of N entries, marks the given entries revoked (status 1) or\n"
	    "suspended (2), and writes it as a signed statuslist+jwt (for tests and demos; the\n"
	    "exchange server publishes its own lists).\n"
	    "\n"
	    "options:\n"
	    "  --key KEY      private signing key (PEM); its kid is its RFC 7638 thumbprint\n"
	    "  --alg ALG      signature algorithm (default: the key's)\n"
	    "  --uri URI      the list's URI (its sub claim)\n"
	    "  --size N       number of entries\n"
	    "  --bits B       1, 2, 4 or 8 (default 1, or 2 with --suspend)\n"
	    "  --revoke IDX   mark entry IDX revoked (repeatable)\n"
	    "  --suspend IDX  mark entry IDX suspended (repeatable)\n"
	    "  --iss ISS      iss claim\n"
	    "  --ttl SECONDS  ttl claim (default 300)\n"
	    "  --exp-in SECS  exp = now + SECS (default 86400; negative for an expired list)\n"
	    "  --out FILE     where to write the JWT ('-' for stdout)\n"
	    "  -h, --help     this text\n");
}

static const struct option make_options[] = {
	{ "key", required_argument, NULL, OPT_KEY },
	{ "alg", required_argument, NULL, OPT_ALG },
	{ "uri", required_argument, NULL, OPT_URI },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "bits", required_argument, NULL, OPT_BITS },
	{ "revoke", required_argument, NULL, OPT_REVOKE },
	{ "suspend", required_argument, NULL, OPT_SUSPEND },
	{ "iss", required_argument, NULL, OPT_ISS },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "exp-in", required_argument, NULL, OPT_EXP_IN },
	{ "out", required_argument, NULL, OPT_OUT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int
status_make(int argc, char **argv)
{
	struct agentid_status_list_claims claims;
	struct agentid_status_list *l = NULL;
	struct agentid_key *key = NULL;
	struct agentid_error err;
	const char *keypath = NULL, *uri = NULL, *out = NULL, *iss = NULL, *algname = NULL;
	char kid[AGENTID_THUMBPRINT_LEN + 1], *jwt = NULL;
	long long size = -1, bits = 0, ttl = 300, exp_in = 86400, v;
	long long *marks = NULL;
	size_t nmarks = 0, i;
	enum agentid_alg alg;
	time_t now = time(NULL);
	int c, any_suspend = 0, ret = EXIT_USAGE;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", make_options, NULL)) != -1) {
		switch (c) {
		case OPT_KEY:
			keypath = optarg;
			break;
		case OPT_ALG:
			algname = optarg;
			break;
		case OPT_URI:
			uri = optarg;
			break;
		case OPT_SIZE:
			if (cli_parse_long(optarg, 1, 1LL << 31, &size) != 0) {
				cli_err("status-list make: bad --size");
				goto out;
			}
			break;
		case OPT_BITS:
			if (cli_parse_long(optarg, 1, 8, &bits) != 0
			    || (bits != 1 && bits != 2 && bits != 4 && bits != 8)) {
				cli_err("status-list make: --bits is 1, 2, 4 or 8");
				goto out;
			}
			break;
		case OPT_REVOKE:
		case OPT_SUSPEND:
			if (cli_parse_long(optarg, 0, 1LL << 31, &v) != 0) {
				cli_err("status-list make: bad index %s", optarg);
				goto out;
			}
			marks = realloc(marks, (nmarks + 1) * 2 * sizeof(*marks));
			marks[2 * nmarks] = v;
			marks[2 * nmarks + 1]
			    = c == OPT_REVOKE ? AGENTID_STATUS_INVALID : AGENTID_STATUS_SUSPENDED;
			any_suspend |= c == OPT_SUSPEND;
			nmarks++;
			break;
		case OPT_ISS:
			iss = optarg;
			break;
		case OPT_TTL:
			if (cli_parse_long(optarg, 0, 86400 * 365, &ttl) != 0) {
				cli_err("status-list make: bad --ttl");
				goto out;
			}
			break;
		case OPT_EXP_IN:
			if (cli_parse_long(optarg, -86400LL * 3650, 86400LL * 3650, &exp_in) != 0) {
				cli_err("status-list make: bad --exp-in");
				goto out;
			}
			break;
		case OPT_OUT:
			out = optarg;
			break;
		case 'h':
			make_usage(stdout);
			ret = 0;
			goto out;
		default:
			make_usage(stderr);
			goto out;
		}
	}
	if (keypath == NULL || uri == NULL || size < 0 || out == NULL || optind != argc) {
		cli_err("status-list make: --key, --uri, --size and --out are required");
		make_usage(stderr);
		goto out;
	}
	if (bits == 0)
		bits = any_suspend ? 2 : 1;
	if (any_suspend && bits < 2) {
		cli_err("status-list make: --suspend needs --bits 2 or more");
		goto out;
	}
	agentid_error_clear(&err);
	if (agentid_key_load_file(keypath, &key, &err) != 0 || !agentid_key_is_private(key)) {
		cli_err("status-list make: %s: not a private key %s", keypath, err.detail);
		goto out;
	}
	/* Verifiers find the key by kid: the project's convention is the RFC 7638 thumbprint. */
	if (agentid_key_kid(key) == NULL
	    && (agentid_key_thumbprint(key, kid, sizeof(kid)) != 0
	        || agentid_key_set_kid(key, kid) != 0)) {
		cli_err("status-list make: cannot compute the key's thumbprint");
		goto out;
	}
	alg = algname != NULL ? agentid_alg_from_name(algname, strlen(algname))
	                      : agentid_key_default_alg(key);
	if (alg == AGENTID_ALG_UNKNOWN || !agentid_key_supports_alg(key, alg)) {
		cli_err("status-list make: the key cannot sign with that algorithm");
		goto out;
	}
	if (agentid_status_list_new((size_t)size, (unsigned)bits, &l) != 0) {
		cli_err("status-list make: cannot make a list of %lld entries", size);
		goto out;
	}
	for (i = 0; i < nmarks; i++)
		if (agentid_status_list_set(l, (size_t)marks[2 * i], (unsigned)marks[2 * i + 1])
		    != 0) {
			cli_err("status-list make: index %lld is beyond the list", marks[2 * i]);
			goto out;
		}
	memset(&claims, 0, sizeof(claims));
	claims.uri = uri;
	claims.iss = iss;
	claims.iat = now;
	claims.exp = now + exp_in;
	claims.ttl = ttl;
	if (agentid_status_list_sign(l, key, alg, &claims, &jwt) != 0) {
		cli_err("status-list make: signing failed");
		goto out;
	}
	if (strcmp(out, "-") == 0) {
		printf("%s\n", jwt);
		ret = 0;
	} else if (cli_write_file(out, jwt, strlen(jwt), 0644, 1) == 0) {
		ret = 0;
	}
out:
	agentid_free(jwt);
	agentid_status_list_free(l);
	agentid_key_free(key);
	free(marks);
	return ret;
}

int
cmd_status_list(int argc, char **argv)
{
	if (argc < 2) {
		status_usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		status_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "check") == 0)
		return status_check(argc - 1, argv + 1);
	if (strcmp(argv[1], "make") == 0)
		return status_make(argc - 1, argv + 1);
	cli_err("status-list: unknown subcommand '%s'", argv[1]);
	status_usage(stderr);
	return EXIT_USAGE;
}
