/*
 * listen_metrics.cpp -- /metrics in Prometheus text format 0.0.4.
 *
 * The node and worker series carry the names, labels and meanings of
 * monitoring/replroute-queries.yaml (the postgres_exporter queries), so that
 * the alert rules in monitoring/ work on either source.  Data past
 * replroute.stale_after shows as it does in replroute_nodes: state unknown,
 * not routable.  The replroute_listener_* series are the listener's own.
 */
#include "listen.hpp"

#include "text.hpp"

#include <cstdio>

namespace replroute
{

namespace
{

std::string label_value(std::string_view text)
{
	std::string out;
	for (char c : text)
	{
		if (c == '\\')
			out += "\\\\";
		else if (c == '"')
			out += "\\\"";
		else if (c == '\n')
			out += "\\n";
		else
			out.push_back(c);
	}
	return out;
}

std::string number(double value)
{
	char buf[64];
	std::snprintf(buf, sizeof buf, "%.9g", value);
	return buf;
}

std::string seconds_or_nan(int64_t us)
{
	return us < 0 ? std::string("NaN") : number(static_cast<double>(us) / 1e6);
}

class Writer
{
public:
	void family(const char *name, const char *type, const char *help)
	{
		out_ += "# HELP ";
		out_ += name;
		out_ += " ";
		out_ += help;
		out_ += "\n# TYPE ";
		out_ += name;
		out_ += " ";
		out_ += type;
		out_ += "\n";
	}
	void sample(const char *name, const std::string &labels, const std::string &value)
	{
		out_ += name;
		if (!labels.empty())
			out_ += "{" + labels + "}";
		out_ += " " + value + "\n";
	}
	std::string take() { return std::move(out_); }

private:
	std::string out_;
};

} // namespace

std::string metrics_text(const rr_listen_view &view)
{
	Writer w;
	const rr_table_header &h = *view.header;
	bool published = h.published_at != RR_NO_TIME;
	bool refused = table_refusal(view).has_value();
	int64_t age_us = published ? (view.now > h.published_at ? view.now - h.published_at : 0) : -1;

	auto node_label = [](const rr_node_entry &e)
	{ return "node=\"" + label_value(field_view(e.name)) + "\""; };
	auto per_node = [&](const char *name, const char *type, const char *help, auto value)
	{
		w.family(name, type, help);
		for (uint32_t i = 0; i < view.n_entries; ++i)
			w.sample(name, node_label(view.entries[i]), value(view.entries[i]));
	};

	w.family("replroute_node_state_info", "gauge", "1 for the state the node is in now");
	for (uint32_t i = 0; i < view.n_entries; ++i)
	{
		const rr_node_entry &e = view.entries[i];
		const char *state = refused ? rr_state_name(RR_STATE_UNKNOWN) : rr_state_name(e.state);
		w.sample("replroute_node_state_info",
		         node_label(e) + ",state=\"" + label_value(state) + "\"", "1");
	}
	per_node("replroute_node_routable", "gauge", "1 if replroute routes reads to this node now",
	         [&](const rr_node_entry &e)
	         { return std::string(!refused && e.routable ? "1" : "0"); });
	per_node("replroute_node_registered", "gauge",
	         "1 for a registered node, 0 for a walsender that matches none",
	         [](const rr_node_entry &e) { return std::string(e.registered ? "1" : "0"); });
	per_node("replroute_node_drained", "gauge", "1 if the node is drained",
	         [](const rr_node_entry &e) { return std::string(e.drained ? "1" : "0"); });
	per_node("replroute_node_weight", "gauge", "routing weight",
	         [](const rr_node_entry &e) { return std::to_string(e.weight); });
	per_node("replroute_node_lag_bytes", "gauge",
	         "bytes of WAL the standby has still to replay (0 when it replayed all it was sent)",
	         [](const rr_node_entry &e)
	         { return e.lag_bytes < 0 ? std::string("NaN") : std::to_string(e.lag_bytes); });
	per_node("replroute_node_replay_lag_seconds", "gauge",
	         "replay lag used for routing (idle-aware), seconds",
	         [](const rr_node_entry &e) { return seconds_or_nan(e.lag_us); });
	per_node("replroute_node_state_age_seconds", "gauge",
	         "seconds since the node entered its current state",
	         [&](const rr_node_entry &e)
	         {
		         return e.state_since == RR_NO_TIME || view.now < e.state_since
		                    ? std::string("NaN")
		                    : seconds_or_nan(view.now - e.state_since);
	         });
	per_node("replroute_node_slot_active", "gauge",
	         "1 if the node's replication slot is active, NaN without a slot",
	         [](const rr_node_entry &e) {
		         return e.slot_name[0] == '\0' ? std::string("NaN")
		                                       : std::string(e.slot_active ? "1" : "0");
	         });
	w.family("replroute_node_probe_state_info", "gauge",
	         "1 for the state of the client-side probe of a registered node");
	for (uint32_t i = 0; i < view.n_entries; ++i)
	{
		const rr_node_entry &e = view.entries[i];
		if (!e.registered)
			continue;
		w.sample("replroute_node_probe_state_info",
		         node_label(e) + ",probe_state=\"" +
		             label_value(rr_probe_state_name(e.probe_state)) + "\"",
		         "1");
	}
	w.family("replroute_node_probe_answer_age_seconds", "gauge",
	         "seconds since the probe's last answer, NaN when never answered");
	for (uint32_t i = 0; i < view.n_entries; ++i)
	{
		const rr_node_entry &e = view.entries[i];
		if (!e.registered)
			continue;
		w.sample("replroute_node_probe_answer_age_seconds", node_label(e),
		         e.probe_at == RR_NO_TIME || view.now < e.probe_at
		             ? std::string("NaN")
		             : seconds_or_nan(view.now - e.probe_at));
	}

	w.family("replroute_worker_running", "gauge", "1 while the replroute worker is running");
	w.sample("replroute_worker_running", "", view.worker_running ? "1" : "0");
	w.family("replroute_worker_rounds_total", "counter",
	         "observation rounds the worker has published");
	w.sample("replroute_worker_rounds_total", "", std::to_string(h.rounds));
	w.family("replroute_worker_round_age_seconds", "gauge", "seconds since the last round started");
	w.sample("replroute_worker_round_age_seconds", "",
	         h.round_started_at == RR_NO_TIME || view.now < h.round_started_at
	             ? std::string("NaN")
	             : seconds_or_nan(view.now - h.round_started_at));
	w.family("replroute_worker_last_round_duration_seconds", "gauge",
	         "duration of the last round, seconds");
	w.sample("replroute_worker_last_round_duration_seconds", "",
	         published ? seconds_or_nan(h.round_duration_us) : std::string("NaN"));
	w.family("replroute_worker_data_age_seconds", "gauge",
	         "age of the published health data; past replroute.stale_after nothing is routed");
	w.sample("replroute_worker_data_age_seconds", "", seconds_or_nan(age_us));
	w.family("replroute_worker_in_recovery", "gauge",
	         "1 if this server is a standby (its worker routes nothing)");
	w.sample("replroute_worker_in_recovery", "",
	         published ? std::string(h.in_recovery ? "1" : "0") : std::string("NaN"));

	int routable = 0, registered = 0;
	for (uint32_t i = 0; i < view.n_entries; ++i)
	{
		registered += view.entries[i].registered ? 1 : 0;
		routable += !refused && view.entries[i].routable ? 1 : 0;
	}
	w.family("replroute_routable_standbys", "gauge", "standbys reads may go to now");
	w.sample("replroute_routable_standbys", "", std::to_string(routable));
	w.family("replroute_registered_standbys", "gauge",
	         "standbys registered with replroute_add_node()");
	w.sample("replroute_registered_standbys", "", std::to_string(registered));

	if (view.stats != nullptr)
	{
		const rr_listen_stats &s = *view.stats;
		const char *protocols[] = {"agent", "http"};
		auto per_protocol =
		    [&](const char *name, const char *type, const char *help, const uint64_t *values)
		{
			w.family(name, type, help);
			for (int p = 0; p < RR_LISTEN_PROTOCOL_COUNT_; ++p)
				w.sample(name, std::string("protocol=\"") + protocols[p] + "\"",
				         std::to_string(values[p]));
		};
		per_protocol("replroute_listener_connections_total", "counter",
		             "connections the listener accepted since it started", s.accepted);
		per_protocol("replroute_listener_refused_total", "counter",
		             "connections closed at once because every slot was taken", s.refused);
		per_protocol("replroute_listener_answered_total", "counter",
		             "well-formed requests answered", s.answered);
		per_protocol("replroute_listener_rejected_total", "counter",
		             "malformed or oversized requests answered with an error", s.rejected);
		per_protocol("replroute_listener_timeouts_total", "counter",
		             "connections closed at their deadline without a complete request",
		             s.timed_out);
		w.family("replroute_listener_listening", "gauge",
		         "1 while the listener holds its port for the protocol");
		for (int p = 0; p < RR_LISTEN_PROTOCOL_COUNT_; ++p)
			w.sample("replroute_listener_listening",
			         std::string("protocol=\"") + protocols[p] + "\"", s.listening[p] ? "1" : "0");
		w.family("replroute_listener_open_connections", "gauge", "connections open now");
		w.sample("replroute_listener_open_connections", "", std::to_string(s.open_connections));
		w.family("replroute_listener_max_connections", "gauge", "replroute.listen_max_connections");
		w.sample("replroute_listener_max_connections", "", std::to_string(s.max_connections));
	}
	return w.take();
}

} // namespace replroute
