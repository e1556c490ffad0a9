/*
 * listen.cpp -- the C door of the listener's core, request framing, and the
 * HAProxy agent protocol.
 *
 * The agent check (HAProxy 2.6): HAProxy connects, sends its agent-send
 * string (here the node's name and a newline), reads one line and closes.
 * The words of the reply that matter:
 *   up ready N%   routable; `ready` also ends a drain an earlier reply set,
 *                 N% scales the weight of the server line (`weight 100`)
 *   drain         an operator drained the node (or gave it weight 0)
 *   down #text    anything else; HAProxy shows text as the check's reason
 * The agent has no rise/fall of its own: HAProxy applies a reply at once.
 */
#include "listen.hpp"

#include "errors.hpp"
#include "text.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace replroute
{

namespace
{

std::string_view until_newline(std::string_view request)
{
	size_t end = request.find('\n');
	std::string_view line = end == std::string_view::npos ? request : request.substr(0, end);
	if (!line.empty() && line.back() == '\r')
		line.remove_suffix(1);
	return line;
}

std::string seconds_text(int64_t us)
{
	return format_duration(us).text;
}

} // namespace

/* A short printable prefix of untrusted bytes (NULs included), never read
 * past the view. */
std::string shown(std::string_view text)
{
	std::string copy(text.substr(0, 64));
	for (char &c : copy)
		if (c == '\0')
			c = '?';
	std::string out = printable_prefix(copy.c_str(), 32).text;
	return out;
}

std::optional<std::string> table_refusal(const rr_listen_view &view)
{
	int64_t age_us = RR_NO_DURATION;
	switch (rr_table_freshness(view.header, view.now, view.stale_after_us, &age_us))
	{
	case RR_CAUSE_NONE:
	case RR_CAUSE_NO_CANDIDATE:
		return std::nullopt;
	case RR_CAUSE_NO_DATA:
		return std::string("the replroute worker has not published any health data yet");
	case RR_CAUSE_STALE:
		return "replroute's health data is " + seconds_text(age_us) +
		       " old, older than replroute.stale_after (" + seconds_text(view.stale_after_us) + ")";
	case RR_CAUSE_NOT_PRIMARY:
		return std::string("this server is a standby: ask the replroute of the primary");
	}
	return std::string("replroute cannot judge its data");
}

const rr_node_entry *find_entry(const rr_listen_view &view, std::string_view name)
{
	if (name.empty() || name.size() >= RR_NAME_LEN)
		return nullptr;
	for (uint32_t i = 0; i < view.n_entries; ++i)
		if (field_view(view.entries[i].name) == name)
			return &view.entries[i];
	return nullptr;
}

int32_t max_registered_weight(const rr_listen_view &view)
{
	int32_t max = 0;
	for (uint32_t i = 0; i < view.n_entries; ++i)
		if (view.entries[i].registered && view.entries[i].weight > max)
			max = view.entries[i].weight;
	return max;
}

std::string one_line(std::string_view text)
{
	std::string out(text);
	for (char &c : out)
		if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
			c = ' ';
	return out;
}

Reply agent_reply(rr_listen_event event, std::string_view request, const rr_listen_view &view)
{
	switch (event)
	{
	case RR_EVENT_REQUEST:
		break;
	case RR_EVENT_TOO_LONG:
		return {"down #replroute: request longer than " + std::to_string(RR_AGENT_REQUEST_MAX) +
		            " bytes; send a node name and a newline\n",
		        true};
	case RR_EVENT_TIMEOUT:
		return std::string("down #replroute: no node name and newline arrived in time "
		                   "(agent-send \"<name>\\n\")\n");
	case RR_EVENT_BUSY:
		return std::string("down #replroute: too many connections to the agent port\n");
	}

	std::string_view name = until_newline(request);
	rr_error error{};
	std::string name_text(name.substr(0, RR_NAME_LEN));
	if (name.size() >= RR_NAME_LEN || name.find('\0') != std::string_view::npos ||
	    rr_validate_node_name(name_text.c_str(), &error) != RR_OK)
		return {"down #replroute: not a node name: " + shown(name) + "\n", true};

	if (std::optional<std::string> refusal = table_refusal(view))
		return "down #replroute: " + *refusal + "\n";

	const rr_node_entry *entry = find_entry(view, name);
	if (entry == nullptr || !entry->registered)
		return "down #replroute: no node named " + name_text + " is registered\n";
	if (entry->routable)
		return "up ready " +
		       std::to_string(rr_agent_weight_percent(entry->weight, max_registered_weight(view))) +
		       "%\n";
	if (entry->drained)
		return std::string("drain\n");
	if (entry->state == RR_STATE_HEALTHY && entry->weight == 0)
		return std::string("drain\n");
	std::string reason = one_line(field_view(entry->reason));
	return "down #" + std::string(rr_state_name(entry->state)) +
	       (reason.empty() ? std::string() : ": " + reason) + "\n";
}

} // namespace replroute

