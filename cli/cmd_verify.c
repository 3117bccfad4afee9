/*
 * agentid verify: verifies a JWT-SVID or an agent access token against
 * SPIFFE bundles or plain JWK Sets, exactly as the nginx and PAM modules
 * do, and prints the verified claims.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cli.h"

static void
verify_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid verify --bundle FILE [--bundle FILE...] --audience AUD [options] "
	    "TOKEN|-\n"
	    "\n"
	    "Verifies a JWT-SVID or an agent access token (RFC 9068).  On success prints the\n"
	    "verified claims as JSON and exits 0; a rejected token exits 1 with one line\n"
	    "'invalid: <reason-code>: <text>' on stderr; usage or configuration errors exit 2.\n"
	    "TOKEN may be '-' (standard input) or '@FILE'.\n"
	    "\n"
	    "options:\n"
	    "  --bundle FILE         SPIFFE bundle or plain JWK Set (JSON), or PEM CA "
	    "certificates;\n"
	    "                        repeatable\n"
	    "  --trust-domain TD     trust domain of bundles that carry no X.509 authority\n"
	    "  --audience AUD        accepted audience; repeatable (at least one)\n"
	    "  --issuer ISS          accepted issuer; repeatable\n"
	    "  --profile P           jwt-svid, access or any (default: any -- typ at+jwt selects\n"
	    "                        the access rules, anything else the JWT-SVID rules)\n"
	    "  --scope S             required scope; repeatable (all of them, see --any-scope)\n"
	    "  --any-scope           require at least one of the --scope values instead of all\n"
	    "  --max-depth N         maximum delegation (act) depth (default %d; 0 forbids act)\n"
	    "  --allow-agent PATTERN the acting agent must match a pattern (spiffe://td/path,\n"
	    "                        spiffe://td/path/*, spiffe://td/*, *); repeatable\n"
	    "  --leeway SECS         clock skew allowed for exp/nbf/iat (default %d)\n"
	    "  --now EPOCH           verify as of this time (seconds since the epoch; for tests)\n"
	    "  -h, --help            this text\n",
	    AGENTID_DEFAULT_MAX_CHAIN_DEPTH, AGENTID_DEFAULT_LEEWAY);
}

enum {
	OPT_BUNDLE = 256,
	OPT_TD,
	OPT_AUDIENCE,
	OPT_ISSUER,
	OPT_PROFILE,
	OPT_SCOPE,
	OPT_ANY_SCOPE,
	OPT_MAX_DEPTH,
	OPT_ALLOW_AGENT,
	OPT_LEEWAY,
	OPT_NOW
};

static const struct option verify_options[] = {
	{ "bundle", required_argument, NULL, OPT_BUNDLE },
	{ "trust-domain", required_argument, NULL, OPT_TD },
	{ "audience", required_argument, NULL, OPT_AUDIENCE },
	{ "issuer", required_argument, NULL, OPT_ISSUER },
	{ "profile", required_argument, NULL, OPT_PROFILE },
	{ "scope", required_argument, NULL, OPT_SCOPE },
	{ "any-scope", no_argument, NULL, OPT_ANY_SCOPE },
	{ "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
	{ "allow-agent", required_argument, NULL, OPT_ALLOW_AGENT },
	{ "leeway", required_argument, NULL, OPT_LEEWAY },
	{ "now", required_argument, NULL, OPT_NOW },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Prints why a library call failed: the reason of a rejection, or the error code. */
static void
report_failure(const char *what, const char *name, int r, const struct agentid_error *err)
{
	if (r == AGENTID_EREJECTED)
		cli_err("%s %s: %s: %s%s%s%s", what, name, agentid_reason_code(err->reason),
		    agentid_reason_text(err->reason), err->detail[0] != '\0' ? " (" : "",
		    err->detail, err->detail[0] != '\0' ? ")" : "");
	else if (err != NULL && err->detail[0] != '\0')
		cli_err("%s %s: %s (%s)", what, name, agentid_strerror(r), err->detail);
	else
		cli_err("%s %s: %s", what, name, agentid_strerror(r));
}

