/* agentid: fetch (filled in by the audit/revocation work). */
#ifndef AGENTID_FETCH_H
#define AGENTID_FETCH_H

#include <agentid/common.h>

#endif
