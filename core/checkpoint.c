/*
 * C2SP signed notes with Ed25519 keys, as used by the audit log's
 * checkpoints (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).
 *
 * A note is its text (ending in a newline), an empty line, and signature
 * lines "— <key name> <base64(4-byte key ID || signature)>".  The key ID
 * is SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4].
 */
#include "config.h"

#include <string.h>

#include <openssl/evp.h>

#include "audit_int.h"

static const char b64_alphabet[]
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The signature line prefix: U+2014 EM DASH, then a space. */
static const char em_dash[] = "\xe2\x80\x94 ";
#define EM_DASH_LEN 4

int
audit_b64_encode(const unsigned char *in, size_t n, struct agentid_buf *out)
{
	char quad[4];
	size_t i;
	int r;

	for (i = 0; i + 3 <= n; i += 3) {
		quad[0] = b64_alphabet[in[i] >> 2];
		quad[1] = b64_alphabet[((in[i] & 0x03) << 4) | (in[i + 1] >> 4)];
		quad[2] = b64_alphabet[((in[i + 1] & 0x0f) << 2) | (in[i + 2] >> 6)];
		quad[3] = b64_alphabet[in[i + 2] & 0x3f];
		if ((r = agentid_buf_append(out, quad, 4)) != 0)
			return r;
	}
	if (n - i == 1) {
		quad[0] = b64_alphabet[in[i] >> 2];
		quad[1] = b64_alphabet[(in[i] & 0x03) << 4];
		quad[2] = quad[3] = '=';
		return agentid_buf_append(out, quad, 4);
	}
	if (n - i == 2) {
		quad[0] = b64_alphabet[in[i] >> 2];
		quad[1] = b64_alphabet[((in[i] & 0x03) << 4) | (in[i + 1] >> 4)];
		quad[2] = b64_alphabet[(in[i + 1] & 0x0f) << 2];
		quad[3] = '=';
		return agentid_buf_append(out, quad, 4);
	}
	return 0;
}

static int
b64_value(char c)
{
	const char *p;

	if (c == '\0' || (p = strchr(b64_alphabet, c)) == NULL)
		return -1;
	return (int)(p - b64_alphabet);
}

int
audit_b64_decode(const char *in, size_t n, unsigned char *out, size_t outsz, size_t *outlen)
{
	size_t i, o = 0, pad = 0;
	int v[4], k;

	*outlen = 0;
	if (n % 4 != 0)
		return AGENTID_EINVAL;
	for (i = 0; i < n; i += 4) {
		for (k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad != 0 || (v[k] = b64_value(in[i + k])) < 0)
				return AGENTID_EINVAL;
		}
		/* "x=y=" is not padding. */
		if (pad == 1 && in[i + 2] == '=')
			return AGENTID_EINVAL;
		if (o + 3 - pad > outsz)
			return AGENTID_ERANGE;
		out[o++] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
		if (pad < 2)
			out[o++] = (unsigned char)(((v[1] & 0x0f) << 4) | (v[2] >> 2));
		if (pad < 1)
			out[o++] = (unsigned char)(((v[2] & 0x03) << 6) | v[3]);
		/* Canonical form only: the bits dropped by padding must be zero. */
		if ((pad == 2 && (v[1] & 0x0f) != 0) || (pad == 1 && (v[2] & 0x03) != 0))
			return AGENTID_EINVAL;
	}
	*outlen = o;
	return 0;
}

void
audit_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
audit_unhex(const char *s, size_t slen, unsigned char *out, size_t n)
{
	size_t i;
	int hi, lo;

	if (slen != 2 * n)
		return AGENTID_EINVAL;
	for (i = 0; i < n; i++) {
		if ((hi = hex_value(s[2 * i])) < 0 || (lo = hex_value(s[2 * i + 1])) < 0)
			return AGENTID_EINVAL;
		out[i] = (unsigned char)((hi << 4) | lo);
	}
	return 0;
}

int
audit_note_keyid(const char *name, size_t name_len, const unsigned char *pub, unsigned char *id)
{
	unsigned char md[EVP_MAX_MD_SIZE], sep[2] = { '\n', AUDIT_NOTE_ED25519 };
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	int ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return AGENTID_ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
	    && EVP_DigestUpdate(ctx, name, name_len) == 1 && EVP_DigestUpdate(ctx, sep, 2) == 1
	    && EVP_DigestUpdate(ctx, pub, AUDIT_ED25519_LEN) == 1
	    && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return AGENTID_ECRYPTO;
	memcpy(id, md, AUDIT_KEYID_LEN);
	return 0;
}

/* Key names must be non-empty and contain no spaces, '+' or control characters. */
static int
note_name_valid(const char *name, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= 0x20 || c == '+' || c == 0x7f)
			return 0;
	}
	return 1;
}

void
audit_note_key_clear(struct audit_note_key *k)
{
	if (k == NULL)
		return;
	agentid_free(k->name);
	EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof(*k));
}

