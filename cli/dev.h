/*
 * agentid dev: declarations shared by cli/cmd_dev.c (dispatch, CA and
 * X.509-SVIDs) and cli/dev_jwt.c (JWT-SVIDs and test tokens).
 */
#ifndef AGENTID_CLI_DEV_H
#define AGENTID_CLI_DEV_H

#include "cli.h"

#define DEV_JWT_TTL 300

/* Everything any dev subcommand accepts; each checks what it needs. */
struct dev_opts {
	const char *td, *dir, *id, *out_cert, *out_key, *key, *alg, *typ, *kid, *claims_json;
	const char **auds;
	size_t n_auds;
	const char **claims;
	size_t n_claims;
	long long ttl;
	int force;
};

/* "DIR/name" in a malloc'd string; NULL with a message. */
char *dev_path_join(const char *dir, const char *name);
/* Prints "agentid: WHAT: <reason text or error>" for a failed library call. */
void dev_print_lib_error(const char *what, int r, const struct agentid_error *err);
/* Validates id and checks it is in the dev CA's trust domain (DIR/td); returns that
 * trust domain (malloc'd) or NULL with a message. */
char *dev_check_id(const char *dir, const char *id);

int dev_jwt_svid(const struct dev_opts *o);
int dev_sign(const struct dev_opts *o);

#endif
