/* agentid: the umbrella header of libagentid. */
#ifndef AGENTID_AGENTID_H
#define AGENTID_AGENTID_H

#include <agentid/common.h>
#include <agentid/jose.h>
#include <agentid/spiffe.h>
#include <agentid/verify.h>
#include <agentid/audit.h>
#include <agentid/status.h>
#include <agentid/fetch.h>

#endif
