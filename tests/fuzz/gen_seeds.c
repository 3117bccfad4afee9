/*
 * Writes the seeds of fuzz_audit that need the real writer: an audit log
 * with a signed checkpoint (key and origin of fuzz_util.h), and its witness
 * copy.  Not a fuzz target (no fuzz_ prefix); build and run by hand:
 *
 *   cc -I$SRC/include -I$SRC/tests/fuzz $SRC/tests/fuzz/gen_seeds.c \
 *      -L$BUILD/.libs -lagentid $(pkg-config --libs jansson) -o gen_seeds
 *   LD_LIBRARY_PATH=$BUILD/.libs ./gen_seeds $SRC/tests/fuzz/corpus/fuzz_audit
 *
 * Stream ids and timestamps differ on every run; the seeds checked in are
 * one such run.
 */
#include "fuzz_util.h"

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0
	    || fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) == NULL
	    || fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void
put(const char *dir, const char *name, unsigned char flags, const char *a, size_t alen,
    const char *b, size_t blen)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL)
		abort();
	fputc(flags, f);
	fwrite(a, 1, alen, f);
	if (b != NULL) {
		fputc(0, f);
		fwrite(b, 1, blen, f);
	}
	fclose(f);
}

int
main(int argc, char **argv)
{
	struct agentid_audit_config cfg;
	struct agentid_audit_event ev;
	struct agentid_audit *a = NULL;
	struct agentid_key *key;
	static const char *aud[] = { "api" };
	char logp[] = "/tmp/fz-audit-XXXXXX", cpp[64];
	char *log, *cp;
	size_t loglen, cplen;
	int fd;

	if (argc != 2)
		return 2;
	if ((fd = mkstemp(logp)) < 0)
		abort();
	close(fd);
	unlink(logp);
	snprintf(cpp, sizeof(cpp), "%s.cp", logp);
	key = fz_key(FZ_ED_JWK_PRIVATE);
	agentid_audit_config_init(&cfg);
	cfg.path = logp;
	cfg.component = "fuzz";
	cfg.signing_key = key;
	cfg.origin = "agentid-audit/fuzz";
	cfg.checkpoint_records = 2;
	cfg.checkpoint_copy_path = cpp;
	cfg.fsync = AGENTID_AUDIT_FSYNC_NEVER;
	if (agentid_audit_open(&cfg, &a, NULL) != 0)
		abort();
	memset(&ev, 0, sizeof(ev));
	ev.event = "exchange.granted";
	ev.agent = "spiffe://example.org/agent/a";
	ev.subject = "spiffe://example.org/user/u";
	ev.task = "t-1";
	ev.jti = "j-1";
	ev.aud = aud;
	ev.n_aud = 1;
	ev.scope = "read";
	ev.decision = "allow";
	if (agentid_audit_append(a, &ev) != 0)
		abort();
	ev.event = "access.denied";
	ev.decision = "deny";
	ev.reason = "insufficient_scope";
	ev.parent_jti = "j-1";
	ev.jti = "j-2";
	if (agentid_audit_append(a, &ev) != 0 || agentid_audit_append(a, &ev) != 0
	    || agentid_audit_close(a) != 0)
		abort();
	log = slurp(logp, &loglen);
	cp = slurp(cpp, &cplen);
	put(argv[1], "signed-log", 0x00, log, loglen, NULL, 0);
	put(argv[1], "signed-log-trusted-strict", 0x07, log, loglen, NULL, 0);
	put(argv[1], "signed-log-witness", 0x0c, log, loglen, cp, cplen);
	put(argv[1], "signed-log-fixup", 0x16, log, loglen, NULL, 0);
	unlink(logp);
	unlink(cpp);
	free(log);
	free(cp);
	agentid_key_free(key);
	return 0;
}
