/*
 * agentid dev: a DEVELOPMENT-ONLY trust domain for demos and tests.  It
 * makes a self-signed X.509 CA, a JWT-SVID signing key and the trust
 * domain's SPIFFE bundle, and mints X.509-SVIDs and JWT-SVIDs from them.
 * The keys sit in plain files; nothing here is meant for production,
 * where SPIRE (or another SPIFFE implementation) issues SVIDs.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli.h"
#include "dev.h"

#define DEV_CA_DAYS 365
#define DEV_X509_TTL 3600
#define DEV_MAX_TTL (366L * 86400)
#define DEV_ORG "agentid development (NOT FOR PRODUCTION)"

static void
dev_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid dev ca init --trust-domain TD --dir DIR [--force]\n"
	    "       agentid dev x509-svid --dir DIR --id SPIFFE_ID [--out-cert F --out-key F]\n"
	    "                             [--ttl SECS] [--force]\n"
	    "       agentid dev jwt-svid --dir DIR --id SPIFFE_ID --audience AUD [--audience AUD]\n"
	    "                            [--ttl SECS] [--claim K=V]... [--claims-json OBJECT]\n"
	    "       agentid dev sign --key FILE [--alg ALG] [--typ TYP] [--kid KID] [--ttl SECS]\n"
	    "                        [--claim K=V]... [--claims-json OBJECT]\n"
	    "\n"
	    "DEVELOPMENT ONLY.  A throw-away trust domain for demos and tests: its private keys\n"
	    "are plain files in DIR.  Production SVIDs come from SPIRE or another SPIFFE\n"
	    "implementation.\n"
	    "\n"
	    "  ca init    creates DIR with an X.509 CA (ca.pem, ca.key; ECDSA P-256, 1 year,\n"
	    "             URI SAN spiffe://TD), a separate ES256 JWT-SVID signing key (jwt.key),\n"
	    "             the trust domain's SPIFFE bundle holding both (bundle.json) and the\n"
	    "             trust domain name (td)\n"
	    "  x509-svid  issues an X.509-SVID (ECDSA P-256 leaf, one URI SAN, default TTL %d s)\n"
	    "             to DIR/svid/<id>.pem and .key unless --out-cert/--out-key say otherwise\n"
	    "  jwt-svid   prints a JWT-SVID (typ JWT; sub, aud, exp, iat, jti; default TTL %d s)\n"
	    "             signed with DIR/jwt.key; the ID must be in the CA's trust domain\n"
	    "  sign       prints a JWS over arbitrary claims (for tests: access tokens, "
	    "delegation\n"
	    "             chains); adds iat, exp (default TTL %d s) and jti unless given; kid is\n"
	    "             the key's RFC 7638 thumbprint unless --kid is given\n"
	    "\n"
	    "  --claim K=V         adds the string claim K (repeatable)\n"
	    "  --claims-json OBJ   adds the members of a JSON object (values of any type)\n"
	    "  --force             replace existing files\n"
	    "  -h, --help          this text\n",
	    DEV_X509_TTL, DEV_JWT_TTL, DEV_JWT_TTL);
}

enum {
	OPT_TD = 256,
	OPT_DIR,
	OPT_FORCE,
	OPT_ID,
	OPT_OUT_CERT,
	OPT_OUT_KEY,
	OPT_TTL,
	OPT_AUDIENCE,
	OPT_CLAIM,
	OPT_CLAIMS_JSON,
	OPT_KEY,
	OPT_ALG,
	OPT_TYP,
	OPT_KID
};

static const struct option dev_options[] = {
	{ "trust-domain", required_argument, NULL, OPT_TD },
	{ "dir", required_argument, NULL, OPT_DIR },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "id", required_argument, NULL, OPT_ID },
	{ "out-cert", required_argument, NULL, OPT_OUT_CERT },
	{ "out-key", required_argument, NULL, OPT_OUT_KEY },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "audience", required_argument, NULL, OPT_AUDIENCE },
	{ "claim", required_argument, NULL, OPT_CLAIM },
	{ "claims-json", required_argument, NULL, OPT_CLAIMS_JSON },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "alg", required_argument, NULL, OPT_ALG },
	{ "typ", required_argument, NULL, OPT_TYP },
	{ "kid", required_argument, NULL, OPT_KID },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* "DIR/name" in a malloc'd string. */
