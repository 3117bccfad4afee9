/*
 * agentid CLI: shared declarations.  Each command lives in cli/cmd_*.c and
 * returns the process exit status: 0 success, 1 rejected/invalid, 2 usage
 * or configuration error.
 */
#ifndef AGENTID_CLI_H
#define AGENTID_CLI_H

#include <stdio.h>

#include <agentid/agentid.h>

#define EXIT_INVALID 1
#define EXIT_USAGE 2

/* Commands.  argv[0] is the command name. */
int cmd_verify(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_spiffe_id(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_bundle(int argc, char **argv);
int cmd_dev(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_status_list(int argc, char **argv);
int cmd_exchange(int argc, char **argv);
int cmd_revoke(int argc, char **argv);
int cmd_bundle_sync(int argc, char **argv);

/* Helpers (cli/util.c). */

/* Prints "agentid: <fmt>\n" to stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reads a token argument: "-" reads stdin, "@FILE" reads a file, otherwise the literal.
 * Surrounding whitespace is trimmed.  Returns a malloc'd string or NULL (message printed). */
char *cli_read_token(const char *arg);
/* Reads a whole file; NULL with a message on failure. */
char *cli_read_file(const char *path, size_t *len);
/* Installs a log sink printing to stderr (level WARN, or DEBUG with AGENTID_DEBUG set). */
void cli_install_log(void);
/* Prints a JSON value to stdout, indented, with a final newline. */
void cli_print_json(const json_t *j);
/* Prints "invalid: <reason-code>: <text>[ (<detail>)]\n" to stderr. */
void cli_print_invalid(const struct agentid_error *err);
/* Strict base-10 integer in [min, max]; 0 or -1. */
int cli_parse_long(const char *s, long long min, long long max, long long *out);
/* Prints s with bytes outside printable ASCII as \xNN. */
void cli_print_sanitized(FILE *f, const char *s);
/* Writes a file with mode (umask aside): a new file that must not exist, or with replace
 * set an atomic replacement (temporary file + rename).  0, or -1 with a message printed. */
int cli_write_file(const char *path, const void *data, size_t len, unsigned mode, int replace);

#endif
