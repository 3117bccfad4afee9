/*
 * agentid spiffe-id check: validates SPIFFE IDs exactly as the verifier
 * does (SPIFFE-ID.md), for scripts and for people writing policies.
 */
#include "config.h"

#include <getopt.h>
#include <string.h>

#include "cli.h"

static void
spiffe_id_usage(FILE *f)
{
	fprintf(f,
	    "usage: agentid spiffe-id check ID...\n"
	    "\n"
	    "Checks each SPIFFE ID against the rules of SPIFFE-ID.md and prints the valid ones.\n"
	    "Exits 0 when all are valid; at the first invalid one prints\n"
	    "'invalid: bad_spiffe_id: <detail>: <id>' on stderr and exits 1.\n"
	    "\n"
	    "options:\n"
	    "  -h, --help   this text\n");
}

static const struct option spiffe_id_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int
cmd_spiffe_id(int argc, char **argv)
{
	struct agentid_error err;
	int c, i, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+h", spiffe_id_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			spiffe_id_usage(stdout);
			return 0;
		default:
			spiffe_id_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc || strcmp(argv[optind], "check") != 0) {
		cli_err(optind >= argc ? "spiffe-id: missing subcommand"
		                       : "spiffe-id: unknown subcommand");
		spiffe_id_usage(stderr);
		return EXIT_USAGE;
	}
	optind++;
	/* "check --help" is help too; after "check" every other argument is an ID. */
	if (optind < argc
	    && (strcmp(argv[optind], "--help") == 0 || strcmp(argv[optind], "-h") == 0)) {
		spiffe_id_usage(stdout);
		return 0;
	}
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind >= argc) {
		cli_err("spiffe-id check: no ID given");
		spiffe_id_usage(stderr);
		return EXIT_USAGE;
	}
	for (i = optind; i < argc; i++) {
		agentid_error_clear(&err);
		r = agentid_spiffe_id_parse(argv[i], strlen(argv[i]), NULL, &err);
		if (r != 0) {
			fprintf(stderr, "invalid: %s: %s: ",
			    agentid_reason_code(
			        r == AGENTID_EREJECTED ? err.reason : AGENTID_R_BAD_SPIFFE_ID),
			    err.detail[0] != '\0' ? err.detail
			                          : agentid_reason_text(AGENTID_R_BAD_SPIFFE_ID));
			cli_print_sanitized(stderr, argv[i]);
			fputc('\n', stderr);
			return EXIT_INVALID;
		}
		printf("%s\n", argv[i]);
	}
	return 0;
}