char *
dev_path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p;

	if ((p = malloc(a + b + 2)) == NULL) {
		cli_err("out of memory");
		return NULL;
	}
	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + 1, name, b + 1);
	return p;
}

static int
make_dir(const char *dir)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		cli_err("cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

void
dev_print_lib_error(const char *what, int r, const struct agentid_error *err)
{
	if (r == AGENTID_EREJECTED)
		cli_err("%s: %s%s%s%s", what, agentid_reason_text(err->reason),
		    err->detail[0] != '\0' ? " (" : "", err->detail,
		    err->detail[0] != '\0' ? ")" : "");
	else
		cli_err("%s: %s", what, agentid_strerror(r));
}

/* Writes a private key as PKCS#8 PEM, mode 0600. */
static int
write_key(const struct agentid_key *key, const char *path, int force)
{
	char *pem = NULL;
	int r;

	if ((r = agentid_key_to_pem(key, 0, &pem)) != 0) {
		cli_err("%s: %s", path, agentid_strerror(r));
		return -1;
	}
	r = cli_write_file(path, pem, strlen(pem), 0600, force);
	OPENSSL_cleanse(pem, strlen(pem));
	agentid_free(pem);
	return r;
}

static int
write_cert(X509 *cert, const char *path, int force)
{
	BIO *bio;
	char *data;
	long len;
	int r = -1;

	if ((bio = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509(bio, cert) != 1
	    || (len = BIO_get_mem_data(bio, &data)) <= 0)
		cli_err("%s: cannot encode the certificate", path);
	else
		r = cli_write_file(path, data, (size_t)len, 0644, force);
	BIO_free(bio);
	return r;
}

/* Reads the trust domain name that "dev ca init" stored in DIR/td. */
static char *
read_td(const char *dir)
{
	struct agentid_error err;
	char *path, *td;
	size_t len;

	if ((path = dev_path_join(dir, "td")) == NULL)
		return NULL;
	td = cli_read_file(path, &len);
	if (td == NULL) {
		cli_err("%s is not a dev CA directory; run 'agentid dev ca init' first", dir);
		free(path);
		return NULL;
	}
	while (len > 0 && (td[len - 1] == '\n' || td[len - 1] == '\r' || td[len - 1] == ' '))
		td[--len] = '\0';
	agentid_error_clear(&err);
	if (agentid_trust_domain_validate(td, len, &err) != 0) {
		cli_err("%s: not a valid trust domain name", path);
		free(td);
		td = NULL;
	}
	free(path);
	return td;
}

/* ---------------------------------------------------------------- certificates */

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext;
	int ok;

	if ((ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

/* A random positive 128-bit serial number (RFC 5280: at most 20 octets, positive). */
static int
set_serial(X509 *x)
{
	unsigned char b[16];
	BIGNUM *bn;
	int r = -1;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	b[0] &= 0x7f;
	b[0] |= 0x40;
	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) != NULL
	    && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL)
		r = 0;
	BN_free(bn);
	return r;
}

/*
 * Builds and signs a certificate for pub.  With ca NULL it is the
 * self-signed development CA of trust domain uri; otherwise an X.509-SVID
 * leaf for SPIFFE ID uri, signed by ca/ca_key.
 */
static X509 *
make_cert(
    EVP_PKEY *pub, const char *uri, X509 *ca, EVP_PKEY *signer, time_t not_before, time_t not_after)
{
	X509 *x = NULL;
	X509_NAME *name = NULL;
	X509V3_CTX ctx;
	char san[AGENTID_SPIFFE_ID_MAX + 8];
	int ok = 0;

	if ((size_t)snprintf(san, sizeof(san), "URI:%s", uri) >= sizeof(san))
		return NULL;
	if ((x = X509_new()) == NULL || X509_set_version(x, X509_VERSION_3) != 1
	    || set_serial(x) != 0 || (name = X509_NAME_new()) == NULL
	    || X509_NAME_add_entry_by_txt(
	           name, "O", MBSTRING_ASC, (const unsigned char *)DEV_ORG, -1, -1, 0)
	        != 1)
		goto out;
	if (ca == NULL
	    && X509_NAME_add_entry_by_txt(
	           name, "CN", MBSTRING_ASC, (const unsigned char *)"agentid dev CA", -1, -1, 0)
	        != 1)
		goto out;
	if (X509_set_subject_name(x, name) != 1
	    || X509_set_issuer_name(x, ca != NULL ? X509_get_subject_name(ca) : name) != 1
	    || ASN1_TIME_set(X509_getm_notBefore(x), not_before) == NULL
	    || ASN1_TIME_set(X509_getm_notAfter(x), not_after) == NULL
	    || X509_set_pubkey(x, pub) != 1)
		goto out;

	X509V3_set_ctx(&ctx, ca != NULL ? ca : x, x, NULL, NULL, 0);
	X509V3_set_ctx_nodb(&ctx);
	if (ca == NULL) {
		/* X509-SVID.md: signing certificates have cA=true and keyCertSign. */
		if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") != 0
		    || add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") != 0
		    || add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0
		    || add_ext(x, &ctx, NID_subject_alt_name, san) != 0)
			goto out;
	} else {
		/*
		 * X509-SVID.md: a leaf has exactly one URI SAN, cA=false,
		 * digitalSignature and neither keyCertSign nor cRLSign.  The EKU lets
		 * the same SVID serve both ends of mTLS.
		 */
		if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != 0
		    || add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") != 0
		    || add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth") != 0
		    || add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0
		    || add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") != 0
		    || add_ext(x, &ctx, NID_subject_alt_name, san) != 0)
			goto out;
	}
	if (X509_sign(x, signer, EVP_sha256()) <= 0)
		goto out;
	ok = 1;
out:
	X509_NAME_free(name);
	if (!ok) {
		cli_err("cannot build the certificate for %s", uri);
		X509_free(x);
		x = NULL;
	}
	return x;
}

