/*
 * agentid audit: append records to, verify and trace tamper-evident audit
 * logs (doc/audit-format.md).
 */
#include "config.h"

#include <ctype.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cli.h"

/* Pseudo-token under which a task's events that carry no jti are listed. */
#define TRACE_TASK_NODE "(task)"

static void
audit_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid audit append --file FILE [--key KEY] --event NAME [--field K=V]...\n"
	    "                            [--json OBJECT] [--stdin] [options]\n"
	    "       agentid audit verify [--key PUB] [--checkpoints FILE]... [options] FILE...\n"
	    "       agentid audit trace (--jti JTI | --task TASK) [--json] [--key PUB] FILE...\n"
	    "       agentid audit vkey --key KEY [--origin NAME]\n"
	    "\n"
	    "Audit logs are hash-chained JSON Lines with signed checkpoints (C2SP signed\n"
	    "notes); see doc/audit-format.md.  Run 'agentid audit SUBCOMMAND --help'.\n");
}

/* ---------------------------------------------------------------- keys */

/*
 * Loads a checkpoint verification key: a PEM (public or private) key, or a
 * signed-note verifier key "name+hexid+base64(0x01||pub)" in a file.  For
 * the latter *name is set to the key's name.
 */
static struct agentid_key *
load_verify_key(const char *path, char **name)
{
	struct agentid_key *key = NULL;
	struct agentid_error err;
	unsigned char raw[64];
	char *buf, *p1, *p2;
	size_t len;
	EVP_PKEY *pk;
	int n;

	*name = NULL;
	if ((buf = cli_read_file(path, &len)) == NULL)
		return NULL;
	if (strstr(buf, "-----BEGIN") != NULL) {
		agentid_error_clear(&err);
		if (agentid_key_from_pem(buf, len, &key, &err) != 0) {
			cli_err("%s: not a usable key: %s", path, err.detail);
			key = NULL;
		}
		free(buf);
		return key;
	}
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	/* name+hexid+base64: the base64 part may itself contain '+'. */
	if ((p1 = strchr(buf, '+')) == NULL || (p2 = strchr(p1 + 1, '+')) == NULL) {
		cli_err("%s: neither a PEM key nor a signed-note verifier key", path);
		free(buf);
		return NULL;
	}
	n = EVP_DecodeBlock(raw, (const unsigned char *)p2 + 1, (int)strlen(p2 + 1));
	if (n < 33 || raw[0] != 0x01
	    || (pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw + 1, 32)) == NULL) {
		cli_err("%s: not an Ed25519 signed-note verifier key", path);
		free(buf);
		return NULL;
	}
	if (agentid_key_from_evp(pk, &key) != 0)
		key = NULL;
	EVP_PKEY_free(pk);
	*p1 = '\0';
	*name = strdup(buf);
	free(buf);
	return key;
}

/* ---------------------------------------------------------------- append */

static void
append_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid audit append --file FILE [--key KEY] --event NAME [--field K=V]...\n"
	    "                            [--json OBJECT] [--stdin] [options]\n"
	    "\n"
	    "Appends records through the library's writer: one new stream (stream.start,\n"
	    "the records, stream.end, and a final signed checkpoint when --key is given).\n"
	    "\n"
	    "options:\n"
	    "  --file FILE             the audit log (created when absent; required)\n"
	    "  --key KEY               Ed25519 private key (PEM) that signs checkpoints\n"
	    "  --event NAME            event name, e.g. access.allowed (default for --stdin)\n"
	    "  --field K=V             a string member of the record (repeatable)\n"
	    "  --json OBJECT           members of the record as a JSON object\n"
	    "  --stdin                 append one record per line of JSON objects on stdin\n"
	    "  --component NAME        writer component in the stream header (default cli)\n"
	    "  --origin NAME           checkpoint origin / note key name\n"
	    "                          (default agentid-audit/<host>)\n"
	    "  --checkpoint-every N    records between checkpoints (default 1000, 0 = only at "
	    "end)\n"
	    "  --checkpoint-seconds N  seconds between checkpoints (default 60, 0 = never)\n"
	    "  --fsync MODE            record, checkpoint (default) or never\n"
	    "  --rotate-bytes N        rotate the file past N bytes (default 0 = never)\n"
	    "  --checkpoints FILE      also append every checkpoint to FILE (a witness copy)\n"
	    "  -h, --help              this text\n"
	    "\n"
	    "The writer's own members (ts, stream, seq, prev, hash) cannot be given.\n");
}

