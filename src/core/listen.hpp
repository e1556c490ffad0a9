/*
 * listen.hpp -- the listener's answers, as pure functions of a table
 * snapshot (include/replroute/listener.h is their C door).
 *
 *   listen.cpp          the door, request framing, the agent protocol
 *   listen_http.cpp     a strict HTTP/1.0-1.1 request reader and the routes
 *                       /node/<name>, /readers, /metrics
 *   listen_metrics.cpp  the Prometheus text of /metrics
 *
 * Nothing here trusts the request: every byte of it may be hostile, and an
 * error reply never echoes more than a short printable prefix of it.
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include "replroute/listener.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace replroute
{

/* Why the table as a whole answers nothing now (no data, stale, standby),
 * in words for an operator; nullopt when it is fresh data of a primary. */
std::optional<std::string> table_refusal(const rr_listen_view &view);

/* The entry named name, or nullptr. */
const rr_node_entry *find_entry(const rr_listen_view &view, std::string_view name);

/* The largest weight of a registered node (for the agent's percentages). */
int32_t max_registered_weight(const rr_listen_view &view);

/* What to send, and whether the request was malformed (for the counters). */
struct Reply
{
	Reply(std::string text_, bool rejected_ = false) : text(std::move(text_)), rejected(rejected_)
	{
	}
	std::string text;
	bool rejected;
};

/* One line for HAProxy, newline included. */
Reply agent_reply(rr_listen_event event, std::string_view request, const rr_listen_view &view);

/* A whole HTTP response, head and body. */
Reply http_reply(rr_listen_event event, std::string_view request, const rr_listen_view &view);

/* Prometheus text exposition format 0.0.4. */
std::string metrics_text(const rr_listen_view &view);

/* text as a JSON string literal, quotes included (RFC 8259; bytes that are
 * not valid UTF-8 are replaced by U+FFFD so that the document stays valid). */
std::string json_string(std::string_view text);

/* A short printable prefix of untrusted bytes, for error messages. */
std::string shown(std::string_view text);

/* text with every byte outside printable ASCII replaced by a space, for a
 * one-line reason. */
std::string one_line(std::string_view text);

} // namespace replroute