/* ---------------------------------------------------------------- ca init */

static int
dev_ca_init(const struct dev_opts *o)
{
	struct agentid_key *ca_key = NULL, *jwt_key = NULL;
	struct agentid_bundle *b = NULL;
	struct agentid_error err;
	char kid[AGENTID_THUMBPRINT_LEN + 1], uri[AGENTID_TRUST_DOMAIN_MAX + 16];
	char *p_cert = NULL, *p_key = NULL, *p_jwt = NULL, *p_bundle = NULL, *p_td = NULL;
	char *bjson = NULL, *tdline = NULL, *nl;
	json_t *bj = NULL;
	X509 *cert = NULL;
	time_t now = time(NULL);
	size_t tdlen;
	int r, ret = EXIT_USAGE;

	agentid_error_clear(&err);
	if (o->td == NULL || o->dir == NULL) {
		cli_err("dev ca init: --trust-domain and --dir are required");
		return EXIT_USAGE;
	}
	tdlen = strlen(o->td);
	if (agentid_trust_domain_validate(o->td, tdlen, &err) != 0) {
		cli_err("--trust-domain %s: %s (%s)", o->td, agentid_reason_text(err.reason),
		    err.detail);
		return EXIT_USAGE;
	}
	snprintf(uri, sizeof(uri), "spiffe://%s", o->td);
	if (make_dir(o->dir) != 0 || (p_cert = dev_path_join(o->dir, "ca.pem")) == NULL
	    || (p_key = dev_path_join(o->dir, "ca.key")) == NULL
	    || (p_jwt = dev_path_join(o->dir, "jwt.key")) == NULL
	    || (p_bundle = dev_path_join(o->dir, "bundle.json")) == NULL
	    || (p_td = dev_path_join(o->dir, "td")) == NULL || (tdline = malloc(tdlen + 2)) == NULL)
		goto out;
	memcpy(tdline, o->td, tdlen);
	memcpy(tdline + tdlen, "\n", 2);

	if ((r = agentid_key_generate(AGENTID_ALG_ES256, &ca_key)) != 0
	    || (r = agentid_key_generate(AGENTID_ALG_ES256, &jwt_key)) != 0
	    || (r = agentid_key_thumbprint(jwt_key, kid, sizeof(kid))) != 0
	    || (r = agentid_key_set_kid(jwt_key, kid)) != 0
	    || (r = agentid_key_set_use(jwt_key, "jwt-svid")) != 0) {
		cli_err("dev ca init: %s", agentid_strerror(r));
		goto out;
	}
	if ((cert = make_cert(agentid_key_evp(ca_key), uri, NULL, agentid_key_evp(ca_key), now - 60,
	         now + (time_t)DEV_CA_DAYS * 86400))
	    == NULL)
		goto out;
	if ((r = agentid_bundle_new(o->td, &b)) != 0
	    || (r = agentid_bundle_add_x509_authority(b, cert)) != 0
	    || (r = agentid_bundle_add_jwt_key(b, jwt_key)) != 0
	    || (r = agentid_bundle_set_sequence(b, 1)) != 0
	    || (r = agentid_bundle_to_json(b, &bj)) != 0) {
		cli_err("dev ca init: bundle: %s", agentid_strerror(r));
		goto out;
	}
	if ((bjson = json_dumps(bj, JSON_INDENT(2))) == NULL
	    || (nl = realloc(bjson, strlen(bjson) + 2)) == NULL) {
		cli_err("out of memory");
		goto out;
	}
	bjson = nl;
	memcpy(bjson + strlen(bjson), "\n", 2);
	/* Keys first: a directory with a certificate but no key is of no use. */
	if (write_key(ca_key, p_key, o->force) != 0 || write_key(jwt_key, p_jwt, o->force) != 0
	    || write_cert(cert, p_cert, o->force) != 0
	    || cli_write_file(p_bundle, bjson, strlen(bjson), 0644, o->force) != 0
	    || cli_write_file(p_td, tdline, tdlen + 1, 0644, o->force) != 0)
		goto out;

	printf("DEVELOPMENT ONLY -- dev trust domain %s created in %s (not for production)\n",
	    o->td, o->dir);
	printf("  CA certificate   %s\n", p_cert);
	printf("  CA key           %s\n", p_key);
	printf("  JWT-SVID key     %s (ES256, kid %s)\n", p_jwt, kid);
	printf("  bundle           %s\n", p_bundle);
	ret = 0;
out:
	X509_free(cert);
	json_decref(bj);
	free(bjson);
	agentid_bundle_free(b);
	agentid_key_free(ca_key);
	agentid_key_free(jwt_key);
	free(p_cert);
	free(p_key);
	free(p_jwt);
	free(p_bundle);
	free(p_td);
	free(tdline);
	return ret;
}