enum {
	OPT_FILE = 256,
	OPT_KEY,
	OPT_EVENT,
	OPT_FIELD,
	OPT_JSON,
	OPT_STDIN,
	OPT_COMPONENT,
	OPT_ORIGIN,
	OPT_CP_EVERY,
	OPT_CP_SECONDS,
	OPT_FSYNC,
	OPT_ROTATE,
	OPT_CHECKPOINTS,
	OPT_KEY_NAME,
	OPT_STRICT,
	OPT_REQUIRE_CP,
	OPT_JTI,
	OPT_TASK,
	OPT_NO_VERIFY,
};

static const struct option append_options[] = {
	{ "file", required_argument, NULL, OPT_FILE },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "event", required_argument, NULL, OPT_EVENT },
	{ "field", required_argument, NULL, OPT_FIELD },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "stdin", no_argument, NULL, OPT_STDIN },
	{ "component", required_argument, NULL, OPT_COMPONENT },
	{ "origin", required_argument, NULL, OPT_ORIGIN },
	{ "checkpoint-every", required_argument, NULL, OPT_CP_EVERY },
	{ "checkpoint-seconds", required_argument, NULL, OPT_CP_SECONDS },
	{ "fsync", required_argument, NULL, OPT_FSYNC },
	{ "rotate-bytes", required_argument, NULL, OPT_ROTATE },
	{ "checkpoints", required_argument, NULL, OPT_CHECKPOINTS },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int
append_one(struct agentid_audit *a, json_t *rec, const char *event, const char *where)
{
	int r;

	if (!json_is_object(rec)) {
		cli_err("audit append: %s: not a JSON object", where);
		return EXIT_USAGE;
	}
	if (json_object_get(rec, "event") == NULL && event != NULL)
		json_object_set_new(rec, "event", json_string(event));
	if ((r = agentid_audit_append_json(a, rec)) != 0) {
		if (r == AGENTID_EINVAL)
			cli_err("audit append: %s: a record needs a string \"event\" and may not "
			        "set ts, stream, seq, prev or hash",
			    where);
		else
			cli_err("audit append: %s: %s", where, agentid_strerror(r));
		return r == AGENTID_EINVAL ? EXIT_USAGE : EXIT_INVALID;
	}
	return 0;
}

