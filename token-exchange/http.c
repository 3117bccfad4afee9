/*
 * HTTP response helpers and request-body handling shared by the
 * endpoints.  Every response that can carry a token or a decision about
 * one is sent with Cache-Control: no-store and Pragma: no-cache (RFC 6749
 * section 5.1).  Client input never produces a 5xx.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>

#include "exchange.h"

static void
no_store(struct evkeyvalq *h)
{
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "Pragma", "no-cache");
}

/*
 * evhttp writes the status line and headers into the connection's output
 * buffer and links the body behind them as a second chain, and
 * bufferevent_openssl hands every chain to its own SSL_write: two TLS
 * records, two sends and two encryptions per response.  Nothing has been
 * written when evhttp_send_reply returns (the write waits for the loop),
 * so copying a small response into one chain makes it one record.  The
 * connection and its bufferevent live until the response has been sent.
 */
#define ONE_RECORD_MAX 16384

static void
send_reply(struct xc_req *r, int code)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
	struct bufferevent *bev = NULL;
	struct evbuffer *out = NULL;

	if (r->tls && evcon != NULL && (bev = evhttp_connection_get_bufferevent(evcon)) != NULL)
		out = bufferevent_get_output(bev);
	evhttp_send_reply(r->req, code, NULL, NULL);
	if (out != NULL && evbuffer_get_length(out) <= ONE_RECORD_MAX)
		evbuffer_pullup(out, -1);
}

void
xc_send_json_text(struct xc_req *r, int code, const char *text, const char *ctype, int cacheable)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	struct evbuffer *b = evhttp_request_get_output_buffer(r->req);

	evhttp_add_header(h, "Content-Type", ctype != NULL ? ctype : "application/json");
	if (!cacheable)
		no_store(h);
	evbuffer_add(b, text, strlen(text));
	r->status = code;
	send_reply(r, code);
}

void
xc_send_json(struct xc_req *r, int code, const json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT);

	if (s == NULL) {
		xc_send_plain_error(r, 503, "out of memory");
		return;
	}
	xc_send_json_text(r, code, s, NULL, 0);
	free(s);
}

void
xc_send_oauth_error(struct xc_req *r, int code, const char *error, const char *fmt, ...)
{
	char desc[256];
	json_t *j;
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	/*
	 * error_description is limited to %x20-21 / %x23-5B / %x5D-7E (RFC
	 * 6749 section 5.2); descriptions may quote client input, so
	 * replace anything else.
	 */
	for (i = 0; desc[i] != '\0'; i++)
		if (desc[i] < 0x20 || desc[i] > 0x7e || desc[i] == '"' || desc[i] == '\\')
			desc[i] = '?';
	if (code == 401
	    && evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization")
	        != NULL) {
		/* RFC 6749 section 5.2: the client tried an Authorization scheme. */
		evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate",
		    "Basic realm=\"agentid-exchange\"");
	}
	j = json_pack("{s:s,s:s}", "error", error, "error_description", desc);
	if (j == NULL) {
		xc_send_plain_error(r, 503, "out of memory");
		return;
	}
	xc_send_json(r, code, j);
	json_decref(j);
}

void
xc_send_plain_error(struct xc_req *r, int code, const char *text)
{
	json_t *j = json_pack("{s:s}", "error", text);
	char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

	if (s == NULL) {
		json_decref(j);
		r->status = code;
		evhttp_send_error(r->req, code, NULL);
		return;
	}
	xc_send_json_text(r, code, s, NULL, 0);
	free(s);
	json_decref(j);
}

/* "application/x-www-form-urlencoded", optionally followed by parameters (charset=UTF-8). */
static int
is_form_type(const char *ct)
{
	static const char want[] = "application/x-www-form-urlencoded";
	size_t n = sizeof(want) - 1;
	const char *p;

	if (ct == NULL || strncasecmp(ct, want, n) != 0)
		return 0;
	p = ct + n;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return 1;
	if (*p != ';')
		return 0;
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	return strncasecmp(p, "charset=utf-8", 13) == 0
	    && (p[13] == '\0' || p[13] == ' ' || p[13] == ';');
}

int
xc_read_form(struct xc_req *r, struct xc_form **out)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	const char *ct;
	char errbuf[160];
	size_t len;
	char *body;

	*out = NULL;
	if (evhttp_request_get_command(r->req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", "POST");
		xc_send_plain_error(r, 405, "method_not_allowed");
		return -1;
	}
	ct = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type");
	if (!is_form_type(ct)) {
		xc_send_oauth_error(r, 400, "invalid_request",
		    "Content-Type must be application/x-www-form-urlencoded");
		return -1;
	}
	len = evbuffer_get_length(in);
	if (len > r->rt->cfg->max_body) {
		xc_send_plain_error(r, 413, "request body too large");
		return -1;
	}
	body = (char *)evbuffer_pullup(in, -1);
	if (len > 0 && body == NULL) {
		xc_send_plain_error(r, 503, "out of memory");
		return -1;
	}
	if (memchr(body != NULL ? body : "", '\0', len) != NULL) {
		xc_send_oauth_error(r, 400, "invalid_request", "NUL byte in request body");
		return -1;
	}
	errbuf[0] = '\0';
	if (xc_form_parse(body != NULL ? body : "", len, out, errbuf, sizeof(errbuf)) != 0) {
		xc_send_oauth_error(r, 400, "invalid_request", "%s", errbuf);
		return -1;
	}
	return 0;
}
