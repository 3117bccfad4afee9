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

#endif