static int
audit_append(int argc, char **argv)
{
	struct agentid_audit_config cfg;
	struct agentid_audit *a = NULL;
	struct agentid_error err;
	const char *event = NULL, *json = NULL;
	char **fields = NULL, *line = NULL, where[64];
	size_t nfields = 0, cap = 0, lineno = 0;
	ssize_t n;
	long long v;
	json_t *rec = NULL, *j;
	json_error_t jerr;
	int c, use_stdin = 0, ret = EXIT_USAGE, r;

	agentid_audit_config_init(&cfg);
	cfg.component = "cli";
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", append_options, NULL)) != -1) {
		switch (c) {
		case OPT_FILE:
			cfg.path = optarg;
			break;
		case OPT_KEY:
			cfg.signing_key_path = optarg;
			break;
		case OPT_EVENT:
			event = optarg;
			break;
		case OPT_FIELD:
			if (strchr(optarg, '=') == NULL || optarg[0] == '=') {
				cli_err("audit append: --field takes K=V");
				goto out;
			}
			fields = realloc(fields, (nfields + 1) * sizeof(*fields));
			fields[nfields++] = optarg;
			break;
		case OPT_JSON:
			json = optarg;
			break;
		case OPT_STDIN:
			use_stdin = 1;
			break;
		case OPT_COMPONENT:
			cfg.component = optarg;
			break;
		case OPT_ORIGIN:
			cfg.origin = optarg;
			break;
		case OPT_CP_EVERY:
			if (cli_parse_long(optarg, 0, 100000000, &v) != 0) {
				cli_err("audit append: bad --checkpoint-every");
				goto out;
			}
			cfg.checkpoint_records = (unsigned)v;
			break;
		case OPT_CP_SECONDS:
			if (cli_parse_long(optarg, 0, 86400 * 365, &v) != 0) {
				cli_err("audit append: bad --checkpoint-seconds");
				goto out;
			}
			cfg.checkpoint_seconds = (unsigned)v;
			break;
		case OPT_FSYNC:
			if (agentid_audit_fsync_from_name(optarg, &cfg.fsync) != 0) {
				cli_err("audit append: --fsync is record, checkpoint or never");
				goto out;
			}
			break;
		case OPT_ROTATE:
			if (cli_parse_long(optarg, 0, (long long)1 << 50, &v) != 0) {
				cli_err("audit append: bad --rotate-bytes");
				goto out;
			}
			cfg.rotate_bytes = (uint64_t)v;
			break;
		case OPT_CHECKPOINTS:
			cfg.checkpoint_copy_path = optarg;
			break;
		case 'h':
			append_usage(stdout);
			ret = 0;
			goto out;
		default:
			append_usage(stderr);
			goto out;
		}
	}
	if (optind != argc || cfg.path == NULL || (!use_stdin && event == NULL)) {
		cli_err("audit append: --file and --event (or --stdin) are required");
		append_usage(stderr);
		goto out;
	}
	if (use_stdin && (json != NULL || nfields != 0)) {
		cli_err(
		    "audit append: --stdin takes whole records; --json and --field do not apply");
		goto out;
	}
	if (!use_stdin) {
		if (json != NULL) {
			if ((rec = json_loads(json, JSON_REJECT_DUPLICATES, &jerr)) == NULL
			    || !json_is_object(rec)) {
				cli_err("audit append: --json is not a JSON object");
				goto out;
			}
		} else {
			rec = json_object();
		}
		for (size_t i = 0; i < nfields; i++) {
			char *eq = strchr(fields[i], '=');
			*eq = '\0';
			j = json_string(eq + 1);
			*eq = '=';
			if (j == NULL) {
				cli_err("audit append: --field %s: value is not UTF-8", fields[i]);
				goto out;
			}
			*eq = '\0';
			json_object_set_new(rec, fields[i], j);
			*eq = '=';
		}
		if (json_object_get(rec, "event") == NULL)
			json_object_set_new(rec, "event", json_string(event));
	}

	agentid_error_clear(&err);
	if ((r = agentid_audit_open(&cfg, &a, &err)) != 0) {
		cli_err(
		    "audit append: %s", err.detail[0] != '\0' ? err.detail : agentid_strerror(r));
		goto out;
	}
	ret = 0;
	if (!use_stdin) {
		ret = append_one(a, rec, event, "record");
	} else {
		while (ret == 0 && (n = getline(&line, &cap, stdin)) > 0) {
			lineno++;
			while (n > 0 && isspace((unsigned char)line[n - 1]))
				line[--n] = '\0';
			if (n == 0)
				continue;
			snprintf(where, sizeof(where), "stdin line %zu", lineno);
			if ((j = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &jerr))
			    == NULL) {
				cli_err("audit append: %s: not JSON: %s", where, jerr.text);
				ret = EXIT_USAGE;
				break;
			}
			ret = append_one(a, j, event, where);
			json_decref(j);
		}
	}
	if (agentid_audit_close(a) != 0 && ret == 0) {
		cli_err("audit append: cannot finish the stream");
		ret = EXIT_INVALID;
	}
out:
	free(line);
	free(fields);
	json_decref(rec);
	return ret;
}

/* ---------------------------------------------------------------- verify */

static void
verify_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid audit verify [--key PUB] [--checkpoints FILE]... [options] FILE...\n"
	    "\n"
	    "Checks every stream's hash chain and every checkpoint's signed note.  Give rotated\n"
	    "files oldest first, then the live file.  Exit 0 and a summary when intact; exit 1\n"
	    "naming the first bad record (file, line, stream, seq, what is wrong).\n"
	    "\n"
	    "options:\n"
	    "  --key PUB            the trusted checkpoint key: Ed25519 PEM (public or private)\n"
	    "                       or a signed-note verifier key (name+id+base64) in a file.\n"
	    "                       Without it signatures are checked against the keys the log\n"
	    "                       itself names, which proves nothing against a full rewrite.\n"
	    "  --key-name NAME      signatures must carry this note key name\n"
	    "  --checkpoints FILE   witness copies of checkpoints (--checkpoints of append):\n"
	    "                       detects truncation of the records they cover\n"
	    "  --strict             a torn (unparsable) line is an error, not a warning\n"
	    "  --require-checkpoint every stream must end with a trusted checkpoint\n"
	    "  --json               print the summary as JSON on stdout\n"
	    "  -h, --help           this text\n");
}

