/*
 * listen_http.cpp -- a strict reader of one HTTP/1.0 or 1.1 request, and the
 * routes the listener serves:
 *
 *   GET /node/<name>[?max_lag_bytes=..&max_lag=..]
 *                   200 when the node is routable (and within the bounds),
 *                   503 when not, 404 when no such node is registered;
 *                   JSON with its state and reason
 *   GET /readers[?max_lag_bytes=..&max_lag=..&min_lsn=..]
 *                   the routable standbys, as replroute_readers() lists them
 *   GET /metrics    Prometheus text
 *
 * HEAD is served like GET without the body.  Every connection carries one
 * request (Connection: close): no keep-alive, no pipelining, no bodies.
 * Whatever is not a well-formed request of that kind gets a 4xx/5xx reply
 * that says what was wrong.
 */
#include "listen.hpp"

#include "text.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <variant>
#include <vector>

namespace replroute
{

namespace
{

constexpr size_t kMaxTarget = 2048;

struct Response
{
	int status = 200;
	std::string content_type = "application/json";
	std::string body;
	std::string extra_headers; /* complete lines, CRLF included */
};

const char *status_text(int status)
{
	switch (status)
	{
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}

Response error_response(int status, const std::string &message)
{
	Response r;
	r.status = status;
	r.body = "{\"error\":" + json_string(message) + "}\n";
	return r;
}

std::string render(const Response &r, bool head_only)
{
	std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + status_text(r.status) +
	                  "\r\nContent-Type: " + r.content_type +
	                  "\r\nContent-Length: " + std::to_string(r.body.size()) +
	                  "\r\nCache-Control: no-store\r\nConnection: close\r\n" + r.extra_headers +
	                  "\r\n";
	if (!head_only)
		out += r.body;
	return out;
}

bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool iequals(std::string_view a, std::string_view b)
{
	if (a.size() != b.size())
		return false;
	for (size_t i = 0; i < a.size(); ++i)
	{
		unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
		if (std::tolower(x) != std::tolower(y))
			return false;
	}
	return true;
}

int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decoding; '+' is a space only in a query.  nullopt for a broken
 * escape or a decoded control character. */
std::optional<std::string> percent_decode(std::string_view in, bool query)
{
	std::string out;
	out.reserve(in.size());
	for (size_t i = 0; i < in.size(); ++i)
	{
		char c = in[i];
		if (c == '%')
		{
			if (i + 2 >= in.size())
				return std::nullopt;
			int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
			if (hi < 0 || lo < 0)
				return std::nullopt;
			c = static_cast<char>(hi * 16 + lo);
			i += 2;
		}
		else if (c == '+' && query)
			c = ' ';
		if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
			return std::nullopt;
		out.push_back(c);
	}
	return out;
}

/* Bounds of /node and /readers, as replroute_pick_reader's arguments. */
struct Bounds
{
	int64_t max_lag_bytes = RR_NO_LIMIT;
	int64_t max_lag_us = RR_NO_LIMIT;
	rr_lsn min_lsn = 0;
};

/* "1048576", "512kB", "1MB" (powers of 1024, case-insensitive units). */
std::optional<int64_t> parse_bytes(std::string_view text)
{
	uint64_t number = 0;
	auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
	if (ec != std::errc() || end == text.data())
		return std::nullopt;
	std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
	uint64_t scale = 1;
	if (unit.empty() || iequals(unit, "B"))
		scale = 1;
	else if (iequals(unit, "kB"))
		scale = 1ULL << 10;
	else if (iequals(unit, "MB"))
		scale = 1ULL << 20;
	else if (iequals(unit, "GB"))
		scale = 1ULL << 30;
	else if (iequals(unit, "TB"))
		scale = 1ULL << 40;
	else
		return std::nullopt;
	constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
	if (number > kMax / scale)
		return std::nullopt;
	return static_cast<int64_t>(number * scale);
}

/* "250ms", "1.5s", "2min", "100us"; a bare number is seconds (as an interval
 * literal is). */
std::optional<int64_t> parse_duration(std::string_view text)
{
	size_t digits = 0;
	while (digits < text.size() &&
	       ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.'))
		++digits;
	std::string number(text.substr(0, digits));
	std::string_view unit = text.substr(digits);
	if (number.empty() || number.size() > 20 || number.front() == '.' || number.back() == '.' ||
	    std::count(number.begin(), number.end(), '.') > 1)
		return std::nullopt;
	double value = std::strtod(number.c_str(), nullptr);
	double scale;
	if (unit.empty() || unit == "s")
		scale = 1e6;
	else if (unit == "us")
		scale = 1;
	else if (unit == "ms")
		scale = 1e3;
	else if (unit == "min")
		scale = 60e6;
	else if (unit == "h")
		scale = 3600e6;
	else
		return std::nullopt;
	double us = value * scale;
	if (!std::isfinite(us) || us < 0 || us > 9.2e18)
		return std::nullopt;
	return static_cast<int64_t>(std::llround(us));
}

/* "16/B374D848", as pg_lsn prints it. */
std::optional<rr_lsn> parse_lsn(std::string_view text)
{
	size_t slash = text.find('/');
	if (slash == std::string_view::npos || slash == 0 || slash > 8 ||
	    text.size() - slash - 1 == 0 || text.size() - slash - 1 > 8)
		return std::nullopt;
	uint32_t hi = 0, lo = 0;
	auto r1 = std::from_chars(text.data(), text.data() + slash, hi, 16);
	auto r2 = std::from_chars(text.data() + slash + 1, text.data() + text.size(), lo, 16);
	if (r1.ec != std::errc() || r1.ptr != text.data() + slash || r2.ec != std::errc() ||
	    r2.ptr != text.data() + text.size())
		return std::nullopt;
	return (static_cast<rr_lsn>(hi) << 32) | lo;
}

/* Parses the query against the parameters a route knows; a message for what
 * is wrong (an unknown, repeated or malformed parameter). */
std::optional<std::string> parse_query(std::string_view query, bool allow_bounds,
                                       bool allow_min_lsn, Bounds &bounds)
{
	if (query.empty())
		return std::nullopt;
	std::vector<std::string> seen;
	size_t start = 0;
	while (start <= query.size())
	{
		size_t amp = query.find('&', start);
		std::string_view pair = query.substr(
		    start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
		start = amp == std::string_view::npos ? query.size() + 1 : amp + 1;
		size_t eq = pair.find('=');
		if (eq == std::string_view::npos)
			return "query parameter without a value: '" + shown(pair) + "'";
		std::optional<std::string> key = percent_decode(pair.substr(0, eq), true);
		std::optional<std::string> value = percent_decode(pair.substr(eq + 1), true);
		if (!key || !value)
			return std::string("broken percent-encoding in the query");
		if (std::find(seen.begin(), seen.end(), *key) != seen.end())
			return "query parameter given twice: " + shown(*key);
		seen.push_back(*key);
		if (allow_bounds && *key == "max_lag_bytes")
		{
			std::optional<int64_t> v = parse_bytes(*value);
			if (!v)
				return "max_lag_bytes must be a byte count such as 1048576 or 1MB, not '" +
				       shown(*value) + "'";
			bounds.max_lag_bytes = *v;
		}
		else if (allow_bounds && *key == "max_lag")
		{
			std::optional<int64_t> v = parse_duration(*value);
			if (!v)
				return "max_lag must be a duration such as 500ms or 2s, not '" + shown(*value) +
				       "'";
			bounds.max_lag_us = *v;
		}
		else if (allow_min_lsn && *key == "min_lsn")
		{
			std::optional<rr_lsn> v = parse_lsn(*value);
			if (!v)
				return "min_lsn must be an LSN such as 0/3000060, not '" + shown(*value) + "'";
			bounds.min_lsn = *v;
		}
		else
			return "unknown query parameter '" + shown(*key) + "'" +
			       (allow_bounds ? std::string(" (known: max_lag_bytes, max_lag") +
			                           (allow_min_lsn ? ", min_lsn)" : ")")
			                     : std::string(" (this path takes none)"));
	}
	return std::nullopt;
}

rr_pick_request pick_request(const rr_listen_view &view, const Bounds &bounds)
{
	rr_pick_request request{};
	request.now = view.now;
	request.stale_after_us = view.stale_after_us;
	request.max_lag_bytes = bounds.max_lag_bytes;
	request.max_lag_us = bounds.max_lag_us;
	request.min_lsn = bounds.min_lsn;
	request.policy = RR_POLICY_WEIGHTED;
	return request;
}

std::string json_number(int64_t value, bool known)
{
	return known ? std::to_string(value) : std::string("null");
}

std::string json_seconds(int64_t us)
{
	if (us < 0)
		return "null";
	char buf[48];
	std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(us) / 1e6);
	return buf;
}

std::string json_lsn(rr_lsn lsn)
{
	if (lsn == 0)
		return "null";
	char buf[32];
	std::snprintf(buf, sizeof buf, "\"%X/%X\"", static_cast<unsigned>(lsn >> 32),
	              static_cast<unsigned>(lsn & 0xffffffffu));
	return buf;
}

std::string data_age_json(const rr_listen_view &view)
{
	if (view.header->published_at == RR_NO_TIME)
		return "null";
	int64_t age = view.now > view.header->published_at ? view.now - view.header->published_at : 0;
	return json_seconds(age);
}

/* Why a routable entry does not meet the bounds; nullopt when it does. */
std::optional<std::string> outside_bounds(const rr_node_entry &entry, const Bounds &bounds)
{
	if (bounds.max_lag_bytes >= 0)
	{
		if (entry.lag_bytes < 0)
			return std::string("lag in bytes unknown, max_lag_bytes given");
		if (entry.lag_bytes > bounds.max_lag_bytes)
			return std::string(format_bytes_against(entry.lag_bytes, bounds.max_lag_bytes).text) +
			       " behind > max_lag_bytes " +
			       format_bytes_against(bounds.max_lag_bytes, entry.lag_bytes).text;
	}
	if (bounds.max_lag_us >= 0)
	{
		if (entry.lag_us < 0)
			return std::string("replay lag unknown, max_lag given");
		if (entry.lag_us > bounds.max_lag_us)
			return "replay lag " +
			       std::string(format_duration_against(entry.lag_us, bounds.max_lag_us).text) +
			       " > max_lag " + format_duration_against(bounds.max_lag_us, entry.lag_us).text;
	}
	if (bounds.min_lsn != 0 &&
	    (entry.known_replay_lsn == 0 || entry.known_replay_lsn < bounds.min_lsn))
		return std::string("not known to have replayed min_lsn");
	return std::nullopt;
}

Response node_route(const rr_listen_view &view, const std::string &name, const Bounds &bounds)
{
	Response r;
	if (std::optional<std::string> refusal = table_refusal(view))
	{
		r.status = 503;
		r.body = "{\"node\":" + json_string(name) +
		         ",\"routable\":false,\"state\":\"unknown\",\"reason\":" + json_string(*refusal) +
		         ",\"data_age_seconds\":" + data_age_json(view) + "}\n";
		return r;
	}
	const rr_node_entry *entry = find_entry(view, name);
	if (entry == nullptr || !entry->registered)
	{
		r = error_response(404, "no node named '" + shown(name) + "' is registered");
		return r;
	}
	rr_pick_request request = pick_request(view, bounds);
	bool ok = entry->routable && rr_entry_qualifies(entry, &request);
	std::string reason;
	if (!entry->routable)
		reason = std::string(field_view(entry->reason));
	else if (std::optional<std::string> why = outside_bounds(*entry, bounds))
		reason = *why;
	else if (!ok)
		reason = "outside the bounds";
	r.status = ok ? 200 : 503;
	r.body = "{\"node\":" + json_string(name) + ",\"routable\":" + (ok ? "true" : "false") +
	         ",\"state\":" + json_string(rr_state_name(entry->state)) +
	         ",\"reason\":" + (reason.empty() ? std::string("null") : json_string(reason)) +
	         ",\"weight\":" + std::to_string(entry->weight) +
	         ",\"drained\":" + (entry->drained ? "true" : "false") +
	         ",\"lag_bytes\":" + json_number(entry->lag_bytes, entry->lag_bytes >= 0) +
	         ",\"lag_seconds\":" + json_seconds(entry->lag_us) +
	         ",\"known_replay_lsn\":" + json_lsn(entry->known_replay_lsn) +
	         ",\"data_age_seconds\":" + data_age_json(view) + "}\n";
	return r;
}

Response readers_route(const rr_listen_view &view, const Bounds &bounds)
{
	Response r;
	std::optional<std::string> refusal = table_refusal(view);
	rr_pick_request request = pick_request(view, bounds);
	std::string list;
	if (!refusal)
		for (uint32_t i = 0; i < view.n_entries; ++i)
		{
			const rr_node_entry &e = view.entries[i];
			if (!rr_entry_qualifies(&e, &request))
				continue;
			if (!list.empty())
				list += ",";
			list += "{\"name\":" + json_string(field_view(e.name)) +
			        ",\"host\":" + json_string(field_view(e.host)) +
			        ",\"port\":" + std::to_string(e.port) +
			        ",\"weight\":" + std::to_string(e.weight) +
			        ",\"lag_bytes\":" + json_number(e.lag_bytes, e.lag_bytes >= 0) +
			        ",\"lag_seconds\":" + json_seconds(e.lag_us) +
			        ",\"known_replay_lsn\":" + json_lsn(e.known_replay_lsn) + "}";
		}
	r.body = "{\"readers\":[" + list + "],\"reason\":" +
	         (refusal        ? json_string(*refusal)
	          : list.empty() ? json_string("no healthy standby within the bounds")
	                         : std::string("null")) +
	         ",\"data_age_seconds\":" + data_age_json(view) + "}\n";
	return r;
}

struct Parsed
{
	bool head = false;
	std::string path;
	std::string query;
};

/* The request head, strictly; an error response for anything else. */
std::variant<Parsed, Response> parse_request(std::string_view request)
{
	/* Lines up to the empty one; a bare LF ends a line too. */
	std::vector<std::string_view> lines;
	size_t pos = 0;
	for (;;)
	{
		size_t nl = request.find('\n', pos);
		if (nl == std::string_view::npos)
			return error_response(400, "the request head does not end with an empty line");
		std::string_view line = request.substr(pos, nl - pos);
		if (!line.empty() && line.back() == '\r')
			line.remove_suffix(1);
		pos = nl + 1;
		if (line.empty())
		{
			if (lines.empty())
				continue; /* RFC 9112 2.2: empty lines before the request line */
			break;
		}
		lines.push_back(line);
	}
	if (pos != request.size())
		return error_response(400, "a request body or a second request is not accepted");

	std::string_view line = lines.front();
	for (char c : line)
		if (static_cast<unsigned char>(c) < 0x21 && c != ' ')
			return error_response(400, "control character in the request line");
	size_t sp1 = line.find(' ');
	size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
	if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
	    line.find(' ', sp2 + 1) != std::string_view::npos || sp1 == 0 || sp2 == sp1 + 1 ||
	    sp2 + 1 == line.size())
		return error_response(400, "the request line must be METHOD SP TARGET SP HTTP/1.x");
	std::string_view method = line.substr(0, sp1);
	std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
	std::string_view version = line.substr(sp2 + 1);

	bool http11;
	if (version == "HTTP/1.1")
		http11 = true;
	else if (version == "HTTP/1.0")
		http11 = false;
	else if (version.size() == 8 && version.substr(0, 5) == "HTTP/" &&
	         std::isdigit(static_cast<unsigned char>(version[5])) && version[6] == '.' &&
	         std::isdigit(static_cast<unsigned char>(version[7])))
		return error_response(505, "only HTTP/1.0 and HTTP/1.1 are served");
	else
		return error_response(400, "the request line must end with HTTP/1.0 or HTTP/1.1");
	for (char c : method)
		if (!is_tchar(static_cast<unsigned char>(c)))
			return error_response(400, "the method is not a token");

	int hosts = 0;
	for (size_t i = 1; i < lines.size(); ++i)
	{
		std::string_view h = lines[i];
		if (h.front() == ' ' || h.front() == '\t')
			return error_response(400, "folded header lines are not accepted");
		size_t colon = h.find(':');
		if (colon == std::string_view::npos || colon == 0)
			return error_response(400, "a header line is not NAME: VALUE");
		std::string_view name = h.substr(0, colon);
		for (char c : name)
			if (!is_tchar(static_cast<unsigned char>(c)))
				return error_response(400, "a header name is not a token");
		std::string_view value = h.substr(colon + 1);
		for (char c : value)
			if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
				return error_response(400, "control character in a header value");
		while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
			value.remove_prefix(1);
		while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
			value.remove_suffix(1);
		if (iequals(name, "Host"))
			++hosts;
		else if (iequals(name, "Transfer-Encoding"))
			return error_response(501, "request bodies are not accepted");
		else if (iequals(name, "Content-Length") && value != "0")
			return error_response(400, "request bodies are not accepted");
	}
	if (hosts > 1 || (http11 && hosts == 0))
		return error_response(400, "an HTTP/1.1 request needs exactly one Host header");

	if (method != "GET" && method != "HEAD")
	{
		Response r = error_response(405, "only GET and HEAD are served");
		r.extra_headers = "Allow: GET, HEAD\r\n";
		return r;
	}
	if (target.size() > kMaxTarget)
		return error_response(414, "the request target is longer than " +
		                               std::to_string(kMaxTarget) + " bytes");
	if (target.empty() || target.front() != '/')
		return error_response(400, "the request target must be a path beginning with /");
	if (target.find('#') != std::string_view::npos)
		return error_response(400, "a fragment (#) is not accepted in the target");

	Parsed p;
	p.head = method == "HEAD";
	size_t q = target.find('?');
	std::optional<std::string> path = percent_decode(target.substr(0, q), false);
	if (!path)
		return error_response(400, "broken percent-encoding or a control character in the path");
	p.path = *path;
	if (q != std::string_view::npos)
		p.query = std::string(target.substr(q + 1));
	return p;
}

Response route(const Parsed &p, const rr_listen_view &view)
{
	Bounds bounds;
	std::string_view path = p.path;
	constexpr std::string_view kNode = "/node/";
	if (path.substr(0, kNode.size()) == kNode)
	{
		std::string name(path.substr(kNode.size()));
		if (name.empty() || name.find('/') != std::string::npos)
			return error_response(404, "use /node/<name>");
		if (std::optional<std::string> bad = parse_query(p.query, true, false, bounds))
			return error_response(400, *bad);
		return node_route(view, name, bounds);
	}
	if (path == "/readers")
	{
		if (std::optional<std::string> bad = parse_query(p.query, true, true, bounds))
			return error_response(400, *bad);
		return readers_route(view, bounds);
	}
	if (path == "/metrics")
	{
		if (std::optional<std::string> bad = parse_query(p.query, false, false, bounds))
			return error_response(400, *bad);
		Response r;
		r.content_type = "text/plain; version=0.0.4; charset=utf-8";
		r.body = metrics_text(view);
		return r;
	}
	return error_response(404, "no such path: " + shown(path) +
	                               " (served: /node/<name>, /readers, /metrics)");
}

} // namespace

Reply http_reply(rr_listen_event event, std::string_view request, const rr_listen_view &view)
{
	switch (event)
	{
	case RR_EVENT_REQUEST:
		break;
	case RR_EVENT_TOO_LONG:
		if (request.find('\n') == std::string_view::npos)
			return {render(error_response(414, "the request line is longer than " +
			                                       std::to_string(RR_HTTP_REQUEST_MAX) + " bytes"),
			               false),
			        true};
		return {render(error_response(431, "the request head is longer than " +
		                                       std::to_string(RR_HTTP_REQUEST_MAX) + " bytes"),
		               false),
		        true};
	case RR_EVENT_TIMEOUT:
		return {render(error_response(408, "the request did not arrive in time"), false)};
	case RR_EVENT_BUSY:
	{
		Response r = error_response(503, "too many connections; try again");
		r.extra_headers = "Retry-After: 1\r\n";
		return {render(r, false)};
	}
	}
	std::variant<Parsed, Response> parsed = parse_request(request);
	if (Response *bad = std::get_if<Response>(&parsed))
		return {render(*bad, false), true};
	const Parsed &p = std::get<Parsed>(parsed);
	Response r = route(p, view);
	/* A query the route could not read is the client's error too; an unknown
	 * path or node is an answer. */
	return {render(r, p.head), r.status == 400};
}

std::string json_string(std::string_view text)
{
	std::string out = "\"";
	size_t i = 0;
	while (i < text.size())
	{
		unsigned char c = static_cast<unsigned char>(text[i]);
		if (c < 0x80)
		{
			switch (c)
			{
			case '"':
				out += "\\\"";
				break;
			case '\\':
				out += "\\\\";
				break;
			case '\n':
				out += "\\n";
				break;
			case '\r':
				out += "\\r";
				break;
			case '\t':
				out += "\\t";
				break;
			default:
				if (c < 0x20 || c == 0x7f)
				{
					char buf[8];
					std::snprintf(buf, sizeof buf, "\\u%04x", c);
					out += buf;
				}
				else
					out.push_back(static_cast<char>(c));
			}
			++i;
			continue;
		}
		/* A well-formed UTF-8 sequence is copied; anything else is U+FFFD. */
		size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
		if (c >= 0xe0 && c <= 0xef)
			n = 3;
		bool ok = n > 0 && i + n <= text.size();
		for (size_t k = 1; ok && k < n; ++k)
			ok = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
		if (ok && n == 3)
		{
			unsigned char c1 = static_cast<unsigned char>(text[i + 1]);
			ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
		}
		if (ok && n == 4)
		{
			unsigned char c1 = static_cast<unsigned char>(text[i + 1]);
			ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
		}
		if (ok)
		{
			out.append(text.substr(i, n));
			i += n;
		}
		else
		{
			out += "\xef\xbf\xbd";
			++i;
		}
	}
	out += "\"";
	return out;
}

} // namespace replroute