/* ---------------------------------------------------------------- SVIDs */

/*
 * Validates id and checks that it belongs to the dev CA's trust domain;
 * returns that trust domain (malloc'd) or NULL with a message.
 */
char *
dev_check_id(const char *dir, const char *id)
{
	struct agentid_spiffe_id sid;
	struct agentid_error err;
	char *td;

	agentid_error_clear(&err);
	if (id == NULL) {
		cli_err("--id SPIFFE_ID is required");
		return NULL;
	}
	if (agentid_spiffe_id_parse(id, strlen(id), &sid, &err) != 0) {
		fprintf(stderr, "agentid: --id: %s (%s): ", agentid_reason_text(err.reason),
		    err.detail);
		cli_print_sanitized(stderr, id);
		fputc('\n', stderr);
		return NULL;
	}
	if ((td = read_td(dir)) == NULL)
		return NULL;
	if (sid.td_len != strlen(td) || memcmp(sid.td, td, sid.td_len) != 0) {
		cli_err("%s is not in the dev CA's trust domain %s", id, td);
		free(td);
		return NULL;
	}
	return td;
}

/* "spiffe://example.org/agent/a" -> "example.org_agent_a" (a safe file name). */
static char *
sanitize_id(const char *id)
{
	const char *s = id + strlen("spiffe://");
	char *out, *p;

	if ((out = strdup(s)) == NULL) {
		cli_err("out of memory");
		return NULL;
	}
	for (p = out; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
		        || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'))
			*p = '_';
	if (out[0] == '.')
		out[0] = '_';
	return out;
}

static int
dev_x509_svid(const struct dev_opts *o)
{
	struct agentid_key *ca_key = NULL, *leaf_key = NULL;
	struct agentid_error err;
	STACK_OF(X509) *ca_chain = NULL;
	X509 *ca = NULL, *leaf = NULL;
	char *td = NULL, *p_ca = NULL, *p_cakey = NULL, *svid_dir = NULL, *name = NULL;
	char *p_cert = NULL, *p_key = NULL, *fname = NULL;
	const char *out_cert, *out_key;
	time_t now = time(NULL), not_after;
	const ASN1_TIME *ca_end;
	int r, day, sec, ret = EXIT_USAGE;

	agentid_error_clear(&err);
	if (o->dir == NULL) {
		cli_err("dev x509-svid: --dir is required");
		return EXIT_USAGE;
	}
	if ((o->out_cert == NULL) != (o->out_key == NULL)) {
		cli_err("dev x509-svid: give both --out-cert and --out-key, or neither");
		return EXIT_USAGE;
	}
	if ((td = dev_check_id(o->dir, o->id)) == NULL)
		goto out;
	if ((p_ca = dev_path_join(o->dir, "ca.pem")) == NULL
	    || (p_cakey = dev_path_join(o->dir, "ca.key")) == NULL)
		goto out;
	if ((r = agentid_x509_load_pem_file(p_ca, &ca, &ca_chain, &err)) != 0) {
		dev_print_lib_error(p_ca, r, &err);
		goto out;
	}
	if ((r = agentid_key_load_file(p_cakey, &ca_key, &err)) != 0) {
		dev_print_lib_error(p_cakey, r, &err);
		goto out;
	}
	if ((r = agentid_key_generate(AGENTID_ALG_ES256, &leaf_key)) != 0) {
		cli_err("dev x509-svid: %s", agentid_strerror(r));
		goto out;
	}
	/* An SVID never outlives the CA that signed it. */
	not_after = now + (time_t)(o->ttl > 0 ? o->ttl : DEV_X509_TTL);
	ca_end = X509_get0_notAfter(ca);
	if (ASN1_TIME_diff(&day, &sec, NULL, ca_end) == 1
	    && (long long)day * 86400 + sec < (long long)(not_after - now))
		not_after = now + (time_t)day * 86400 + sec;
	if (not_after <= now) {
		cli_err("the dev CA in %s has expired; run 'agentid dev ca init --force'", o->dir);
		goto out;
	}
	if ((leaf = make_cert(agentid_key_evp(leaf_key), o->id, ca, agentid_key_evp(ca_key),
	         now - 60, not_after))
	    == NULL)
		goto out;

	if (o->out_cert != NULL) {
		out_cert = o->out_cert;
		out_key = o->out_key;
	} else {
		if ((svid_dir = dev_path_join(o->dir, "svid")) == NULL || make_dir(svid_dir) != 0
		    || (name = sanitize_id(o->id)) == NULL)
			goto out;
		if ((fname = malloc(strlen(name) + 5)) == NULL) {
			cli_err("out of memory");
			goto out;
		}
		snprintf(fname, strlen(name) + 5, "%s.pem", name);
		if ((p_cert = dev_path_join(svid_dir, fname)) == NULL)
			goto out;
		snprintf(fname, strlen(name) + 5, "%s.key", name);
		if ((p_key = dev_path_join(svid_dir, fname)) == NULL)
			goto out;
		out_cert = p_cert;
		out_key = p_key;
	}
	if (write_key(leaf_key, out_key, o->force) != 0
	    || write_cert(leaf, out_cert, o->force) != 0)
		goto out;
	printf("certificate: %s\n", out_cert);
	printf("key: %s\n", out_key);
	ret = 0;
out:
	X509_free(leaf);
	X509_free(ca);
	sk_X509_pop_free(ca_chain, X509_free);
	agentid_key_free(ca_key);
	agentid_key_free(leaf_key);
	free(td);
	free(p_ca);
	free(p_cakey);
	free(svid_dir);
	free(name);
	free(fname);
	free(p_cert);
	free(p_key);
	return ret;
}

/* ---------------------------------------------------------------- dispatch */

int
cmd_dev(int argc, char **argv)
{
	struct dev_opts o;
	const char *sub;
	int c, ret = EXIT_USAGE, ca_init = 0;

	memset(&o, 0, sizeof(o));
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		dev_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	sub = argv[1];
	if (strcmp(sub, "ca") == 0) {
		if (argc < 3 || strcmp(argv[2], "init") != 0) {
			cli_err("dev ca: the only subcommand is 'init'");
			return EXIT_USAGE;
		}
		ca_init = 1;
		argc--;
		argv++;
	} else if (strcmp(sub, "x509-svid") != 0 && strcmp(sub, "jwt-svid") != 0
	    && strcmp(sub, "sign") != 0) {
		cli_err("dev: unknown subcommand '%s'", sub);
		dev_usage(stderr);
		return EXIT_USAGE;
	}
	/* argv[1] is now the subcommand name, which getopt sees as argv[0]. */
	argc--;
	argv++;
	o.auds = calloc((size_t)argc, sizeof(*o.auds));
	o.claims = calloc((size_t)argc, sizeof(*o.claims));
	if (o.auds == NULL || o.claims == NULL) {
		cli_err("out of memory");
		goto out;
	}
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", dev_options, NULL)) != -1) {
		switch (c) {
		case OPT_TD:
			o.td = optarg;
			break;
		case OPT_DIR:
			o.dir = optarg;
			break;
		case OPT_FORCE:
			o.force = 1;
			break;
		case OPT_ID:
			o.id = optarg;
			break;
		case OPT_OUT_CERT:
			o.out_cert = optarg;
			break;
		case OPT_OUT_KEY:
			o.out_key = optarg;
			break;
		case OPT_AUDIENCE:
			o.auds[o.n_auds++] = optarg;
			break;
		case OPT_CLAIM:
			o.claims[o.n_claims++] = optarg;
			break;
		case OPT_CLAIMS_JSON:
			o.claims_json = optarg;
			break;
		case OPT_KEY:
			o.key = optarg;
			break;
		case OPT_ALG:
			o.alg = optarg;
			break;
		case OPT_TYP:
			o.typ = optarg;
			break;
		case OPT_KID:
			o.kid = optarg;
			break;
		case OPT_TTL:
			if (cli_parse_long(optarg, 1, DEV_MAX_TTL, &o.ttl) != 0) {
				cli_err("--ttl wants seconds from 1 to %ld, not '%s'", DEV_MAX_TTL,
				    optarg);
				goto out;
			}
			break;
		case 'h':
			dev_usage(stdout);
			ret = 0;
			goto out;
		default:
			dev_usage(stderr);
			goto out;
		}
	}
	if (optind != argc) {
		cli_err("dev: unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (ca_init)
		ret = dev_ca_init(&o);
	else if (strcmp(sub, "x509-svid") == 0)
		ret = dev_x509_svid(&o);
	else if (strcmp(sub, "jwt-svid") == 0)
		ret = dev_jwt_svid(&o);
	else
		ret = dev_sign(&o);
out:
	free(o.auds);
	free(o.claims);
	return ret;
}