static const struct option verify_options[] = {
	{ "key", required_argument, NULL, OPT_KEY },
	{ "key-name", required_argument, NULL, OPT_KEY_NAME },
	{ "checkpoints", required_argument, NULL, OPT_CHECKPOINTS },
	{ "strict", no_argument, NULL, OPT_STRICT },
	{ "require-checkpoint", no_argument, NULL, OPT_REQUIRE_CP },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static json_t *
summary_json(const struct agentid_audit_summary *s, int ok)
{
	json_t *j = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "intact",
	    ok, "files", (json_int_t)s->files, "lines", (json_int_t)s->lines, "streams",
	    (json_int_t)s->streams, "streams_closed", (json_int_t)s->streams_closed,
	    "streams_unattested", (json_int_t)s->streams_unattested, "records",
	    (json_int_t)s->records, "checkpoints", (json_int_t)s->checkpoints,
	    "checkpoints_trusted", (json_int_t)s->checkpoints_trusted, "witness_checkpoints",
	    (json_int_t)s->witness_checkpoints, "torn", (json_int_t)s->torn);

	if (j != NULL && s->torn != 0)
		json_object_set_new(j, "first_torn",
		    json_pack(
		        "{s:s, s:I}", "file", s->torn_file, "line", (json_int_t)s->torn_line));
	if (j != NULL && !ok)
		json_object_set_new(j, "error",
		    json_pack("{s:s, s:s, s:I, s:s, s:I, s:s}", "fault",
		        agentid_audit_fault_name(s->fault), "file", s->file, "line",
		        (json_int_t)s->line, "stream", s->stream, "seq", (json_int_t)s->seq, "what",
		        s->what));
	return j;
}

/* Runs the verification and prints its outcome; returns the exit status. */
static int
run_verify(const char *const *files, size_t n, const struct agentid_audit_verify_opts *o, int json,
    int quiet)
{
	struct agentid_audit_summary sum;
	struct agentid_error err;
	json_t *j;
	int r;

	agentid_error_clear(&err);
	r = agentid_audit_verify_files(files, n, o, &sum, &err);
	if (r != 0 && r != AGENTID_EREJECTED) {
		cli_err(
		    "audit verify: %s", err.detail[0] != '\0' ? err.detail : agentid_strerror(r));
		return EXIT_USAGE;
	}
	if (json && !quiet) {
		j = summary_json(&sum, r == 0);
		cli_print_json(j);
		json_decref(j);
	}
	if (r != 0) {
		fprintf(stderr, "agentid: audit verify: ");
		cli_print_sanitized(stderr, sum.file);
		fprintf(stderr, ":%zu: stream ", sum.line);
		cli_print_sanitized(stderr, sum.stream[0] != '\0' ? sum.stream : "?");
		if (sum.seq >= 0)
			fprintf(stderr, " seq %lld", (long long)sum.seq);
		fprintf(stderr, ": %s: ", agentid_audit_fault_name(sum.fault));
		cli_print_sanitized(stderr, sum.what);
		fputc('\n', stderr);
		return EXIT_INVALID;
	}
	if (sum.torn != 0) {
		fprintf(stderr, "agentid: warning: %zu torn line(s) skipped (first at ", sum.torn);
		cli_print_sanitized(stderr, sum.torn_file);
		fprintf(stderr, ":%zu): a writer died inside write(2)\n", sum.torn_line);
	}
	if (o->key == NULL && sum.checkpoints != 0 && !quiet)
		fprintf(stderr,
		    "agentid: warning: no --key: checkpoints were checked against the "
		    "keys the log names, not a trusted key\n");
	if (!json && !quiet) {
		printf("intact: %zu file%s, %zu stream%s (%zu closed), %zu records, "
		       "%zu checkpoints (%zu trusted)",
		    sum.files, sum.files == 1 ? "" : "s", sum.streams, sum.streams == 1 ? "" : "s",
		    sum.streams_closed, sum.records, sum.checkpoints, sum.checkpoints_trusted);
		if (o->n_checkpoint_files != 0)
			printf(", %zu witness checkpoints matched", sum.witness_checkpoints);
		if (o->key != NULL && sum.streams_unattested != 0)
			printf(", %zu stream%s without a trusted checkpoint",
			    sum.streams_unattested, sum.streams_unattested == 1 ? "" : "s");
		if (sum.torn != 0)
			printf(", %zu torn line%s skipped", sum.torn, sum.torn == 1 ? "" : "s");
		printf("\n");
	}
	return 0;
}

