/*
 * Helpers shared by the fuzz targets: fixed keys (so that runs and corpora
 * are reproducible), a signer for "self-signed" inputs (the fuzzer writes
 * header and payload, the target signs them, so mutations reach the checks
 * that come after the signature), and in-memory files for parsers that
 * only take a path.  Header-only: every function is static.
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <agentid/agentid.h>

/* Fixed time of every run: inputs never depend on the clock. */
#define FZ_NOW ((time_t)1700000000)

/* Ed25519 and P-256 keys used only by the fuzz targets and their seed generator. */
#define FZ_ED_JWK_PUBLIC                                                                           \
	"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"fz-ed\","                                  \
	"\"x\":\"YaECZFtneA1qJb460QEXSscyI4-GdmZW6w9M9rcZ4ww\"}"
#define FZ_ED_JWK_PRIVATE                                                                          \
	"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"fz-ed\","                                  \
	"\"x\":\"YaECZFtneA1qJb460QEXSscyI4-GdmZW6w9M9rcZ4ww\","                                   \
	"\"d\":\"dsMDqWwx1tlJY48bdXlWHJUEob0Lgjvo1eMdNfXGuRc\"}"
#define FZ_EC_JWK_PUBLIC                                                                           \
	"{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"fz-ec\","                                     \
	"\"x\":\"8ipa7L8_uX01jc-TBHyrtQfJFmLaUH7oGHwBP2tUYQs\","                                   \
	"\"y\":\"O2V1OG1fn56d02d_TO0A_0hkjqtsjq3QaowG9MM1WK4\"}"
#define FZ_EC_JWK_PRIVATE                                                                          \
	"{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"fz-ec\","                                     \
	"\"x\":\"8ipa7L8_uX01jc-TBHyrtQfJFmLaUH7oGHwBP2tUYQs\","                                   \
	"\"y\":\"O2V1OG1fn56d02d_TO0A_0hkjqtsjq3QaowG9MM1WK4\","                                   \
	"\"d\":\"6KrJrWyHS2jxmrjq6Hjgs7ppPCPwW4LhsIlUHZvw_-U\"}"

static inline struct agentid_key *
fz_key(const char *jwk_json)
{
	struct agentid_key *k = NULL;
	json_t *j = json_loads(jwk_json, 0, NULL);

	if (j == NULL || agentid_key_from_jwk(j, &k, NULL) != 0)
		abort();
	json_decref(j);
	return k;
}

static inline int
fz_b64(const void *p, size_t n, char *out, size_t outsz)
{
	size_t len;

	return agentid_b64url_encode((const unsigned char *)p, n, out, outsz, &len);
}

/*
 * "b64(header).b64(payload).b64(sig)" with sig over the first two parts,
 * signed by key with alg.  The header and payload bytes are taken as they
 * are (not re-serialized), so malformed JSON reaches the parser.  NULL when
 * signing fails.  Free with free().
 */
static inline char *
fz_sign_compact(const struct agentid_key *key, enum agentid_alg alg, const void *hdr, size_t hlen,
    const void *payload, size_t plen)
{
	unsigned char *sig = NULL;
	size_t siglen = 0, hl = agentid_b64url_encoded_len(hlen),
	       pl = agentid_b64url_encoded_len(plen), sl, cap;
	char *out;

	cap = hl + pl + 2 + agentid_b64url_encoded_len(1024) + 1;
	if ((out = malloc(cap)) == NULL)
		abort();
	if (fz_b64(hdr, hlen, out, hl + 1) != 0)
		goto fail;
	hl = strlen(out);
	out[hl] = '.';
	if (fz_b64(payload, plen, out + hl + 1, pl + 1) != 0)
		goto fail;
	pl = strlen(out + hl + 1);
	if (agentid_sig_sign(key, alg, out, hl + 1 + pl, &sig, &siglen) != 0 || siglen > 1024)
		goto fail;
	out[hl + 1 + pl] = '.';
	sl = cap - (hl + pl + 2);
	if (fz_b64(sig, siglen, out + hl + pl + 2, sl) != 0)
		goto fail;
	agentid_free(sig);
	return out;
fail:
	agentid_free(sig);
	free(out);
	return NULL;
}

/* A NUL-terminated copy of the input (for APIs that take C strings). */
static inline char *
fz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/*
 * An in-memory file (memfd, mode 0600 so that owner/permission checks
 * pass) reachable by path as /proc/self/fd/N.  Created once per target;
 * fz_memfile_set replaces its content.
 */
struct fz_memfile {
	int fd;
	char path[64];
};

static inline void
fz_memfile_init(struct fz_memfile *m, const char *name)
{
	if ((m->fd = memfd_create(name, MFD_CLOEXEC)) < 0 || fchmod(m->fd, 0600) != 0)
		abort();
	snprintf(m->path, sizeof(m->path), "/proc/self/fd/%d", m->fd);
}

static inline void
fz_memfile_set(struct fz_memfile *m, const void *data, size_t size)
{
	const char *p = data;
	ssize_t w;

	if (ftruncate(m->fd, 0) != 0)
		abort();
	while (size > 0) {
		if ((w = pwrite(m->fd, p, size, (off_t)(p - (const char *)data))) <= 0)
			abort();
		p += w;
		size -= (size_t)w;
	}
}

/* Splits [*p, end) at the first byte sep: returns the part before it, advances *p past it. */
static inline int
fz_next_part(const uint8_t **p, const uint8_t *end, uint8_t sep, const uint8_t **part, size_t *len)
{
	const uint8_t *s;

	if (*p == NULL)
		return 0;
	*part = *p;
	if ((s = memchr(*p, sep, (size_t)(end - *p))) == NULL) {
		*len = (size_t)(end - *p);
		*p = NULL;
	} else {
		*len = (size_t)(s - *p);
		*p = s + 1;
	}
	return 1;
}

#endif
