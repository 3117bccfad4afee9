/*
 * Fuzz target: claims-level parsers fed with JSON: the act delegation
 * chain and the scope string (the input's "scope" member, or the raw bytes).
 */
#include <stdint.h>
#include <stdlib.h>

#include <agentid/agentid.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agentid_chain_rules rules = { 4, 1, NULL, NULL };
	struct agentid_chain *chain = NULL;
	struct agentid_scopes *sc = NULL;
	json_t *j = NULL;
	char *s = NULL;

	if (agentid_scopes_parse((const char *)data, size, &sc, NULL) == 0) {
		if (agentid_scopes_to_string(sc, &s) == 0)
			agentid_free(s);
		agentid_scopes_free(sc);
	}
	if (agentid_json_parse((const char *)data, size, 16, &j, NULL) != 0)
		return 0;
	if (json_is_object(j) && agentid_chain_parse(j, &rules, &chain, NULL) == 0) {
		if (agentid_chain_len(chain) > 4)
			abort();
		agentid_chain_free(chain);
	}
	json_decref(j);
	return 0;
}