static int
audit_verify(int argc, char **argv)
{
	struct agentid_audit_verify_opts o;
	struct agentid_key *key = NULL;
	const char *keypath = NULL, **cps = NULL;
	char *vname = NULL;
	size_t ncps = 0;
	int c, json = 0, ret = EXIT_USAGE;

	memset(&o, 0, sizeof(o));
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", verify_options, NULL)) != -1) {
		switch (c) {
		case OPT_KEY:
			keypath = optarg;
			break;
		case OPT_KEY_NAME:
			o.key_name = optarg;
			break;
		case OPT_CHECKPOINTS:
			cps = realloc(cps, (ncps + 1) * sizeof(*cps));
			cps[ncps++] = optarg;
			break;
		case OPT_STRICT:
			o.strict = 1;
			break;
		case OPT_REQUIRE_CP:
			o.require_checkpoint = 1;
			break;
		case OPT_JSON:
			json = 1;
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
	if (optind >= argc) {
		cli_err("audit verify: no files");
		verify_usage(stderr);
		goto out;
	}
	if (keypath != NULL) {
		if ((key = load_verify_key(keypath, &vname)) == NULL)
			goto out;
		if (o.key_name == NULL)
			o.key_name = vname;
	}
	if (o.require_checkpoint && key == NULL) {
		cli_err("audit verify: --require-checkpoint needs --key");
		goto out;
	}
	o.key = key;
	o.checkpoint_files = cps;
	o.n_checkpoint_files = ncps;
	ret = run_verify((const char *const *)argv + optind, (size_t)(argc - optind), &o, json, 0);
out:
	agentid_key_free(key);
	free(vname);
	free(cps);
	return ret;
}

/* ---------------------------------------------------------------- trace */

static void
trace_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid audit trace (--jti JTI | --task TASK) [--json] [--key PUB] FILE...\n"
	    "\n"
	    "Rebuilds the delegation tree from the exchange.granted records (which token was\n"
	    "derived from which, by which agent, with which scopes) and lists every action\n"
	    "recorded under each token (access.*, login.*, exchange.denied, token.revoked),\n"
	    "in time order.  The files are verified first (as 'audit verify' would).\n"
	    "\n"
	    "options:\n"
	    "  --jti JTI      the tree below this token\n"
	    "  --task TASK    every token issued for this task\n"
	    "  --json         machine-readable output\n"
	    "  --key PUB      trusted checkpoint key for the verification\n"
	    "  --no-verify    skip the verification\n"
	    "  -h, --help     this text\n");
}

static const struct option trace_options[] = {
	{ "jti", required_argument, NULL, OPT_JTI },
	{ "task", required_argument, NULL, OPT_TASK },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "no-verify", no_argument, NULL, OPT_NO_VERIFY },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* A token of the tree. */
struct tnode {
	const char *jti;
	json_t *granted; /* the exchange.granted record, or NULL */
	const char *parent;
	json_t *items; /* actions and child tokens, sorted by ts: [{"ts":..,"rec"|"child":..}] */
	int selected;
	int placed; /* attached under a parent that is printed */
};

struct trace {
	struct tnode *n;
	size_t nn, cap;
	json_t *index; /* jti -> node number */
	json_t *actions; /* records that are not grants */
};

static const char *
sget(const json_t *rec, const char *k)
{
	return json_string_value(json_object_get(rec, k));
}

static size_t
node_for(struct trace *t, const char *jti)
{
	json_t *v = json_object_get(t->index, jti);
	struct tnode *nn;

	if (v != NULL)
		return (size_t)json_integer_value(v);
	if (t->nn == t->cap) {
		t->cap = t->cap != 0 ? t->cap * 2 : 64;
		nn = realloc(t->n, t->cap * sizeof(*nn));
		if (nn == NULL) {
			cli_err("out of memory");
			exit(EXIT_USAGE);
		}
		t->n = nn;
	}
	memset(&t->n[t->nn], 0, sizeof(t->n[0]));
	json_object_set_new(t->index, jti, json_integer((json_int_t)t->nn));
	/* The key string inside the index object lives as long as the index. */
	t->n[t->nn].jti = json_object_iter_key(json_object_iter_at(t->index, jti));
	t->n[t->nn].items = json_array();
	return t->nn++;
}

static int
collect(void *arg, const json_t *rec, const char *file, size_t line)
{
	struct trace *t = arg;
	const char *ev = sget(rec, "event"), *jti = sget(rec, "jti");
	size_t i;

	(void)file;
	(void)line;
	if (ev == NULL || strcmp(ev, "stream.start") == 0 || strcmp(ev, "stream.end") == 0
	    || strcmp(ev, "checkpoint") == 0)
		return 0;
	if (strcmp(ev, "exchange.granted") == 0 && jti != NULL) {
		i = node_for(t, jti);
		if (t->n[i].granted == NULL) {
			t->n[i].granted = json_incref((json_t *)rec);
			t->n[i].parent = sget(rec, "parent_jti");
		}
		return 0;
	}
	if (jti != NULL || sget(rec, "parent_jti") != NULL || sget(rec, "task") != NULL)
		json_array_append(t->actions, (json_t *)rec);
	return 0;
}

