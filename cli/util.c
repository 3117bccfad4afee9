/*
 * agentid CLI: helpers shared by the commands -- messages, reading tokens
 * and files, the stderr log sink and JSON output.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* Tokens and the files the CLI reads (bundles, claims) are small; refuse anything absurd. */
#define CLI_MAX_INPUT (4 * 1024 * 1024)

void
cli_err(const char *fmt, ...)
{
	va_list ap;

	fputs("agentid: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Reads all of f into a NUL-terminated malloc'd buffer; NULL on error or past the limit. */
static char *
read_stream(FILE *f, size_t *lenp)
{
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, n;

	*lenp = 0;
	for (;;) {
		if (cap - len < 4096) {
			if (cap >= CLI_MAX_INPUT) {
				errno = EFBIG;
				free(buf);
				return NULL;
			}
			cap = cap == 0 ? 8192 : cap * 2;
			if ((nbuf = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				return NULL;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0) {
			if (ferror(f)) {
				free(buf);
				errno = EIO;
				return NULL;
			}
			break;
		}
	}
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

char *
cli_read_file(const char *path, size_t *len)
{
	FILE *f;
	char *buf;
	size_t n;

	if (len != NULL)
		*len = 0;
	if ((f = fopen(path, "rb")) == NULL) {
		cli_err("cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	buf = read_stream(f, &n);
	if (buf == NULL)
		cli_err("cannot read %s: %s", path, strerror(errno));
	fclose(f);
	if (buf != NULL && len != NULL)
		*len = n;
	return buf;
}

char *
cli_read_token(const char *arg)
{
	char *buf, *s, *e;
	size_t len;

	if (strcmp(arg, "-") == 0) {
		if ((buf = read_stream(stdin, &len)) == NULL) {
			cli_err("cannot read the token from standard input: %s", strerror(errno));
			return NULL;
		}
	} else if (arg[0] == '@') {
		if ((buf = cli_read_file(arg + 1, &len)) == NULL)
			return NULL;
	} else {
		if ((buf = strdup(arg)) == NULL) {
			cli_err("out of memory");
			return NULL;
		}
		len = strlen(buf);
	}
	/* Trim surrounding whitespace (a trailing newline from echo or a file, mostly). */
	s = buf;
	e = buf + len;
	while (s < e && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	memmove(buf, s, (size_t)(e - s));
	buf[e - s] = '\0';
	return buf;
}

static void
log_stderr(void *arg, enum agentid_log_level level, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	(void)arg;
	fprintf(stderr, "agentid: %s: %s\n",
	    (unsigned)level < sizeof(names) / sizeof(names[0]) ? names[level] : "log", msg);
}

void
cli_install_log(void)
{
	const char *d = getenv("AGENTID_DEBUG");

	agentid_set_log(log_stderr, NULL,
	    d != NULL && *d != '\0' && strcmp(d, "0") != 0 ? AGENTID_LOG_DEBUG : AGENTID_LOG_WARN);
}

void
cli_print_json(const json_t *j)
{
	if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY) != 0)
		cli_err("cannot write JSON output");
	fputc('\n', stdout);
	fflush(stdout);
}

void
cli_print_invalid(const struct agentid_error *err)
{
	fprintf(stderr, "invalid: %s: %s", agentid_reason_code(err->reason),
	    agentid_reason_text(err->reason));
	if (err->detail[0] != '\0')
		fprintf(stderr, " (%s)", err->detail);
	fputc('\n', stderr);
}

int
cli_parse_long(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	*out = 0;
	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

void
cli_print_sanitized(FILE *f, const char *s)
{
	const unsigned char *p;

	/* Identifiers come from the command line or from files; never let them drive a terminal. */
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p >= 0x20 && *p < 0x7f)
			fputc(*p, f);
		else
			fprintf(f, "\\x%02x", *p);
	}
}

/* Writes all of data to fd; 0 or -1 (errno set). */
static int
write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
cli_write_file(const char *path, const void *data, size_t len, unsigned mode, int replace)
{
	char *tmp = NULL;
	size_t plen;
	int fd = -1, saved, created = 0;

	if (!replace) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
		if (fd < 0) {
			if (errno == EEXIST)
				cli_err("%s exists; use --force to replace it", path);
			else
				cli_err("cannot create %s: %s", path, strerror(errno));
			return -1;
		}
		created = 1;
	} else {
		/* A temporary file next to the target, renamed over it once complete. */
		plen = strlen(path);
		if ((tmp = malloc(plen + sizeof(".XXXXXX"))) == NULL) {
			cli_err("out of memory");
			return -1;
		}
		memcpy(tmp, path, plen);
		memcpy(tmp + plen, ".XXXXXX", sizeof(".XXXXXX"));
		if ((fd = mkstemp(tmp)) >= 0)
			created = 1;
		if (fd < 0 || fchmod(fd, (mode_t)mode) != 0) {
			cli_err("cannot create a file next to %s: %s", path, strerror(errno));
			goto fail;
		}
	}
	if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		cli_err("cannot write %s: %s", path, strerror(errno));
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		cli_err("cannot write %s: %s", path, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (tmp != NULL) {
		if (rename(tmp, path) != 0) {
			cli_err("cannot replace %s: %s", path, strerror(errno));
			goto fail;
		}
		free(tmp);
	}
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	/* Remove only what this call created (the new file, or the temporary one). */
	if (created)
		unlink(tmp != NULL ? tmp : path);
	free(tmp);
	errno = saved;
	return -1;
}
