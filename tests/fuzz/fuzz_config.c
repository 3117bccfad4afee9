/*
 * Fuzz target: the exchange server's YAML configuration loader
 * (token-exchange/config.c, xc_config_load, with the policy compiler of
 * policy.c), compiled in unchanged.  The loader takes a path, so each input
 * is written to an in-memory file.  A failed load must say why; a loaded
 * configuration is queried through xc_policy_match and freed.
 *
 * fuzz-sources: token-exchange/config.c token-exchange/policy.c
 * fuzz-libs: yaml-0.1
 */
#include "fuzz_util.h"

#include "exchange.h"

static struct fz_memfile file;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xc_config *c = NULL;
	char errbuf[512];

	if (file.path[0] == '\0')
		fz_memfile_init(&file, "exchange.yaml");
	fz_memfile_set(&file, data, size);
	if (xc_config_load(file.path, &c, errbuf, sizeof(errbuf)) != 0) {
		if (c != NULL || errbuf[0] == '\0')
			abort();
		return 0;
	}
	if (c->issuer == NULL || c->token_endpoint == NULL || c->n_listens == 0 || c->n_rules == 0)
		abort();
	(void)xc_policy_match(
	    c, "spiffe://example.org/agent/a", "spiffe://example.org/user/u", NULL);
	(void)xc_policy_match(c, "spiffe://example.org/agent/a", "alice", "https://idp.example");
	xc_config_free(c);
	return 0;
}