/* Loads every bundle into a new trust; exit status or 0. */
static int
load_trust(const char *const *paths, size_t n, const char *td, struct agentid_trust **out)
{
	struct agentid_trust *trust = NULL;
	struct agentid_bundle *b = NULL;
	struct agentid_error err;
	size_t i;
	int r, ret = EXIT_USAGE;

	*out = NULL;
	agentid_error_clear(&err);
	if ((r = agentid_trust_new(&trust)) != 0) {
		cli_err("%s", agentid_strerror(r));
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((r = agentid_bundle_load_file(NULL, paths[i], &b, &err)) != 0) {
			report_failure("cannot load bundle", paths[i], r, &err);
			goto out;
		}
		/*
		 * A bundle names its trust domain through the URI SAN of its X.509
		 * authorities.  A plain JWK Set (or a JWT-only bundle) has none: it
		 * belongs to the trust domain given with --trust-domain, or else it
		 * holds issuer keys bound to no trust domain.
		 */
		if (agentid_bundle_trust_domain(b) == NULL && td != NULL) {
			agentid_bundle_free(b);
			b = NULL;
			if ((r = agentid_bundle_load_file(td, paths[i], &b, &err)) != 0) {
				report_failure("cannot load bundle", paths[i], r, &err);
				goto out;
			}
		}
		if ((r = agentid_trust_add_bundle(trust, b)) != 0) {
			cli_err("cannot add bundle %s: %s", paths[i], agentid_strerror(r));
			goto out;
		}
		agentid_bundle_free(b);
		b = NULL;
	}
	*out = trust;
	trust = NULL;
	ret = 0;
out:
	agentid_bundle_free(b);
	agentid_trust_free(trust);
	return ret;
}