static int
by_ts(const void *a, const void *b)
{
	const char *x = sget(*(json_t *const *)a, "ts"), *y = sget(*(json_t *const *)b, "ts");

	return strcmp(x != NULL ? x : "", y != NULL ? y : "");
}

static void
sort_items(json_t *items)
{
	size_t n = json_array_size(items), i;
	json_t **v;

	if (n < 2)
		return;
	v = malloc(n * sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(items, i));
	qsort(v, n, sizeof(*v), by_ts);
	json_array_clear(items);
	for (i = 0; i < n; i++)
		json_array_append_new(items, v[i]);
	free(v);
}

static void
print_field(const json_t *rec, const char *label, const char *k)
{
	const json_t *v = json_object_get(rec, k);
	char *s;

	if (v == NULL)
		return;
	printf("  %s ", label);
	if (json_is_string(v)) {
		cli_print_sanitized(stdout, json_string_value(v));
	} else if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) != NULL) {
		cli_print_sanitized(stdout, s);
		free(s);
	}
}

static void
print_node(struct trace *t, size_t i, const char *indent, int depth)
{
	struct tnode *n = &t->n[i];
	char sub[512];
	size_t k, cnt = json_array_size(n->items);

	if (strcmp(n->jti, TRACE_TASK_NODE) == 0) {
		printf("task-wide events (not tied to one token)");
	} else if (n->granted != NULL) {
		printf("token ");
		cli_print_sanitized(stdout, n->jti);
		print_field(n->granted, "agent", "agent");
		print_field(n->granted, "subject", "subject");
		print_field(n->granted, "scope", "scope");
		print_field(n->granted, "aud", "aud");
		print_field(n->granted, "task", "task");
		print_field(n->granted, "chain", "chain");
		print_field(n->granted, "issued", "ts");
	} else {
		printf("token ");
		cli_print_sanitized(stdout, n->jti);
		printf("  (not issued in these logs)");
	}
	printf("\n");
	if (depth > 64)
		return;
	for (k = 0; k < cnt; k++) {
		json_t *it = json_array_get(n->items, k);
		json_t *child = json_object_get(it, "child");
		int last = k + 1 == cnt;

		printf("%s%s", indent, last ? "`-- " : "|-- ");
		snprintf(sub, sizeof(sub), "%s%s", indent, last ? "    " : "|   ");
		if (child != NULL) {
			print_node(t, (size_t)json_integer_value(child), sub, depth + 1);
			continue;
		}
		it = json_object_get(it, "rec");
		cli_print_sanitized(stdout, sget(it, "ts") != NULL ? sget(it, "ts") : "?");
		printf(" ");
		cli_print_sanitized(stdout, sget(it, "event") != NULL ? sget(it, "event") : "?");
		print_field(it, "agent", "agent");
		print_field(it, "resource", "resource");
		print_field(it, "decision", "decision");
		print_field(it, "reason", "reason");
		print_field(it, "scope", "scope");
		print_field(it, "scope_requested", "requested");
		print_field(it, "client", "client");
		printf("\n");
	}
}

static json_t *
node_json(struct trace *t, size_t i, int depth)
{
	struct tnode *n = &t->n[i];
	json_t *o = json_pack("{s:s, s:O, s:[], s:[]}", "jti", n->jti, "granted",
	    n->granted != NULL ? n->granted : json_null(), "actions", "children");
	size_t k;

	for (k = 0; k < json_array_size(n->items) && depth < 64; k++) {
		json_t *it = json_array_get(n->items, k), *child = json_object_get(it, "child");
		if (child != NULL)
			json_array_append_new(json_object_get(o, "children"),
			    node_json(t, (size_t)json_integer_value(child), depth + 1));
		else
			json_array_append(
			    json_object_get(o, "actions"), json_object_get(it, "rec"));
	}
	return o;
}

/* 1 when node i or one of its ancestors is jti (bounded: cycles cannot loop forever). */
static int
descends_from(struct trace *t, size_t i, const char *jti)
{
	json_t *v;
	int hops;

	for (hops = 0; hops < 256; hops++) {
		if (strcmp(t->n[i].jti, jti) == 0)
			return 1;
		if (t->n[i].parent == NULL
		    || (v = json_object_get(t->index, t->n[i].parent)) == NULL)
			return 0;
		i = (size_t)json_integer_value(v);
	}
	return 0;
}

