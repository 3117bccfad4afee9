/*
 * Verified tokens: accessors over what agentid_verify() established.
 */
#include "config.h"

#include <agentid/verify.h>

#include "internal.h"
#include "verify_int.h"

AGENTID_EXPORT void
agentid_token_free(struct agentid_token *t)
{
	if (t == NULL)
		return;
	agentid_jws_free(t->jws);
	agentid_key_free(t->key);
	agentid_chain_free(t->chain);
	agentid_scopes_free(t->scopes);
	agentid_free(t->trust_domain);
	agentid_free(t);
}

AGENTID_EXPORT enum agentid_profile
agentid_token_profile(const struct agentid_token *t)
{
	return t != NULL ? t->profile : AGENTID_PROFILE_ANY;
}

AGENTID_EXPORT const json_t *
agentid_token_header(const struct agentid_token *t)
{
	return t != NULL ? t->jws->header : NULL;
}

AGENTID_EXPORT const json_t *
agentid_token_claims(const struct agentid_token *t)
{
	return t != NULL ? t->jws->payload : NULL;
}

AGENTID_EXPORT enum agentid_alg
agentid_token_alg(const struct agentid_token *t)
{
	return t != NULL ? t->jws->alg : AGENTID_ALG_UNKNOWN;
}

AGENTID_EXPORT const char *
agentid_token_kid(const struct agentid_token *t)
{
	return t != NULL ? t->jws->kid : NULL;
}

AGENTID_EXPORT const char *
agentid_token_claim_string(const struct agentid_token *t, const char *name)
{
	if (t == NULL || name == NULL)
		return NULL;
	return json_string_value(json_object_get(t->jws->payload, name));
}

AGENTID_EXPORT const char *
agentid_token_iss(const struct agentid_token *t)
{
	return t != NULL ? t->iss : NULL;
}

AGENTID_EXPORT const char *
agentid_token_sub(const struct agentid_token *t)
{
	return t != NULL ? t->sub : NULL;
}

AGENTID_EXPORT const char *
agentid_token_jti(const struct agentid_token *t)
{
	return t != NULL ? t->jti : NULL;
}

AGENTID_EXPORT const char *
agentid_token_client_id(const struct agentid_token *t)
{
	return t != NULL ? t->client_id : NULL;
}

AGENTID_EXPORT const char *
agentid_token_agent(const struct agentid_token *t)
{
	return t != NULL ? t->agent : NULL;
}

AGENTID_EXPORT const char *
agentid_token_trust_domain(const struct agentid_token *t)
{
	return t != NULL ? t->trust_domain : NULL;
}

AGENTID_EXPORT const char *
agentid_token_task(const struct agentid_token *t)
{
	return t != NULL ? t->task : NULL;
}

AGENTID_EXPORT int64_t
agentid_token_exp(const struct agentid_token *t)
{
	return t != NULL ? t->exp : -1;
}

AGENTID_EXPORT int64_t
agentid_token_iat(const struct agentid_token *t)
{
	return t != NULL ? t->iat : -1;
}

AGENTID_EXPORT int64_t
agentid_token_nbf(const struct agentid_token *t)
{
	return t != NULL ? t->nbf : -1;
}

AGENTID_EXPORT const struct agentid_chain *
agentid_token_chain(const struct agentid_token *t)
{
	return t != NULL ? t->chain : NULL;
}

AGENTID_EXPORT const struct agentid_scopes *
agentid_token_scopes(const struct agentid_token *t)
{
	return t != NULL ? t->scopes : NULL;
}

AGENTID_EXPORT const struct agentid_key *
agentid_token_key(const struct agentid_token *t)
{
	return t != NULL ? t->key : NULL;
}
