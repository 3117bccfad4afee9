/*
 * Error codes, the one table of rejection reasons, logging sink, limits.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

AGENTID_EXPORT const char *
agentid_strerror(int err)
{
	switch (err) {
	case AGENTID_OK:
		return "success";
	case AGENTID_EINVAL:
		return "invalid argument or input";
	case AGENTID_ENOMEM:
		return "out of memory";
	case AGENTID_EIO:
		return "input/output error";
	case AGENTID_ECRYPTO:
		return "cryptographic library failure";
	case AGENTID_ENOTFOUND:
		return "not found";
	case AGENTID_EREJECTED:
		return "rejected";
	case AGENTID_ERANGE:
		return "too large";
	case AGENTID_EUNSUPPORTED:
		return "not supported";
	case AGENTID_ESTALE:
		return "data too old";
	default:
		return "unknown error";
	}
}

static const struct {
	const char *code;
	const char *text;
} reasons[AGENTID_R__COUNT] = {
	[AGENTID_R_OK] = { "ok", "valid" },
	[AGENTID_R_MALFORMED]
	= { "malformed", "token is not a well-formed JWS compact serialization" },
	[AGENTID_R_TOO_LARGE] = { "too_large", "input exceeds the size limit" },
	[AGENTID_R_BAD_ENCODING] = { "bad_encoding", "invalid base64url encoding" },
	[AGENTID_R_BAD_JSON] = { "bad_json", "invalid JSON" },
	[AGENTID_R_DUPLICATE_MEMBER] = { "duplicate_member", "duplicate JSON member name" },
	[AGENTID_R_TOO_DEEP] = { "too_deep", "JSON nesting exceeds the limit" },
	[AGENTID_R_ALG_NOT_ALLOWED] = { "alg_not_allowed", "signature algorithm not allowed" },
	[AGENTID_R_CRIT_UNSUPPORTED]
	= { "crit_unsupported", "critical header extension not supported" },
	[AGENTID_R_HEADER_NOT_ALLOWED] = { "header_not_allowed", "header parameter not allowed" },
	[AGENTID_R_UNKNOWN_KID] = { "unknown_kid", "no trusted key with this key id" },
	[AGENTID_R_KEY_MISMATCH] = { "key_mismatch", "key does not match the signature algorithm" },
	[AGENTID_R_BAD_SIGNATURE] = { "bad_signature", "signature verification failed" },
	[AGENTID_R_EXPIRED] = { "expired", "token has expired" },
	[AGENTID_R_NOT_YET_VALID] = { "not_yet_valid", "token is not valid yet" },
	[AGENTID_R_IAT_IN_FUTURE] = { "iat_in_future", "token was issued in the future" },
	[AGENTID_R_BAD_CLAIM] = { "bad_claim", "claim has the wrong type or form" },
	[AGENTID_R_MISSING_CLAIM] = { "missing_claim", "required claim is missing" },
	[AGENTID_R_ISS_MISMATCH] = { "iss_mismatch", "issuer not accepted" },
	[AGENTID_R_AUD_MISMATCH] = { "aud_mismatch", "audience not accepted" },
	[AGENTID_R_TYP_MISMATCH] = { "typ_mismatch", "token type not accepted" },
	[AGENTID_R_BAD_SPIFFE_ID] = { "bad_spiffe_id", "invalid SPIFFE ID" },
	[AGENTID_R_UNTRUSTED_DOMAIN] = { "untrusted_domain", "trust domain not trusted" },
	[AGENTID_R_CHAIN_INVALID] = { "chain_invalid", "delegation chain is malformed" },
	[AGENTID_R_CHAIN_TOO_DEEP] = { "chain_too_deep", "delegation chain is too deep" },
	[AGENTID_R_CHAIN_CYCLE]
	= { "chain_cycle", "an agent appears twice in the delegation chain" },
	[AGENTID_R_AGENT_NOT_ALLOWED] = { "agent_not_allowed", "agent not allowed" },
	[AGENTID_R_SUBJECT_NOT_ALLOWED] = { "subject_not_allowed", "subject not allowed" },
	[AGENTID_R_INSUFFICIENT_SCOPE] = { "insufficient_scope", "token lacks a required scope" },
	[AGENTID_R_CLAIM_MISMATCH] = { "claim_mismatch", "claim does not have the required value" },
	[AGENTID_R_BINDING_REQUIRED] = { "binding_required", "proof of possession required" },
	[AGENTID_R_BINDING_MISMATCH]
	= { "binding_mismatch", "proof of possession does not match the token" },
	[AGENTID_R_REVOKED] = { "revoked", "token has been revoked" },
	[AGENTID_R_SUSPENDED] = { "suspended", "token is suspended" },
	[AGENTID_R_STATUS_UNAVAILABLE] = { "status_unavailable", "revocation status unavailable" },
	[AGENTID_R_NO_KEYS] = { "no_keys", "no trusted keys available" },
	[AGENTID_R_CERT_INVALID] = { "cert_invalid", "certificate is not a valid X.509-SVID" },
	[AGENTID_R_CERT_EXPIRED]
	= { "cert_expired", "certificate has expired or is not yet valid" },
	[AGENTID_R_CERT_UNTRUSTED]
	= { "cert_untrusted", "certificate does not chain to a trusted authority" },
	[AGENTID_R_LEAF_IS_CA] = { "leaf_is_ca", "leaf certificate is a CA" },
	[AGENTID_R_BAD_KEY_USAGE] = { "bad_key_usage", "certificate key usage not allowed" },
	[AGENTID_R_BAD_KEY] = { "bad_key", "key is unusable or too weak" },
	[AGENTID_R_DPOP_INVALID] = { "dpop_invalid", "DPoP proof is invalid" },
	[AGENTID_R_DPOP_REPLAY] = { "dpop_replay", "DPoP proof was replayed" },
	[AGENTID_R_INTERNAL] = { "internal", "internal error" },
	[AGENTID_R_AUDIT_INVALID] = { "audit_invalid", "audit log failed verification" },
};

AGENTID_EXPORT const char *
agentid_reason_code(enum agentid_reason r)
{
	if ((unsigned)r >= AGENTID_R__COUNT || reasons[r].code == NULL)
		return "unknown";
	return reasons[r].code;
}

AGENTID_EXPORT const char *
agentid_reason_text(enum agentid_reason r)
{
	if ((unsigned)r >= AGENTID_R__COUNT || reasons[r].text == NULL)
		return "unknown reason";
	return reasons[r].text;
}

AGENTID_EXPORT int
agentid_error_set(struct agentid_error *err, enum agentid_reason r, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return AGENTID_EREJECTED;
	err->reason = r;
	err->detail[0] = '\0';
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
		va_end(ap);
	}
	return AGENTID_EREJECTED;
}

AGENTID_EXPORT void
agentid_error_clear(struct agentid_error *err)
{
	if (err == NULL)
		return;
	err->reason = AGENTID_R_OK;
	err->detail[0] = '\0';
}

static agentid_log_fn log_fn;
static void *log_arg;
static enum agentid_log_level log_max = AGENTID_LOG_INFO;

AGENTID_EXPORT void
agentid_set_log(agentid_log_fn fn, void *arg, enum agentid_log_level max_level)
{
	log_fn = fn;
	log_arg = arg;
	log_max = max_level;
}

AGENTID_EXPORT void
agentid_log(enum agentid_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (log_fn == NULL || level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_fn(log_arg, level, msg);
}

int
agentid_log_enabled(enum agentid_log_level level)
{
	return log_fn != NULL && level <= log_max;
}

AGENTID_EXPORT void
agentid_limits_init(struct agentid_limits *lim)
{
	lim->max_token_len = AGENTID_DEFAULT_MAX_TOKEN_LEN;
	lim->max_json_depth = AGENTID_DEFAULT_MAX_JSON_DEPTH;
}

AGENTID_EXPORT const char *
agentid_version(void)
{
	return PACKAGE_VERSION;
}