using namespace replroute;

extern "C"
{

	rr_listen_scan_result rr_listen_scan(rr_listen_protocol protocol, const char *buffer,
	                                     size_t length) noexcept
	{
		if (buffer == nullptr)
			return RR_SCAN_INCOMPLETE;
		std::string_view seen(buffer, length);
		if (protocol == RR_LISTEN_AGENT)
		{
			if (seen.find('\n') != std::string_view::npos)
				return RR_SCAN_COMPLETE;
			return length >= RR_AGENT_REQUEST_MAX ? RR_SCAN_TOO_LONG : RR_SCAN_INCOMPLETE;
		}
		/* The empty line that ends the head; a bare LF is accepted as a line
		 * end (RFC 9112 2.2), so "\n\n" and "\n\r\n" end it too. */
		if (seen.find("\n\r\n") != std::string_view::npos ||
		    seen.find("\n\n") != std::string_view::npos)
			return RR_SCAN_COMPLETE;
		return length >= RR_HTTP_REQUEST_MAX ? RR_SCAN_TOO_LONG : RR_SCAN_INCOMPLETE;
	}

	rr_status rr_listen_reply(rr_listen_protocol protocol, rr_listen_event event,
	                          const char *request, size_t length, const rr_listen_view *view,
	                          char **reply, size_t *reply_length, bool *rejected,
	                          rr_error *error) noexcept
	{
		return guarded(
		    error, "rr_listen_reply",
		    [&]() -> rr_status
		    {
			    if (reply == nullptr || reply_length == nullptr || view == nullptr ||
			        view->header == nullptr || (view->entries == nullptr && view->n_entries > 0) ||
			        (request == nullptr && length > 0))
				    return fail(error, RR_ERR_NULL, "rr_listen_reply: a required argument is NULL");
			    *reply = nullptr;
			    *reply_length = 0;
			    std::string_view text(request == nullptr ? "" : request, length);
			    Reply r = protocol == RR_LISTEN_AGENT ? agent_reply(event, text, *view)
			                                          : http_reply(event, text, *view);
			    const std::string &out = r.text;
			    if (rejected != nullptr)
				    *rejected = r.rejected;
			    char *copy = static_cast<char *>(std::malloc(out.size() + 1));
			    if (copy == nullptr)
				    throw std::bad_alloc();
			    std::memcpy(copy, out.data(), out.size());
			    copy[out.size()] = '\0';
			    *reply = copy;
			    *reply_length = out.size();
			    return RR_OK;
		    });
	}

	void rr_listen_free(char *reply) noexcept
	{
		std::free(reply);
	}

	int32_t rr_agent_weight_percent(int32_t weight, int32_t max_weight) noexcept
	{
		constexpr int64_t kCap = 256; /* HAProxy's largest server weight */
		if (weight <= 0)
			return 1;
		if (max_weight < weight)
			max_weight = weight;
		if (max_weight <= kCap)
			return weight;
		int64_t scaled = (static_cast<int64_t>(weight) * kCap + max_weight / 2) / max_weight;
		return static_cast<int32_t>(scaled < 1 ? 1 : scaled);
	}
}
