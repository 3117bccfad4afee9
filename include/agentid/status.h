/* agentid: status (filled in by the audit/revocation work). */
#ifndef AGENTID_STATUS_H
#define AGENTID_STATUS_H

#include <agentid/common.h>

#endif
