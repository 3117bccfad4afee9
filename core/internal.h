/*
 * Private helpers shared by the sources of libagentid (core/ and spiffe/).
 * Never installed; never included by hosts.
 */
#ifndef AGENTID_INTERNAL_H
#define AGENTID_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include <agentid/common.h>

#define AGENTID_EXPORT __attribute__((visibility("default")))

/* Allocation through the hooks installed with agentid_set_allocator(). */
void *agentid_malloc(size_t n);
void *agentid_calloc(size_t n, size_t size);
void *agentid_realloc(void *p, size_t n);
void agentid_free(void *p);
char *agentid_strdup(const char *s);
char *agentid_strndup(const char *s, size_t n);
/* Wipes n bytes at p (cannot be optimised away), then frees. */
void agentid_freezero(void *p, size_t n);

/* Constant-time comparison of n bytes; 0 when equal. */
int agentid_timingsafe_bcmp(const void *a, const void *b, size_t n);

/*
 * A bounded, growing byte buffer.  Appends fail with AGENTID_ERANGE past
 * max (0 = no bound) and with AGENTID_ENOMEM when memory runs out; after a
 * failure the buffer keeps what it had.  data is always NUL-terminated.
 */
struct agentid_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

void agentid_buf_init(struct agentid_buf *b, size_t max);
int agentid_buf_append(struct agentid_buf *b, const void *p, size_t n);
int agentid_buf_append_str(struct agentid_buf *b, const char *s);
int agentid_buf_printf(struct agentid_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hands data to the caller (who free()s it with agentid_free) and resets b. */
char *agentid_buf_steal(struct agentid_buf *b, size_t *len);
void agentid_buf_free(struct agentid_buf *b);

/*
 * 1 when agentid_log() at level would reach the host's sink, so that a
 * caller can skip preparing the arguments of a message nobody reads.
 */
int agentid_log_enabled(enum agentid_log_level level);

struct agentid_chain;
/*
 * The trust domain of hop i of a delegation chain, as agentid_chain_parse
 * found it: 1 with *td set when the hop is a SPIFFE ID, 0 when it is not
 * one, -1 when the parse did not look (no rule needed it) or i is out of
 * range.  *td points into the chain's copy of the ID.
 */
int agentid_chain_hop_td(const struct agentid_chain *c, size_t i, const char **td, size_t *td_len);

/* Simple reference counts. */
typedef atomic_uint agentid_refcnt;
static inline void
agentid_ref_init(agentid_refcnt *r)
{
	atomic_init(r, 1);
}
static inline void
agentid_ref_get(agentid_refcnt *r)
{
	atomic_fetch_add_explicit(r, 1, memory_order_relaxed);
}
/* Returns 1 when the last reference was dropped. */
static inline int
agentid_ref_put(agentid_refcnt *r)
{
	return atomic_fetch_sub_explicit(r, 1, memory_order_acq_rel) == 1;
}

#endif
