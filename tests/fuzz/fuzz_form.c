/*
 * Fuzz target: the token endpoint's strict application/x-www-form-urlencoded
 * body parser (token-exchange/form.c, xc_form_parse), compiled in unchanged.
 * Inputs are request bodies.  Besides the sanitizers, the target checks
 * what the server relies on: a value read back is non-empty and holds no
 * control characters, only audience and resource repeat, and the i-th
 * value exists exactly for i < count.
 *
 * fuzz-sources: token-exchange/form.c
 */
#include "fuzz_util.h"

#include "exchange.h"

static const char *const names[] = { "grant_type", "subject_token", "subject_token_type",
	"actor_token", "actor_token_type", "requested_token_type", "scope", "audience", "resource",
	"client_assertion", "client_assertion_type", "client_id", "token", "token_type_hint" };

static void
check_value(const char *v)
{
	const unsigned char *p;

	if (v == NULL)
		return;
	if (*v == '\0')
		abort();
	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xc_form *f = NULL;
	char errbuf[256];
	size_t i, j, n;

	errbuf[0] = '\0';
	if (xc_form_parse((const char *)data, size, &f, errbuf, sizeof(errbuf)) != 0) {
		if (f != NULL || errbuf[0] == '\0')
			abort();
		return 0;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		n = xc_form_count(f, names[i]);
		if (n > 1 && strcmp(names[i], "audience") != 0 && strcmp(names[i], "resource") != 0)
			abort();
		if ((n > 0) != (xc_form_get(f, names[i]) != NULL))
			abort();
		check_value(xc_form_get(f, names[i]));
		for (j = 0; j < n; j++) {
			if (xc_form_get_nth(f, names[i], j) == NULL)
				abort();
			check_value(xc_form_get_nth(f, names[i], j));
		}
		if (xc_form_get_nth(f, names[i], n) != NULL)
			abort();
	}
	xc_form_free(f);
	return 0;
}