int
audit_note_key_from_key(const struct agentid_key *key, const char *name, struct audit_note_key *out)
{
	EVP_PKEY *pkey = agentid_key_evp(key);
	size_t publen = AUDIT_ED25519_LEN;
	int r;

	memset(out, 0, sizeof(*out));
	if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519)
		return AGENTID_EUNSUPPORTED;
	if (EVP_PKEY_get_raw_public_key(pkey, out->pub, &publen) != 1
	    || publen != AUDIT_ED25519_LEN)
		return AGENTID_ECRYPTO;
	if (name != NULL) {
		if (!note_name_valid(name, strlen(name)))
			return AGENTID_EINVAL;
		if ((out->name = agentid_strdup(name)) == NULL)
			return AGENTID_ENOMEM;
		if ((r = audit_note_keyid(name, strlen(name), out->pub, out->id)) != 0) {
			audit_note_key_clear(out);
			return r;
		}
	}
	EVP_PKEY_up_ref(pkey);
	out->pkey = pkey;
	return 0;
}

int
audit_note_key_from_vkey(const char *vkey, size_t len, struct audit_note_key *out)
{
	const char *p1, *p2, *end = vkey + len;
	unsigned char id[AUDIT_KEYID_LEN], raw[1 + AUDIT_ED25519_LEN + 2];
	size_t rawlen;
	int r;

	memset(out, 0, sizeof(*out));
	if ((p1 = memchr(vkey, '+', len)) == NULL
	    || (p2 = memchr(p1 + 1, '+', (size_t)(end - p1 - 1))) == NULL)
		return AGENTID_EINVAL;
	if (!note_name_valid(vkey, (size_t)(p1 - vkey))
	    || audit_unhex(p1 + 1, (size_t)(p2 - p1 - 1), id, AUDIT_KEYID_LEN) != 0)
		return AGENTID_EINVAL;
	if (audit_b64_decode(p2 + 1, (size_t)(end - p2 - 1), raw, sizeof(raw), &rawlen) != 0
	    || rawlen != 1 + AUDIT_ED25519_LEN || raw[0] != AUDIT_NOTE_ED25519)
		return AGENTID_EINVAL;
	memcpy(out->pub, raw + 1, AUDIT_ED25519_LEN);
	if ((r = audit_note_keyid(vkey, (size_t)(p1 - vkey), out->pub, out->id)) != 0)
		return r;
	/* The id in the vkey is redundant; a mismatch means the string was mangled. */
	if (memcmp(id, out->id, AUDIT_KEYID_LEN) != 0)
		return AGENTID_EINVAL;
	if ((out->name = agentid_strndup(vkey, (size_t)(p1 - vkey))) == NULL)
		return AGENTID_ENOMEM;
	out->pkey
	    = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, out->pub, AUDIT_ED25519_LEN);
	if (out->pkey == NULL) {
		audit_note_key_clear(out);
		return AGENTID_ECRYPTO;
	}
	return 0;
}

int
audit_note_vkey(const struct audit_note_key *k, struct agentid_buf *out)
{
	unsigned char raw[1 + AUDIT_ED25519_LEN];
	char hex[2 * AUDIT_KEYID_LEN + 1];
	int r;

	if (k->name == NULL)
		return AGENTID_EINVAL;
	raw[0] = AUDIT_NOTE_ED25519;
	memcpy(raw + 1, k->pub, AUDIT_ED25519_LEN);
	audit_hex(k->id, AUDIT_KEYID_LEN, hex);
	if ((r = agentid_buf_printf(out, "%s+%s+", k->name, hex)) != 0)
		return r;
	return audit_b64_encode(raw, sizeof(raw), out);
}

int
audit_note_sign(
    const struct audit_note_key *k, const char *text, size_t len, struct agentid_buf *out)
{
	unsigned char blob[AUDIT_KEYID_LEN + 64];
	size_t siglen = 64;
	EVP_MD_CTX *ctx;
	int r, ok;

	if (k->name == NULL || k->pkey == NULL)
		return AGENTID_EINVAL;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return AGENTID_ENOMEM;
	/* Ed25519 is "pure": no digest, the whole text is signed in one call. */
	ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1
	    && EVP_DigestSign(
	           ctx, blob + AUDIT_KEYID_LEN, &siglen, (const unsigned char *)text, len)
	        == 1
	    && siglen == 64;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return AGENTID_ECRYPTO;
	memcpy(blob, k->id, AUDIT_KEYID_LEN);
	if ((r = agentid_buf_printf(out, "\n%s%s ", em_dash, k->name)) != 0
	    || (r = audit_b64_encode(blob, sizeof(blob), out)) != 0
	    || (r = agentid_buf_append(out, "\n", 1)) != 0)
		return r;
	return 0;
}

