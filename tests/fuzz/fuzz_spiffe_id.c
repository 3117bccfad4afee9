/*
 * Fuzz target: SPIFFE ID and trust domain validation, and ID patterns.
 * Checks an invariant too: a parsed ID's parts lie inside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <agentid/agentid.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct agentid_spiffe_id id;
	struct agentid_spiffe_pattern *p = NULL;

	if (agentid_spiffe_id_parse(s, size, &id, NULL) == 0) {
		if (id.td < s || id.td + id.td_len > s + size || id.td_len == 0)
			abort();
		if (agentid_trust_domain_validate(id.td, id.td_len, NULL) != 0)
			abort();
	}
	(void)agentid_trust_domain_validate(s, size, NULL);
	if (agentid_spiffe_pattern_parse(s, size, &p, NULL) == 0) {
		(void)agentid_spiffe_pattern_match(p, "spiffe://example.org/a/b", 24);
		agentid_spiffe_pattern_free(p);
	}
	return 0;
}
