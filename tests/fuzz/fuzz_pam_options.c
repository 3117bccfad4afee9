/*
 * Fuzz target: pam_agentid's option parsing (pam-module/options.c:
 * module arguments and the conf= file) and its account map file
 * (pam-module/mapfile.c), compiled in unchanged.  pam_syslog is replaced by
 * a stub that formats the message (so format arguments are exercised) and
 * drops it; nothing links libpam.
 *
 * Input: "ARGS" or "ARGS\0CONF" or "ARGS\0CONF\0MAP".  ARGS are module
 * arguments, one per line.  CONF and MAP are written to in-memory files;
 * a conf= argument is added for CONF, and any conf= in ARGS is pointed at
 * the same file, so no input can make the target read the real file
 * system.  Options are parsed for the auth phase and for the others; MAP
 * is looked up for one SPIFFE ID and user.
 *
 * fuzz-sources: pam-module/options.c pam-module/mapfile.c
 */
#include "fuzz_util.h"

#include <stdarg.h>

#include <security/pam_ext.h>

#include "pam_agentid_int.h"

#define MAX_ARGS 48

static struct fz_memfile conf, map;
static char conf_arg[80];

void
pam_syslog(const pam_handle_t *pamh, int priority, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	(void)pamh;
	(void)priority;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
}

static void
parse(int argc, const char **argv, int for_auth)
{
	struct pa_opts o;
	size_t i;

	if (pa_opts_parse(NULL, argc, argv, for_auth, &o) == 0) {
		if (o.prompt == NULL || o.env_name == NULL || o.n_sources == 0 || o.n_sources > 3)
			abort();
		if (for_auth && (o.bundles.n == 0 || o.audiences.n == 0))
			abort();
		/* Only the auth phase reads the token, so only it needs file= for source=file. */
		for (i = 0; for_auth && i < o.n_sources; i++)
			if (o.sources[i] == PA_SRC_FILE && (o.file == NULL || o.file[0] != '/'))
				abort();
	}
	pa_opts_free(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *argv[MAX_ARGS + 1];
	const uint8_t *p = data, *end = data + size, *part, *cp, *mp;
	size_t len, clen, mlen;
	char *args, *s, *e, *mapped = NULL;
	int argc = 0, have_conf, have_map, last;

	if (conf.path[0] == '\0') {
		fz_memfile_init(&conf, "pam_agentid.conf");
		fz_memfile_init(&map, "pam_agentid.map");
		snprintf(conf_arg, sizeof(conf_arg), "conf=%s", conf.path);
	}
	fz_next_part(&p, end, 0, &part, &len);
	args = fz_strndup(part, len);
	have_conf = fz_next_part(&p, end, 0, &cp, &clen);
	have_map = fz_next_part(&p, end, 0, &mp, &mlen);
	if (have_conf) {
		fz_memfile_set(&conf, cp, clen);
		argv[argc++] = conf_arg;
	}
	for (s = args; len > 0 && argc < MAX_ARGS; s = e + 1) {
		e = s + strcspn(s, "\n");
		last = *e == '\0';
		*e = '\0';
		/* A conf= of the input may only name the in-memory file. */
		argv[argc++] = strncmp(s, "conf=", 5) == 0 ? conf_arg : s;
		if (last)
			break;
	}
	argv[argc] = NULL;
	parse(argc, argv, 1);
	parse(argc, argv, 0);
	if (have_map) {
		fz_memfile_set(&map, mp, mlen);
		if (pa_map_lookup(NULL, map.path, "spiffe://example.org/agent/a", "alice", &mapped)
		    < -1)
			abort();
		free(mapped);
	}
	free(args);
	return 0;
}