int
cmd_verify(int argc, char **argv)
{
	struct agentid_verifier_config cfg;
	struct agentid_verifier *v = NULL;
	struct agentid_trust *trust = NULL;
	struct agentid_token *tok = NULL;
	struct agentid_error err;
	const char **bundles = NULL, **auds = NULL, **isss = NULL, **scopes = NULL;
	const char **agents = NULL;
	size_t nb = 0, na = 0, ni = 0, ns = 0, nag = 0;
	const char *td = NULL, *profile = "any";
	char *token = NULL;
	long long ll, now = -1, leeway = AGENTID_DEFAULT_LEEWAY;
	long long max_depth = AGENTID_DEFAULT_MAX_CHAIN_DEPTH;
	int c, r, any_scope = 0, ret = EXIT_USAGE;

	agentid_error_clear(&err);
	bundles = calloc((size_t)argc, sizeof(*bundles));
	auds = calloc((size_t)argc, sizeof(*auds));
	isss = calloc((size_t)argc, sizeof(*isss));
	scopes = calloc((size_t)argc, sizeof(*scopes));
	agents = calloc((size_t)argc, sizeof(*agents));
	if (bundles == NULL || auds == NULL || isss == NULL || scopes == NULL || agents == NULL) {
		cli_err("out of memory");
		goto out;
	}

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", verify_options, NULL)) != -1) {
		switch (c) {
		case OPT_BUNDLE:
			bundles[nb++] = optarg;
			break;
		case OPT_TD:
			td = optarg;
			break;
		case OPT_AUDIENCE:
			auds[na++] = optarg;
			break;
		case OPT_ISSUER:
			isss[ni++] = optarg;
			break;
		case OPT_PROFILE:
			profile = optarg;
			break;
		case OPT_SCOPE:
			scopes[ns++] = optarg;
			break;
		case OPT_ANY_SCOPE:
			any_scope = 1;
			break;
		case OPT_MAX_DEPTH:
			if (cli_parse_long(optarg, 0, 64, &max_depth) != 0) {
				cli_err(
				    "--max-depth wants a number from 0 to 64, not '%s'", optarg);
				goto out;
			}
			break;
		case OPT_ALLOW_AGENT:
			agents[nag++] = optarg;
			break;
		case OPT_LEEWAY:
			if (cli_parse_long(optarg, 0, 86400, &leeway) != 0) {
				cli_err("--leeway wants seconds from 0 to 86400, not '%s'", optarg);
				goto out;
			}
			break;
		case OPT_NOW:
			if (cli_parse_long(optarg, 0, (long long)1 << 40, &ll) != 0) {
				cli_err("--now wants seconds since the epoch, not '%s'", optarg);
				goto out;
			}
			now = ll;
			break;
		case 'h':
			verify_usage(stdout);
			ret = 0;
			goto out;
		default:
			verify_usage(stderr);
			goto out;
		}
	}
	if (argc - optind != 1) {
		cli_err(
		    argc - optind == 0 ? "verify: no token given" : "verify: exactly one token");
		verify_usage(stderr);
		goto out;
	}
	if (nb == 0) {
		cli_err("verify: at least one --bundle is required");
		goto out;
	}
	if (na == 0) {
		cli_err("verify: at least one --audience is required");
		goto out;
	}
	if (td != NULL && agentid_trust_domain_validate(td, strlen(td), &err) != 0) {
		cli_err(
		    "--trust-domain %s: %s (%s)", td, agentid_reason_text(err.reason), err.detail);
		goto out;
	}
	if (any_scope && ns == 0) {
		cli_err("--any-scope needs at least one --scope");
		goto out;
	}

	agentid_verifier_config_init(&cfg);
	if (agentid_profile_from_name(profile, &cfg.profile) != 0) {
		cli_err("--profile must be jwt-svid, access or any, not '%s'", profile);
		goto out;
	}
	if ((ret = load_trust(bundles, nb, td, &trust)) != 0)
		goto out;
	ret = EXIT_USAGE;
	cfg.trust = trust;
	cfg.audiences = auds;
	cfg.n_audiences = na;
	cfg.issuers = isss;
	cfg.n_issuers = ni;
	cfg.required_scopes = scopes;
	cfg.n_required_scopes = ns;
	cfg.scope_any = any_scope;
	cfg.max_chain_depth = (int)max_depth;
	cfg.allow_agents = agents;
	cfg.n_allow_agents = nag;
	cfg.leeway = (long)leeway;
	if ((r = agentid_verifier_new(&cfg, &v, &err)) != 0) {
		if (err.detail[0] != '\0')
			cli_err("verify: %s", err.detail);
		else
			cli_err("verify: cannot configure the verifier: %s", agentid_strerror(r));
		goto out;
	}

	if ((token = cli_read_token(argv[optind])) == NULL)
		goto out;
	agentid_error_clear(&err);
	r = agentid_verify(
	    v, token, strlen(token), now >= 0 ? (time_t)now : time(NULL), &tok, &err);
	if (r != 0) {
		/* Fail closed: an internal failure is a rejection too, reported as such. */
		if (r != AGENTID_EREJECTED && err.reason == AGENTID_R_OK)
			agentid_error_set(&err, AGENTID_R_INTERNAL, "%s", agentid_strerror(r));
		cli_print_invalid(&err);
		ret = EXIT_INVALID;
		goto out;
	}
	cli_print_json(agentid_token_claims(tok));
	ret = 0;
out:
	if (token != NULL) {
		/* The token is a bearer credential: do not leave it in freed memory. */
		OPENSSL_cleanse(token, strlen(token));
		free(token);
	}
	agentid_token_free(tok);
	agentid_verifier_free(v);
	agentid_trust_free(trust);
	free(bundles);
	free(auds);
	free(isss);
	free(scopes);
	free(agents);
	return ret;
}
