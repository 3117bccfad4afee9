/*
 * Fuzz target: JWK Set and SPIFFE bundle parsing, and re-serialisation of
 * whatever parsed (to_json must never fail on a parsed value).
 */
#include <stdint.h>
#include <stdlib.h>

#include <agentid/agentid.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agentid_keyset *ks = NULL;
	struct agentid_bundle *b = NULL;
	json_t *j = NULL;

	if (agentid_keyset_parse((const char *)data, size, &ks, NULL) == 0) {
		if (agentid_keyset_to_json(ks, &j) == 0)
			json_decref(j);
		agentid_keyset_free(ks);
	}
	if (agentid_bundle_parse(NULL, (const char *)data, size, &b, NULL) == 0) {
		j = NULL;
		if (agentid_bundle_to_json(b, &j) == 0)
			json_decref(j);
		agentid_bundle_free(b);
	}
	return 0;
}
