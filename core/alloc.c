/*
 * Allocation hooks, bounded buffers and small memory helpers.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "internal.h"

static void *(*alloc_malloc)(size_t) = malloc;
static void *(*alloc_realloc)(void *, size_t) = realloc;
static void (*alloc_free)(void *) = free;

AGENTID_EXPORT void
agentid_set_allocator(
    void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t), void (*free_fn)(void *))
{
	alloc_malloc = malloc_fn != NULL ? malloc_fn : malloc;
	alloc_realloc = realloc_fn != NULL ? realloc_fn : realloc;
	alloc_free = free_fn != NULL ? free_fn : free;
	json_set_alloc_funcs(alloc_malloc, alloc_free);
}

void *
agentid_malloc(size_t n)
{
	return alloc_malloc(n == 0 ? 1 : n);
}

void *
agentid_calloc(size_t n, size_t size)
{
	void *p;

	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	if ((p = agentid_malloc(n * size)) != NULL)
		memset(p, 0, n * size);
	return p;
}

void *
agentid_realloc(void *p, size_t n)
{
	return alloc_realloc(p, n == 0 ? 1 : n);
}

void
agentid_free(void *p)
{
	if (p != NULL)
		alloc_free(p);
}

char *
agentid_strndup(const char *s, size_t n)
{
	char *p;

	if ((p = agentid_malloc(n + 1)) == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
agentid_strdup(const char *s)
{
	return agentid_strndup(s, strlen(s));
}

void
agentid_freezero(void *p, size_t n)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, n);
	agentid_free(p);
}

int
agentid_timingsafe_bcmp(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) != 0;
}

void
agentid_buf_init(struct agentid_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

static int
buf_reserve(struct agentid_buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (n > SIZE_MAX - b->len - 1)
		return AGENTID_ERANGE;
	need = b->len + n + 1;
	if (b->max != 0 && need - 1 > b->max)
		return AGENTID_ERANGE;
	if (need <= b->cap)
		return 0;
	cap = b->cap != 0 ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if ((p = agentid_realloc(b->data, cap)) == NULL)
		return AGENTID_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int
agentid_buf_append(struct agentid_buf *b, const void *p, size_t n)
{
	int r;

	if ((r = buf_reserve(b, n)) != 0)
		return r;
	if (n != 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
agentid_buf_append_str(struct agentid_buf *b, const char *s)
{
	return agentid_buf_append(b, s, strlen(s));
}

int
agentid_buf_printf(struct agentid_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return AGENTID_EINVAL;
	if ((r = buf_reserve(b, (size_t)n)) != 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *
agentid_buf_steal(struct agentid_buf *b, size_t *len)
{
	char *p;

	if (b->data == NULL) {
		if (buf_reserve(b, 0) != 0)
			return NULL;
		b->data[0] = '\0';
	}
	p = b->data;
	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void
agentid_buf_free(struct agentid_buf *b)
{
	agentid_free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int
agentid_read_file(const char *path, size_t max, char **out, size_t *len)
{
	struct agentid_buf b;
	char chunk[8192];
	ssize_t n;
	int fd, r = 0;

	*out = NULL;
	if (len != NULL)
		*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? AGENTID_ENOTFOUND : AGENTID_EIO;
	agentid_buf_init(&b, max);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = AGENTID_EIO;
			break;
		}
		if (n == 0)
			break;
		if ((r = agentid_buf_append(&b, chunk, (size_t)n)) != 0)
			break;
	}
	close(fd);
	if (r != 0) {
		agentid_buf_free(&b);
		return r;
	}
	if ((*out = agentid_buf_steal(&b, len)) == NULL)
		return AGENTID_ENOMEM;
	return 0;
}
