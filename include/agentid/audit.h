/* agentid: audit (filled in by the audit/revocation work). */
#ifndef AGENTID_AUDIT_H
#define AGENTID_AUDIT_H

#include <agentid/common.h>

#endif