static int
audit_trace(int argc, char **argv)
{
	struct agentid_audit_verify_opts o;
	struct agentid_error err;
	struct trace t;
	struct agentid_key *key = NULL;
	const char *jti = NULL, *task = NULL, *keypath = NULL, *const * files;
	char *vname = NULL;
	json_t *roots = NULL, *v;
	size_t nfiles, i, k;
	int c, json = 0, no_verify = 0, ret = EXIT_USAGE;

	memset(&t, 0, sizeof(t));
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", trace_options, NULL)) != -1) {
		switch (c) {
		case OPT_JTI:
			jti = optarg;
			break;
		case OPT_TASK:
			task = optarg;
			break;
		case OPT_JSON:
			json = 1;
			break;
		case OPT_KEY:
			keypath = optarg;
			break;
		case OPT_NO_VERIFY:
			no_verify = 1;
			break;
		case 'h':
			trace_usage(stdout);
			return 0;
		default:
			trace_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if ((jti == NULL) == (task == NULL) || optind >= argc) {
		cli_err("audit trace: exactly one of --jti and --task, and at least one file");
		trace_usage(stderr);
		return EXIT_USAGE;
	}
	files = (const char *const *)argv + optind;
	nfiles = (size_t)(argc - optind);
	if (!no_verify) {
		memset(&o, 0, sizeof(o));
		if (keypath != NULL && (key = load_verify_key(keypath, &vname)) == NULL)
			return EXIT_USAGE;
		o.key = key;
		o.key_name = vname;
		ret = run_verify(files, nfiles, &o, 0, 1);
		agentid_key_free(key);
		free(vname);
		if (ret != 0) {
			cli_err("audit trace: the log does not verify; use --no-verify to trace "
			        "it anyway");
			return ret;
		}
	}
	t.index = json_object();
	t.actions = json_array();
	agentid_error_clear(&err);
	if (agentid_audit_read_files(files, nfiles, collect, &t, &err) != 0) {
		cli_err("audit trace: %s", err.detail);
		ret = EXIT_USAGE;
		goto out;
	}

	/* Which tokens are wanted. */
	for (i = 0; i < t.nn; i++) {
		if (jti != NULL)
			t.n[i].selected = descends_from(&t, i, jti);
		else
			t.n[i].selected = t.n[i].granted != NULL
			    && sget(t.n[i].granted, "task") != NULL
			    && strcmp(sget(t.n[i].granted, "task"), task) == 0;
	}
	if (jti != NULL && json_object_get(t.index, jti) == NULL)
		t.n[node_for(&t, jti)].selected = 1;
	/* A jti that was neither issued nor used in these logs is not found. */
	/* Actions go under the token they were performed with (or tried to delegate from). */
	for (k = 0; k < json_array_size(t.actions); k++) {
		json_t *rec = json_array_get(t.actions, k);
		const char *aj = sget(rec, "jti"), *ev = sget(rec, "event");
		const char *owner = aj;

		if (ev != NULL && strcmp(ev, "exchange.denied") == 0
		    && sget(rec, "parent_jti") != NULL)
			owner = sget(rec, "parent_jti");
		if (owner == NULL) {
			if (task == NULL || sget(rec, "task") == NULL
			    || strcmp(sget(rec, "task"), task))
				continue;
			owner = TRACE_TASK_NODE;
		}
		if ((v = json_object_get(t.index, owner)) == NULL) {
			if (task == NULL || sget(rec, "task") == NULL
			    || strcmp(sget(rec, "task"), task))
				continue;
			i = node_for(&t, owner);
			t.n[i].selected = 1;
		} else {
			i = (size_t)json_integer_value(v);
		}
		if (t.n[i].selected)
			json_array_append_new(t.n[i].items,
			    json_pack("{s:O, s:O}", "ts",
			        json_object_get(rec, "ts") != NULL ? json_object_get(rec, "ts")
			                                           : json_null(),
			        "rec", rec));
	}
	/* Child tokens go under their parent when the parent is shown too. */
	roots = json_array();
	for (i = 0; i < t.nn; i++) {
		if (!t.n[i].selected)
			continue;
		v = t.n[i].parent != NULL ? json_object_get(t.index, t.n[i].parent) : NULL;
		if (v != NULL && t.n[json_integer_value(v)].selected
		    && !(jti != NULL && strcmp(t.n[i].jti, jti) == 0)) {
			json_array_append_new(t.n[json_integer_value(v)].items,
			    json_pack("{s:O, s:I}", "ts",
			        t.n[i].granted != NULL
			                && json_object_get(t.n[i].granted, "ts") != NULL
			            ? json_object_get(t.n[i].granted, "ts")
			            : json_null(),
			        "child", (json_int_t)i));
		} else {
			json_array_append_new(roots,
			    json_pack("{s:O, s:I}", "ts",
			        t.n[i].granted != NULL
			                && json_object_get(t.n[i].granted, "ts") != NULL
			            ? json_object_get(t.n[i].granted, "ts")
			            : json_null(),
			        "child", (json_int_t)i));
		}
	}
	for (i = 0; i < t.nn; i++)
		sort_items(t.n[i].items);
	sort_items(roots);
	if (jti != NULL && json_array_size(roots) == 1) {
		struct tnode *r0
		    = &t.n[json_integer_value(json_object_get(json_array_get(roots, 0), "child"))];
		if (r0->granted == NULL && json_array_size(r0->items) == 0)
			json_array_clear(roots);
	}
	if (json_array_size(roots) == 0) {
		cli_err("audit trace: no records for %s %s", jti != NULL ? "jti" : "task",
		    jti != NULL ? jti : task);
		ret = EXIT_INVALID;
		goto out;
	}
	if (json) {
		json_t *out = json_pack("{s:s?, s:s?, s:[]}", "jti", jti, "task", task, "roots");
		for (k = 0; k < json_array_size(roots); k++)
			json_array_append_new(json_object_get(out, "roots"),
			    node_json(&t,
			        (size_t)json_integer_value(
			            json_object_get(json_array_get(roots, k), "child")),
			        0));
		cli_print_json(out);
		json_decref(out);
	} else {
		if (task != NULL) {
			printf("task ");
			cli_print_sanitized(stdout, task);
			printf("\n");
		}
		for (k = 0; k < json_array_size(roots); k++)
			print_node(&t,
			    (size_t)json_integer_value(
			        json_object_get(json_array_get(roots, k), "child")),
			    "", 0);
	}
	ret = 0;
out:
	for (i = 0; i < t.nn; i++) {
		json_decref(t.n[i].granted);
		json_decref(t.n[i].items);
	}
	free(t.n);
	json_decref(t.index);
	json_decref(t.actions);
	json_decref(roots);
	return ret;
}

/* ---------------------------------------------------------------- vkey */

static int
audit_vkey(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, OPT_KEY },
		{ "origin", required_argument, NULL, OPT_ORIGIN },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct agentid_key *key = NULL;
	struct agentid_error err;
	const char *keypath = NULL, *origin = NULL;
	char host[256], name[300], *vkey = NULL;
	int c, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_KEY:
			keypath = optarg;
			break;
		case OPT_ORIGIN:
			origin = optarg;
			break;
		case 'h':
			printf("usage: agentid audit vkey --key KEY [--origin NAME]\n\n"
			       "Prints the signed-note verifier key of an Ed25519 checkpoint key\n"
			       "(name+id+base64), the form Go's golang.org/x/mod/sumdb/note and "
			       "other\n"
			       "C2SP tools take.  NAME defaults to the writer's origin,\n"
			       "agentid-audit/<host>.\n");
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (keypath == NULL || optind != argc) {
		cli_err("audit vkey: --key is required");
		return EXIT_USAGE;
	}
	if (origin == NULL) {
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		for (char *p = host; *p != '\0'; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
				*p = '_';
		snprintf(name, sizeof(name), "agentid-audit/%s", host);
		origin = name;
	}
	agentid_error_clear(&err);
	if (agentid_key_load_file(keypath, &key, &err) != 0) {
		cli_err("audit vkey: %s: %s", keypath, err.detail);
		return EXIT_USAGE;
	}
	r = agentid_audit_note_vkey(key, origin, &vkey);
	agentid_key_free(key);
	if (r != 0) {
		cli_err("audit vkey: %s",
		    r == AGENTID_EUNSUPPORTED ? "the key is not Ed25519" : "bad origin name");
		return EXIT_USAGE;
	}
	printf("%s\n", vkey);
	agentid_free(vkey);
	return 0;
}

int
cmd_audit(int argc, char **argv)
{
	if (argc < 2) {
		audit_usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		audit_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "append") == 0)
		return audit_append(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return audit_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "trace") == 0)
		return audit_trace(argc - 1, argv + 1);
	if (strcmp(argv[1], "vkey") == 0)
		return audit_vkey(argc - 1, argv + 1);
	cli_err("audit: unknown subcommand '%s'", argv[1]);
	audit_usage(stderr);
	return EXIT_USAGE;
}
