/*
 * agentid keygen and agentid bundle: make signing keys and publish their
 * public parts as a SPIFFE bundle.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "cli.h"

/* ---------------------------------------------------------------- keygen */

static void
keygen_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid keygen --alg ALG --out FILE [--force]\n"
	    "\n"
	    "Generates a signing key and writes it as PKCS#8 PEM (mode 0600).  Prints the\n"
	    "public JWK on stdout; its kid is the RFC 7638 thumbprint.\n"
	    "ALG: ES256 (P-256), ES384 (P-384), ES512 (P-521), RS256/RS384/RS512 and\n"
	    "PS256/PS384/PS512 (RSA-3072), EdDSA or Ed25519 (RFC 9864; both an Ed25519 key).\n"
	    "\n"
	    "options:\n"
	    "  --alg ALG    signature algorithm the key is made for (required)\n"
	    "  --out FILE   where to write the private key (required)\n"
	    "  --force      replace FILE if it exists\n"
	    "  -h, --help   this text\n");
}

enum { OPT_ALG = 256, OPT_OUT, OPT_FORCE, OPT_TD, OPT_USE, OPT_SEQ, OPT_HINT };

static const struct option keygen_options[] = {
	{ "alg", required_argument, NULL, OPT_ALG },
	{ "out", required_argument, NULL, OPT_OUT },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int
cmd_keygen(int argc, char **argv)
{
	struct agentid_key *key = NULL;
	const char *algname = NULL, *out = NULL;
	char kid[AGENTID_THUMBPRINT_LEN + 1], *pem = NULL;
	json_t *jwk = NULL;
	enum agentid_alg alg;
	int c, r, force = 0, ret = EXIT_USAGE;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", keygen_options, NULL)) != -1) {
		switch (c) {
		case OPT_ALG:
			algname = optarg;
			break;
		case OPT_OUT:
			out = optarg;
			break;
		case OPT_FORCE:
			force = 1;
			break;
		case 'h':
			keygen_usage(stdout);
			return 0;
		default:
			keygen_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || algname == NULL || out == NULL) {
		cli_err("keygen: --alg and --out are required, and nothing else");
		keygen_usage(stderr);
		return EXIT_USAGE;
	}
	if ((alg = agentid_alg_from_name(algname, strlen(algname))) == AGENTID_ALG_UNKNOWN) {
		cli_err("keygen: unknown or forbidden algorithm '%s'", algname);
		return EXIT_USAGE;
	}
	if ((r = agentid_key_generate(alg, &key)) != 0
	    || (r = agentid_key_thumbprint(key, kid, sizeof(kid))) != 0
	    || (r = agentid_key_set_kid(key, kid)) != 0
	    || (r = agentid_key_set_alg(key, alg)) != 0) {
		cli_err("keygen: %s", agentid_strerror(r));
		goto out;
	}
	if ((r = agentid_key_to_pem(key, 0, &pem)) != 0) {
		cli_err("keygen: %s", agentid_strerror(r));
		goto out;
	}
	if (cli_write_file(out, pem, strlen(pem), 0600, force) != 0)
		goto out;
	if ((r = agentid_key_to_jwk(key, &jwk)) != 0) {
		cli_err("keygen: %s", agentid_strerror(r));
		goto out;
	}
	fprintf(stderr, "agentid: wrote %s key to %s (kid %s)\n", agentid_alg_name(alg), out, kid);
	cli_print_json(jwk);
	ret = 0;
out:
	if (pem != NULL) {
		OPENSSL_cleanse(pem, strlen(pem));
		agentid_free(pem);
	}
	json_decref(jwk);
	agentid_key_free(key);
	return ret;
}

/* ---------------------------------------------------------------- bundle */

static void
bundle_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid bundle --trust-domain TD [--use jwt-svid|x509-svid] [--sequence N]\n"
	    "                      [--refresh-hint SECS] KEY_OR_CERT...\n"
	    "\n"
	    "Prints the SPIFFE bundle of trust domain TD holding the public parts of the given\n"
	    "PEM files (private keys, public keys or certificates; private parts are never\n"
	    "printed).  Certificates become X.509 authorities (use x509-svid), keys become JWT\n"
	    "authorities (use jwt-svid) with kid = RFC 7638 thumbprint.\n"
	    "\n"
	    "options:\n"
	    "  --trust-domain TD     the bundle's trust domain (required)\n"
	    "  --use U               treat every file as jwt-svid or x509-svid\n"
	    "  --sequence N          spiffe_sequence\n"
	    "  --refresh-hint SECS   spiffe_refresh_hint\n"
	    "  -h, --help            this text\n");
}

