/*
 * Unit tests: strict base64url (RFC 4648 section 5, no padding).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Decodes s; returns the agentid code and leaves the bytes in out/outlen. */
static int
dec(const char *s, unsigned char *out, size_t outsz, size_t *outlen)
{
	return agentid_b64url_decode(s, strlen(s), out, outsz, outlen);
}

static void
test_rfc4648_vectors(void)
{
	/* RFC 4648 section 10, without padding. */
	static const struct {
		const char *plain, *enc;
	} v[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg" },
		{ "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
	};
	unsigned char out[16];
	char enc[16];
	size_t i, n;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		CU_ASSERT(agentid_b64url_encode((const unsigned char *)v[i].plain, strlen(v[i].plain),
		    enc, sizeof(enc), &n) == 0);
		CU_ASSERT_STRING_EQUAL(enc, v[i].enc);
		CU_ASSERT(n == strlen(v[i].enc));
		CU_ASSERT(agentid_b64url_encoded_len(strlen(v[i].plain)) == strlen(v[i].enc));
		CU_ASSERT(dec(v[i].enc, out, sizeof(out), &n) == 0);
		CU_ASSERT(n == strlen(v[i].plain));
		CU_ASSERT(memcmp(out, v[i].plain, n) == 0);
	}
}

static void
test_url_alphabet(void)
{
	static const unsigned char bytes[] = { 0xfb, 0xff, 0xbf, 0xfe };
	unsigned char out[8];
	char *enc = NULL;
	size_t n;

	/* 0xfbffbf encodes to "+/+/" in standard base64 and to "-_-_" here. */
	CU_ASSERT_FATAL(agentid_b64url_encode_alloc(bytes, 3, &enc) == 0);
	CU_ASSERT_STRING_EQUAL(enc, "-_-_");
	agentid_free(enc);
	CU_ASSERT(dec("-_-_", out, sizeof(out), &n) == 0);
	CU_ASSERT(n == 3 && memcmp(out, bytes, 3) == 0);
	CU_ASSERT(dec("+/+/", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(dec("-_+_", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(dec("-_/_", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(n == 0);
}

static void
test_reject_padding(void)
{
	unsigned char out[8];
	size_t n;

	CU_ASSERT(dec("Zg==", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(dec("Zm8=", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(dec("Zg=", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(dec("Zm9v====", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(dec("====", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(dec("Z=g", out, sizeof(out), &n) == AGENTID_EINVAL);
}

static void
test_reject_whitespace_and_foreign(void)
{
	static const char *const bad[] = {
		"Zm9v Yg", " Zm9v", "Zm9v\n", "Zm9v\r\nYg", "Zm\t9v", "Zm9v.", "Zm9v!", "Zm9*",
		"Zm9v\x80", "Zm9v\xff", "Zm9\x7f", "Zm9v%2", "Zm9\"",
	};
	unsigned char out[16];
	size_t i, n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT(dec(bad[i], out, sizeof(out), &n) == AGENTID_EINVAL);
	/* An embedded NUL is a foreign character too (length given explicitly). */
	CU_ASSERT(agentid_b64url_decode("Zm\0v", 4, out, sizeof(out), &n) == AGENTID_EINVAL);
}

static void
test_reject_length_1_mod_4(void)
{
	unsigned char out[16];
	size_t n;

	CU_ASSERT(dec("Z", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(dec("Zm9vY", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(dec("Zm9vYmFyZ", out, sizeof(out), &n) == AGENTID_EINVAL);
	/* 2 and 3 mod 4 are fine. */
	CU_ASSERT(dec("Zm9vYg", out, sizeof(out), &n) == 0 && n == 4);
	CU_ASSERT(dec("Zm9vYmE", out, sizeof(out), &n) == 0 && n == 5);
}

static void
test_reject_noncanonical_trailing_bits(void)
{
	unsigned char out[8];
	size_t n;

	/* "Zg" is canonical for "f"; "Zh".."Zv" set unused low bits. */
	CU_ASSERT(dec("Zg", out, sizeof(out), &n) == 0);
	CU_ASSERT(dec("Zh", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(dec("Zv", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(dec("Z_", out, sizeof(out), &n) == AGENTID_EINVAL);
	/* "Zm8" is canonical for "fo"; "Zm9" sets one of the 2 unused bits. */
	CU_ASSERT(dec("Zm8", out, sizeof(out), &n) == 0);
	CU_ASSERT(dec("Zm9", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(dec("Zm-", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(dec("AB", out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(dec("AA", out, sizeof(out), &n) == 0 && n == 1 && out[0] == 0);
}

static void
test_every_byte_roundtrip(void)
{
	unsigned char in[256], out[256];
	char enc[400];
	size_t i, len, n, m;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)i;
	/* Every length 0..256 and so every remainder, with every byte value. */
	for (len = 0; len <= sizeof(in); len++) {
		CU_ASSERT_FATAL(agentid_b64url_encode(in, len, enc, sizeof(enc), &n) == 0);
		CU_ASSERT(strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
		    n);
		CU_ASSERT(agentid_b64url_decoded_max(n) == len);
		CU_ASSERT_FATAL(agentid_b64url_decode(enc, n, out, sizeof(out), &m) == 0);
		CU_ASSERT(m == len);
		CU_ASSERT(memcmp(in, out, len) == 0);
	}
}

static void
test_buffer_sizes(void)
{
	unsigned char out[8];
	char enc[8];
	size_t n = 99;

	/* encode needs encoded_len + 1 bytes for the terminator. */
	CU_ASSERT(agentid_b64url_encode((const unsigned char *)"foo", 3, enc, 4, &n) ==
	    AGENTID_ERANGE);
	CU_ASSERT(n == 0);
	CU_ASSERT(agentid_b64url_encode((const unsigned char *)"foo", 3, enc, 5, &n) == 0);
	/* decode needs decoded_max bytes. */
	CU_ASSERT(agentid_b64url_decode("Zm9vYmFy", 8, out, 5, &n) == AGENTID_ERANGE);
	CU_ASSERT(agentid_b64url_decode("Zm9vYmFy", 8, out, 6, &n) == 0 && n == 6);
	CU_ASSERT(agentid_b64url_decoded_max(0) == 0);
	CU_ASSERT(agentid_b64url_decoded_max(2) == 1);
	CU_ASSERT(agentid_b64url_decoded_max(3) == 2);
	CU_ASSERT(agentid_b64url_decoded_max(4) == 3);
	CU_ASSERT(agentid_b64url_encoded_len(0) == 0);
	CU_ASSERT(agentid_b64url_encoded_len(32) == 43);
	CU_ASSERT(agentid_b64url_encoded_len(64) == 86);
}

static void
test_failed_decode_leaves_no_plaintext(void)
{
	unsigned char out[8];
	size_t n = 77;

	memset(out, 0xaa, sizeof(out));
	/* The first quantum decodes before the bad character is met. */
	CU_ASSERT(agentid_b64url_decode("Zm9vYm=y", 8, out, sizeof(out), &n) == AGENTID_EINVAL);
	CU_ASSERT(n == 0);
	CU_ASSERT(out[0] == 0 && out[1] == 0 && out[2] == 0);
}

int
main(void)
{
	static const struct tu_test tests[] = {
		{ "rfc4648_vectors", test_rfc4648_vectors },
		{ "url_alphabet", test_url_alphabet },
		{ "reject_padding", test_reject_padding },
		{ "reject_whitespace_and_foreign", test_reject_whitespace_and_foreign },
		{ "reject_length_1_mod_4", test_reject_length_1_mod_4 },
		{ "reject_noncanonical_trailing_bits", test_reject_noncanonical_trailing_bits },
		{ "every_byte_roundtrip", test_every_byte_roundtrip },
		{ "buffer_sizes", test_buffer_sizes },
		{ "failed_decode_leaves_no_plaintext", test_failed_decode_leaves_no_plaintext },
		TU_END
	};

	return tu_run("base64url", tests);
}
