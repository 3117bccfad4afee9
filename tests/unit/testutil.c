/*
 * Shared helpers for the CUnit unit tests.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

int
tu_run(const char *suite, const struct tu_test *tests)
{
	CU_pSuite s;
	unsigned failed;
	int i;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	if ((s = CU_add_suite(suite, NULL, NULL)) == NULL)
		return 2;
	for (i = 0; tests[i].name != NULL; i++)
		if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL)
			return 2;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	if (CU_get_error() != CUE_SUCCESS)
		failed++;
	CU_cleanup_registry();
	return failed != 0;
}

const char *
tu_vector(const char *name)
{
	static char path[PATH_MAX];
	const char *top = getenv("top_srcdir");

	snprintf(path, sizeof(path), "%s/tests/vectors/%s", top != NULL ? top : TOP_SRCDIR, name);
	return path;
}

char *
tu_read_vector(const char *name, size_t *len)
{
	FILE *f;
	char *buf;
	long n;

	if ((f = fopen(tu_vector(name), "rb")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (n < 0 || (buf = malloc((size_t)n + 1)) == NULL) {
		fclose(f);
		return NULL;
	}
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (len != NULL)
		*len = (size_t)n;
	return buf;
}

static char tmpdir[PATH_MAX];

static void
rm_tmpdir(void)
{
	char cmd[PATH_MAX + 16];

	if (tmpdir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

const char *
tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	if (tmpdir[0] != '\0')
		return tmpdir;
	snprintf(tmpdir, sizeof(tmpdir), "%s/agentid-test.XXXXXX", base != NULL ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	atexit(rm_tmpdir);
	return tmpdir;
}

const char *
tu_write_file(const char *dir, const char *name, const void *data, size_t len)
{
	static char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL)
		return NULL;
	if (fwrite(data, 1, len, f) != len) {
		fclose(f);
		return NULL;
	}
	fclose(f);
	return path;
}

char *
tu_b64(const char *s)
{
	char *out = NULL;

	if (agentid_b64url_encode_alloc((const unsigned char *)s, strlen(s), &out) != 0)
		return NULL;
	return out;
}

char *
tu_make_jws_rawsig(const char *header_json, const char *payload_json, const unsigned char *sig,
    size_t sig_len)
{
	char *h = tu_b64(header_json), *p = tu_b64(payload_json), *s = NULL, *out = NULL;
	size_t n;

	if (h == NULL || p == NULL)
		goto done;
	if (agentid_b64url_encode_alloc(sig, sig_len, &s) != 0)
		goto done;
	n = strlen(h) + strlen(p) + strlen(s) + 3;
	if ((out = malloc(n)) != NULL)
		snprintf(out, n, "%s.%s.%s", h, p, s);
done:
	agentid_free(h);
	agentid_free(p);
	agentid_free(s);
	return out;
}

char *
tu_make_jws(const char *header_json, const char *payload_json, const struct agentid_key *key,
    enum agentid_alg alg)
{
	char *h = tu_b64(header_json), *p = tu_b64(payload_json), *input = NULL, *out = NULL;
	unsigned char *sig = NULL;
	size_t n, sig_len = 0;

	if (h == NULL || p == NULL)
		goto done;
	n = strlen(h) + strlen(p) + 2;
	if ((input = malloc(n)) == NULL)
		goto done;
	snprintf(input, n, "%s.%s", h, p);
	if (agentid_sig_sign(key, alg, input, strlen(input), &sig, &sig_len) != 0)
		goto done;
	out = tu_make_jws_rawsig(header_json, payload_json, sig, sig_len);
done:
	agentid_free(h);
	agentid_free(p);
	agentid_free(sig);
	free(input);
	return out;
}
