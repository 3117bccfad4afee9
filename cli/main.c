/*
 * agentid: command-line front end of libagentid.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct command {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} commands[] = {
	{ "verify", cmd_verify, "verify a JWT-SVID or agent access token" },
	{ "inspect", cmd_inspect, "decode a token WITHOUT verifying it" },
	{ "spiffe-id", cmd_spiffe_id, "check SPIFFE IDs" },
	{ "keygen", cmd_keygen, "generate a signing key" },
	{ "bundle", cmd_bundle, "build a SPIFFE bundle from keys and certificates" },
	{ "dev", cmd_dev, "development trust domain: CA, X.509-SVIDs, JWT-SVIDs" },
	{ "audit", cmd_audit, "append to, verify and trace audit logs" },
	{ "status-list", cmd_status_list, "check a token against a status list" },
	{ "exchange", cmd_exchange, "RFC 8693 token exchange against agentid-exchange" },
	{ "revoke", cmd_revoke, "revoke tokens through agentid-exchange's admin API" },
	{ "bundle-sync", cmd_bundle_sync, "keep bundle, JWKS and status-list files fresh" },
};

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: agentid [--version] [--help] COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'agentid COMMAND --help' for a command's options; see agentid(1).\n");
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0
	    || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("agentid %s\n", agentid_version());
		return 0;
	}
	cli_install_log();
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "agentid: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