static const struct option bundle_options[] = {
	{ "trust-domain", required_argument, NULL, OPT_TD },
	{ "use", required_argument, NULL, OPT_USE },
	{ "sequence", required_argument, NULL, OPT_SEQ },
	{ "refresh-hint", required_argument, NULL, OPT_HINT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Adds key as a JWT authority, with its thumbprint as kid. */
static int
add_jwt_key(struct agentid_bundle *b, struct agentid_key *key, const char *path)
{
	char kid[AGENTID_THUMBPRINT_LEN + 1];
	int r;

	if ((r = agentid_key_thumbprint(key, kid, sizeof(kid))) != 0
	    || (r = agentid_key_set_kid(key, kid)) != 0
	    || (r = agentid_key_set_use(key, "jwt-svid")) != 0
	    || (r = agentid_bundle_add_jwt_key(b, key)) != 0) {
		cli_err("%s: %s", path, agentid_strerror(r));
		return -1;
	}
	return 0;
}

/* Adds the public parts of one PEM file to b; exit status or 0. */
static int
bundle_add_file(struct agentid_bundle *b, const char *path, const char *use)
{
	struct agentid_key *key = NULL;
	struct agentid_error err;
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = NULL;
	char *pem = NULL;
	size_t len;
	int i, r, ret = EXIT_USAGE;

	agentid_error_clear(&err);
	if ((pem = cli_read_file(path, &len)) == NULL)
		return EXIT_USAGE;
	if (strstr(pem, "-----BEGIN CERTIFICATE-----") != NULL) {
		if ((r = agentid_x509_load_pem(pem, len, &leaf, &chain, &err)) != 0) {
			cli_err("%s: %s %s", path, agentid_strerror(r), err.detail);
			goto out;
		}
		if (use != NULL && strcmp(use, "jwt-svid") == 0) {
			/* The certificate's public key as a JWT authority. */
			if ((r = agentid_key_from_evp(X509_get0_pubkey(leaf), &key)) != 0) {
				cli_err("%s: %s", path, agentid_strerror(r));
				goto out;
			}
			if (add_jwt_key(b, key, path) != 0)
				goto out;
		} else {
			/* Every certificate of the file is an authority (a CA bundle PEM). */
			if ((r = agentid_bundle_add_x509_authority(b, leaf)) != 0) {
				cli_err("%s: %s", path, agentid_strerror(r));
				goto out;
			}
			for (i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
				if ((r = agentid_bundle_add_x509_authority(
				         b, sk_X509_value(chain, i)))
				    != 0) {
					cli_err("%s: %s", path, agentid_strerror(r));
					goto out;
				}
			}
		}
	} else {
		if ((r = agentid_key_from_pem(pem, len, &key, &err)) != 0) {
			if (r == AGENTID_EREJECTED)
				cli_err("%s: %s (%s)", path, agentid_reason_text(err.reason),
				    err.detail);
			else
				cli_err("%s: not a PEM key or certificate (%s)", path,
				    agentid_strerror(r));
			goto out;
		}
		if (use != NULL && strcmp(use, "x509-svid") == 0) {
			cli_err(
			    "%s: an x509-svid authority must be a certificate, not a key", path);
			goto out;
		}
		if (add_jwt_key(b, key, path) != 0)
			goto out;
	}
	ret = 0;
out:
	agentid_key_free(key);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	if (pem != NULL) {
		/* The file may have held a private key. */
		OPENSSL_cleanse(pem, len);
		free(pem);
	}
	return ret;
}

int
cmd_bundle(int argc, char **argv)
{
	struct agentid_bundle *b = NULL;
	struct agentid_error err;
	const char *td = NULL, *use = NULL;
	long long seq = -1, hint = -1;
	json_t *j = NULL;
	int c, i, r, ret = EXIT_USAGE;

	agentid_error_clear(&err);
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", bundle_options, NULL)) != -1) {
		switch (c) {
		case OPT_TD:
			td = optarg;
			break;
		case OPT_USE:
			use = optarg;
			if (strcmp(use, "jwt-svid") != 0 && strcmp(use, "x509-svid") != 0) {
				cli_err("--use must be jwt-svid or x509-svid, not '%s'", use);
				return EXIT_USAGE;
			}
			break;
		case OPT_SEQ:
			if (cli_parse_long(optarg, 0, INT64_MAX, &seq) != 0) {
				cli_err("--sequence wants a non-negative number, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_HINT:
			if (cli_parse_long(optarg, 1, INT32_MAX, &hint) != 0) {
				cli_err(
				    "--refresh-hint wants a positive number of seconds, not '%s'",
				    optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			bundle_usage(stdout);
			return 0;
		default:
			bundle_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (td == NULL || optind >= argc) {
		cli_err("bundle: --trust-domain and at least one key or certificate are required");
		bundle_usage(stderr);
		return EXIT_USAGE;
	}
	if (agentid_trust_domain_validate(td, strlen(td), &err) != 0) {
		cli_err(
		    "--trust-domain %s: %s (%s)", td, agentid_reason_text(err.reason), err.detail);
		return EXIT_USAGE;
	}
	if ((r = agentid_bundle_new(td, &b)) != 0) {
		cli_err("bundle: %s", agentid_strerror(r));
		goto out;
	}
	for (i = optind; i < argc; i++)
		if ((ret = bundle_add_file(b, argv[i], use)) != 0)
			goto out;
	ret = EXIT_USAGE;
	if ((seq >= 0 && (r = agentid_bundle_set_sequence(b, seq)) != 0)
	    || (hint >= 0 && (r = agentid_bundle_set_refresh_hint(b, hint)) != 0)
	    || (r = agentid_bundle_to_json(b, &j)) != 0) {
		cli_err("bundle: %s", agentid_strerror(r));
		goto out;
	}
	cli_print_json(j);
	ret = 0;
out:
	json_decref(j);
	agentid_bundle_free(b);
	return ret;
}