static int
ed25519_verify(EVP_PKEY *pkey, const char *msg, size_t len, const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *ctx;
	int ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1
	    && EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

enum audit_note_result
audit_note_verify(const char *note, size_t len, const struct audit_note_key *k, size_t *text_len)
{
	const char *sigs = NULL, *p, *line_end, *name, *b64, *end = note + len;
	unsigned char blob[AUDIT_KEYID_LEN + 128], id[AUDIT_KEYID_LEN];
	size_t i, bloblen, name_len, nsigs = 0;
	int found = 0;

	*text_len = 0;
	if (len < 2 || note[len - 1] != '\n')
		return AUDIT_NOTE_MALFORMED;
	for (i = 0; i < len; i++)
		if ((unsigned char)note[i] < 0x20 && note[i] != '\n')
			return AUDIT_NOTE_MALFORMED;
	/* The text ends at the last empty line. */
	for (i = len - 1; i > 0; i--)
		if (note[i] == '\n' && note[i - 1] == '\n') {
			sigs = note + i + 1;
			*text_len = i;
			break;
		}
	if (sigs == NULL || *text_len == 0 || sigs >= end)
		return AUDIT_NOTE_MALFORMED;
	for (p = sigs; p < end; p = line_end + 1) {
		line_end = memchr(p, '\n', (size_t)(end - p));
		if (++nsigs > AUDIT_MAX_NOTE_SIGS || line_end == NULL
		    || (size_t)(line_end - p) <= EM_DASH_LEN
		    || memcmp(p, em_dash, EM_DASH_LEN) != 0)
			return AUDIT_NOTE_MALFORMED;
		name = p + EM_DASH_LEN;
		if ((b64 = memchr(name, ' ', (size_t)(line_end - name))) == NULL)
			return AUDIT_NOTE_MALFORMED;
		name_len = (size_t)(b64 - name);
		b64++;
		if (!note_name_valid(name, name_len)
		    || audit_b64_decode(b64, (size_t)(line_end - b64), blob, sizeof(blob), &bloblen)
		        != 0
		    || bloblen < AUDIT_KEYID_LEN)
			return AUDIT_NOTE_MALFORMED;
		if (k == NULL || k->pkey == NULL)
			continue;
		if (k->name != NULL) {
			if (strlen(k->name) != name_len || memcmp(k->name, name, name_len) != 0)
				continue;
			memcpy(id, k->id, AUDIT_KEYID_LEN);
		} else if (audit_note_keyid(name, name_len, k->pub, id) != 0) {
			return AUDIT_NOTE_MALFORMED;
		}
		/* Signatures from unknown keys are ignored, as the spec requires. */
		if (memcmp(id, blob, AUDIT_KEYID_LEN) != 0)
			continue;
		if (!ed25519_verify(k->pkey, note, *text_len, blob + AUDIT_KEYID_LEN,
		        bloblen - AUDIT_KEYID_LEN))
			return AUDIT_NOTE_BAD_SIG;
		found = 1;
	}
	return found ? AUDIT_NOTE_VERIFIED : AUDIT_NOTE_NO_SIG;
}

AGENTID_EXPORT int
agentid_audit_note_sign(
    const struct agentid_key *key, const char *name, const char *text, char **out)
{
	struct audit_note_key nk;
	struct agentid_buf b;
	size_t len;
	int r;

	*out = NULL;
	if (key == NULL || name == NULL || text == NULL || (len = strlen(text)) == 0
	    || text[len - 1] != '\n')
		return AGENTID_EINVAL;
	if ((r = audit_note_key_from_key(key, name, &nk)) != 0)
		return r;
	agentid_buf_init(&b, 0);
	if ((r = agentid_buf_append(&b, text, len)) == 0
	    && (r = audit_note_sign(&nk, text, len, &b)) == 0
	    && (*out = agentid_buf_steal(&b, NULL)) == NULL)
		r = AGENTID_ENOMEM;
	agentid_buf_free(&b);
	audit_note_key_clear(&nk);
	return r;
}

AGENTID_EXPORT int
agentid_audit_note_open(
    const char *note, size_t len, const char *vkey, size_t *text_len, struct agentid_error *err)
{
	struct audit_note_key nk;
	size_t tl = 0;
	int r = 0;

	if (text_len != NULL)
		*text_len = 0;
	if (note == NULL || vkey == NULL)
		return AGENTID_EINVAL;
	if (audit_note_key_from_vkey(vkey, strlen(vkey), &nk) != 0)
		return agentid_error_set(err, AGENTID_R_BAD_KEY, "not a signed-note verifier key");
	switch (audit_note_verify(note, len, &nk, &tl)) {
	case AUDIT_NOTE_VERIFIED:
		if (text_len != NULL)
			*text_len = tl;
		break;
	case AUDIT_NOTE_NO_SIG:
		r = agentid_error_set(
		    err, AGENTID_R_UNKNOWN_KID, "note has no signature by %s", nk.name);
		break;
	case AUDIT_NOTE_BAD_SIG:
		r = agentid_error_set(
		    err, AGENTID_R_BAD_SIGNATURE, "note signature does not verify");
		break;
	default:
		r = agentid_error_set(err, AGENTID_R_MALFORMED, "not a signed note");
		break;
	}
	audit_note_key_clear(&nk);
	return r;
}
