/*
 * test_listen.cpp -- the listener's answers: HAProxy agent replies, the HTTP
 * request reader and its routes, the Prometheus text; hostile input.
 */
#include "listen.hpp"
#include "replroute/listener.h"

#include "support.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

using namespace replroute;
using namespace replroute::test;

namespace
{

rr_node_entry entry(const std::string &name, rr_node_state state, bool routable,
                    int32_t weight = 100)
{
	rr_node_entry e{};
	set_text(e.name, name);
	set_text(e.host, name + ".example");
	set_text(e.application_name, name);
	e.port = 5432;
	e.weight = weight;
	e.registered = true;
	e.state = state;
	e.routable = routable;
	e.lag_bytes = 0;
	e.lag_us = 0;
	e.known_replay_lsn = 0x3000060;
	e.state_since = kT0 - 5 * kSecond;
	e.probe_state = RR_PROBE_OK;
	e.probe_at = kT0 - kSecond / 10;
	return e;
}

struct Fixture
{
	rr_table_header header{};
	std::vector<rr_node_entry> entries;
	rr_listen_stats stats{};
	rr_listen_view view{};

	Fixture()
	{
		header.rounds = 42;
		header.worker_pid = 1234;
		header.in_recovery = false;
		header.registry_available = true;
		header.round_started_at = kT0 - 20000;
		header.published_at = kT0 - 10000;
		header.round_duration_us = 300;
		entries.push_back(entry("standby1", RR_STATE_HEALTHY, true));
		rr_node_entry lagging = entry("standby2", RR_STATE_LAGGING, false);
		set_text(lagging.reason, "12 MB behind > 8 MB\nsecond line");
		lagging.lag_bytes = 12 << 20;
		entries.push_back(lagging);
		rr_node_entry drained = entry("standby3", RR_STATE_DRAINED, false);
		drained.drained = true;
		set_text(drained.reason, "drained by an operator");
		entries.push_back(drained);
		rr_node_entry stray = entry("stray", RR_STATE_UNREGISTERED, false);
		stray.registered = false;
		entries.push_back(stray);
		stats.max_connections = 64;
	}

	rr_listen_view &get()
	{
		header.n_entries = static_cast<uint32_t>(entries.size());
		view.header = &header;
		view.entries = entries.data();
		view.n_entries = static_cast<uint32_t>(entries.size());
		view.now = kT0;
		view.stale_after_us = 2 * kSecond;
		view.worker_running = true;
		view.stats = &stats;
		return view;
	}
};

std::string reply(rr_listen_protocol protocol, const std::string &request, rr_listen_view &view,
                  rr_listen_event event = RR_EVENT_REQUEST)
{
	char *out = nullptr;
	size_t length = 0;
	rr_error error{};
	EXPECT_EQ(rr_listen_reply(protocol, event, request.data(), request.size(), &view, &out, &length,
	                          nullptr, &error),
	          RR_OK)
	    << error.message;
	std::string text(out == nullptr ? "" : out, length);
	rr_listen_free(out);
	return text;
}

std::string agent(const std::string &request, rr_listen_view &view)
{
	return reply(RR_LISTEN_AGENT, request, view);
}

std::string http(const std::string &request, rr_listen_view &view)
{
	return reply(RR_LISTEN_HTTP, request, view);
}

std::string get(const std::string &target, rr_listen_view &view)
{
	return http("GET " + target + " HTTP/1.1\r\nHost: db1\r\n\r\n", view);
}

int status_of(const std::string &response)
{
	if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12)
		return -1;
	return std::stoi(response.substr(9, 3));
}

std::string body_of(const std::string &response)
{
	size_t end = response.find("\r\n\r\n");
	return end == std::string::npos ? "" : response.substr(end + 4);
}

} // namespace

TEST(ListenScan, AgentWantsANewlineWithinItsLimit)
{
	EXPECT_EQ(rr_listen_scan(RR_LISTEN_AGENT, "standby1", 8), RR_SCAN_INCOMPLETE);
	EXPECT_EQ(rr_listen_scan(RR_LISTEN_AGENT, "standby1\n", 9), RR_SCAN_COMPLETE);
	std::string long_line(RR_AGENT_REQUEST_MAX, 'a');
	EXPECT_EQ(rr_listen_scan(RR_LISTEN_AGENT, long_line.data(), long_line.size()),
	          RR_SCAN_TOO_LONG);
	EXPECT_EQ(rr_listen_scan(RR_LISTEN_AGENT, nullptr, 0), RR_SCAN_INCOMPLETE);
}

TEST(ListenScan, HttpEndsAtTheEmptyLine)
{
	std::string head = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
	EXPECT_EQ(rr_listen_scan(RR_LISTEN_HTTP, head.data(), head.size()), RR_SCAN_INCOMPLETE);
	head += "\r\n";
	EXPECT_EQ(rr_listen_scan(RR_LISTEN_HTTP, head.data(), head.size()), RR_SCAN_COMPLETE);
	std::string lf = "GET / HTTP/1.0\n\n";
	EXPECT_EQ(rr_listen_scan(RR_LISTEN_HTTP, lf.data(), lf.size()), RR_SCAN_COMPLETE);
	std::string big(RR_HTTP_REQUEST_MAX, 'x');
	EXPECT_EQ(rr_listen_scan(RR_LISTEN_HTTP, big.data(), big.size()), RR_SCAN_TOO_LONG);
}

TEST(AgentReply, RoutableNodeIsUpAndReadyWithItsWeight)
{
	Fixture f;
	EXPECT_EQ(agent("standby1\n", f.get()), "up ready 100%\n");
	EXPECT_EQ(agent("standby1\r\n", f.get()), "up ready 100%\n");
	f.entries[0].weight = 50;
	EXPECT_EQ(agent("standby1\n", f.get()), "up ready 50%\n");
}

TEST(AgentReply, DrainedNodeIsDrained)
{
	Fixture f;
	EXPECT_EQ(agent("standby3\n", f.get()), "drain\n");
	rr_node_entry zero = entry("zero", RR_STATE_HEALTHY, false, 0);
	f.entries.push_back(zero);
	EXPECT_EQ(agent("zero\n", f.get()), "drain\n");
}

TEST(AgentReply, UnroutableNodeIsDownWithItsReasonOnOneLine)
{
	Fixture f;
	std::string r = agent("standby2\n", f.get());
	EXPECT_EQ(r, "down #lagging: 12 MB behind > 8 MB second line\n");
	EXPECT_EQ(r.find('\n'), r.size() - 1);
}

TEST(AgentReply, UnknownOrUnregisteredNameSaysSo)
{
	Fixture f;
	EXPECT_EQ(agent("nosuch\n", f.get()), "down #replroute: no node named nosuch is registered\n");
	EXPECT_EQ(agent("stray\n", f.get()), "down #replroute: no node named stray is registered\n");
}

TEST(AgentReply, StaleDataAndStandbyAndNoDataAreDown)
{
	Fixture f;
	rr_listen_view &view = f.get();
	view.now = kT0 + 5 * kSecond;
	std::string stale = agent("standby1\n", view);
	EXPECT_EQ(stale.rfind("down #replroute: replroute's health data is ", 0), 0u) << stale;
	EXPECT_NE(stale.find("older than replroute.stale_after (2 s)"), std::string::npos) << stale;

	Fixture g;
	g.header.in_recovery = true;
	EXPECT_EQ(agent("standby1\n", g.get()),
	          "down #replroute: this server is a standby: ask the replroute of the primary\n");

	Fixture h;
	h.header.published_at = RR_NO_TIME;
	EXPECT_NE(agent("standby1\n", h.get()).find("has not published"), std::string::npos);
}

TEST(AgentReply, HostileInputGetsADownLineThatEchoesLittle)
{
	Fixture f;
	std::string junk("\x01\x02\xff name with spaces\n", 22);
	std::string r = agent(junk, f.get());
	EXPECT_EQ(r.rfind("down #replroute: not a node name: ", 0), 0u) << r;
	EXPECT_EQ(r.find('\n'), r.size() - 1);
	for (char c : r.substr(0, r.size() - 1))
		EXPECT_TRUE(c >= 0x20 && c < 0x7f);
	EXPECT_EQ(agent("\n", f.get()).rfind("down #replroute: not a node name", 0), 0u);
	std::string nul("stand\0by1\n", 10);
	EXPECT_EQ(agent(nul, f.get()).rfind("down #replroute: not a node name", 0), 0u);
	std::string long_name(200, 'a');
	EXPECT_EQ(agent(long_name + "\n", f.get()).rfind("down #replroute: not a node name", 0), 0u);
	EXPECT_EQ(reply(RR_LISTEN_AGENT, "x", f.get(), RR_EVENT_TIMEOUT).rfind("down #replroute: ", 0),
	          0u);
	EXPECT_EQ(reply(RR_LISTEN_AGENT, "x", f.get(), RR_EVENT_TOO_LONG).rfind("down #replroute: ", 0),
	          0u);
	EXPECT_EQ(reply(RR_LISTEN_AGENT, "", f.get(), RR_EVENT_BUSY).rfind("down #replroute: ", 0), 0u);
}

TEST(AgentWeight, IdentityUpToHAProxysCapThenScaled)
{
	EXPECT_EQ(rr_agent_weight_percent(100, 100), 100);
	EXPECT_EQ(rr_agent_weight_percent(1, 256), 1);
	EXPECT_EQ(rr_agent_weight_percent(256, 256), 256);
	EXPECT_EQ(rr_agent_weight_percent(1000, 1000), 256);
	EXPECT_EQ(rr_agent_weight_percent(500, 1000), 128);
	EXPECT_EQ(rr_agent_weight_percent(1, 1000000), 1);
	EXPECT_EQ(rr_agent_weight_percent(1000000, 1000000), 256);
	EXPECT_EQ(rr_agent_weight_percent(300, 10), 256); /* max below weight: weight is the max */
}

TEST(HttpNode, RoutableIs200WithJson)
{
	Fixture f;
	std::string r = get("/node/standby1", f.get());
	EXPECT_EQ(status_of(r), 200) << r;
	EXPECT_NE(r.find("Content-Type: application/json\r\n"), std::string::npos);
	EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos);
	std::string body = body_of(r);
	EXPECT_NE(r.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
	EXPECT_NE(body.find("\"routable\":true"), std::string::npos) << body;
	EXPECT_NE(body.find("\"state\":\"healthy\""), std::string::npos) << body;
	EXPECT_NE(body.find("\"known_replay_lsn\":\"0/3000060\""), std::string::npos) << body;
}

TEST(HttpNode, UnroutableIs503AndUnknownIs404)
{
	Fixture f;
	std::string r = get("/node/standby2", f.get());
	EXPECT_EQ(status_of(r), 503);
	EXPECT_NE(body_of(r).find("\"reason\":\"12 MB behind > 8 MB\\nsecond line\""),
	          std::string::npos)
	    << r;
	EXPECT_EQ(status_of(get("/node/nosuch", f.get())), 404);
	EXPECT_EQ(status_of(get("/node/stray", f.get())), 404);
	f.header.in_recovery = true;
	r = get("/node/standby1", f.get());
	EXPECT_EQ(status_of(r), 503);
	EXPECT_NE(r.find("this server is a standby"), std::string::npos);
}

TEST(HttpNode, BoundsFromTheQuery)
{
	Fixture f;
	f.entries[0].lag_bytes = 2 << 20;
	f.entries[0].lag_us = 300000;
	EXPECT_EQ(status_of(get("/node/standby1?max_lag_bytes=4MB", f.get())), 200);
	std::string r = get("/node/standby1?max_lag_bytes=1MB", f.get());
	EXPECT_EQ(status_of(r), 503);
	EXPECT_NE(r.find("max_lag_bytes"), std::string::npos) << r;
	EXPECT_EQ(status_of(get("/node/standby1?max_lag_bytes=1048576", f.get())), 503);
	EXPECT_EQ(status_of(get("/node/standby1?max_lag=1s", f.get())), 200);
	EXPECT_EQ(status_of(get("/node/standby1?max_lag=250ms", f.get())), 503);
	EXPECT_EQ(status_of(get("/node/standby1?max_lag=0.5", f.get())), 200);
	EXPECT_EQ(status_of(get("/node/standby1?max_lag_bytes=4MB&max_lag=100ms", f.get())), 503);
}

TEST(HttpNode, BadQueriesAre400)
{
	Fixture f;
	for (const char *target :
	     {"/node/standby1?max_lag_bytes=-1", "/node/standby1?max_lag_bytes=1XB",
	      "/node/standby1?max_lag_bytes=99999999999999999999", "/node/standby1?max_lag=soon",
	      "/node/standby1?max_lag=1e400", "/node/standby1?max_lag=1..2s", "/node/standby1?foo=1",
	      "/node/standby1?max_lag=1s&max_lag=2s", "/node/standby1?max_lag", "/node/standby1?%zz=1",
	      "/node/standby1?min_lsn=0/1", "/metrics?x=1", "/readers?min_lsn=zz/1"})
		EXPECT_EQ(status_of(get(target, f.get())), 400) << target;
	EXPECT_EQ(status_of(get("/readers?min_lsn=0/1", f.get())), 200);
}

TEST(HttpReaders, ListsTheRoutableOnes)
{
	Fixture f;
	std::string r = get("/readers", f.get());
	EXPECT_EQ(status_of(r), 200);
	std::string body = body_of(r);
	EXPECT_NE(body.find("\"name\":\"standby1\""), std::string::npos) << body;
	EXPECT_EQ(body.find("standby2"), std::string::npos) << body;
	EXPECT_NE(body.find("\"reason\":null"), std::string::npos) << body;
	body = body_of(get("/readers?min_lsn=0/4000000", f.get()));
	EXPECT_NE(body.find("\"readers\":[]"), std::string::npos) << body;
	f.header.published_at = kT0 - 10 * kSecond;
	body = body_of(get("/readers", f.get()));
	EXPECT_NE(body.find("\"readers\":[]"), std::string::npos) << body;
	EXPECT_NE(body.find("older than replroute.stale_after"), std::string::npos) << body;
}

TEST(HttpRequest, StrictAboutTheHead)
{
	Fixture f;
	rr_listen_view &v = f.get();
	EXPECT_EQ(status_of(http("GET /readers HTTP/1.0\r\n\r\n", v)), 200);
	EXPECT_EQ(status_of(http("GET /readers HTTP/1.1\r\n\r\n", v)), 400); /* no Host */
	EXPECT_EQ(status_of(http("GET /readers HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", v)), 400);
	EXPECT_EQ(status_of(http("GET /readers HTTP/2.0\r\n\r\n", v)), 505);
	EXPECT_EQ(status_of(http("GET /readers HTTX/1.0\r\n\r\n", v)), 400);
	EXPECT_EQ(status_of(http("GET  /readers HTTP/1.0\r\n\r\n", v)), 400);
	EXPECT_EQ(status_of(http("GET /readers\r\n\r\n", v)), 400);
	EXPECT_EQ(status_of(http("GET readers HTTP/1.0\r\n\r\n", v)), 400);
	EXPECT_EQ(status_of(http("GET http://x/readers HTTP/1.0\r\n\r\n", v)), 400);
	EXPECT_EQ(status_of(http("GET /readers HTTP/1.0\r\nX: a\r\n b\r\n\r\n", v)), 400);
	EXPECT_EQ(status_of(http("GET /readers HTTP/1.0\r\nno colon\r\n\r\n", v)), 400);
	EXPECT_EQ(status_of(http("GET /readers HTTP/1.0\r\nContent-Length: 5\r\n\r\n", v)), 400);
	EXPECT_EQ(status_of(http("GET /readers HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", v)),
	          501);
	EXPECT_EQ(status_of(http("GET /readers HTTP/1.0\r\n\r\nGET /metrics HTTP/1.0\r\n\r\n", v)),
	          400);
	std::string post = http("POST /readers HTTP/1.0\r\n\r\n", v);
	EXPECT_EQ(status_of(post), 405);
	EXPECT_NE(post.find("Allow: GET, HEAD\r\n"), std::string::npos);
	EXPECT_EQ(status_of(http("DELETE /node/standby1 HTTP/1.0\r\n\r\n", v)), 405);
	EXPECT_EQ(status_of(get("/", v)), 404);
	EXPECT_EQ(status_of(get("/node/", v)), 404);
	EXPECT_EQ(status_of(get("/node/standby1/x", v)), 404);
	EXPECT_EQ(status_of(get("/node/%2e%2e/etc", v)), 404);
	EXPECT_EQ(status_of(get("/node/standby%00", v)), 400);
	EXPECT_EQ(status_of(get("/node/standby%2", v)), 400);
	EXPECT_EQ(status_of(get("/node/standby%31", v)), 200); /* %31 is '1' */
	EXPECT_EQ(status_of(get("/readers#frag", v)), 400);
	EXPECT_EQ(status_of(get("/" + std::string(3000, 'a'), v)), 414);
}

TEST(HttpRequest, HeadHasTheHeadersOnly)
{
	Fixture f;
	std::string r = http("HEAD /node/standby1 HTTP/1.0\r\n\r\n", f.get());
	EXPECT_EQ(status_of(r), 200);
	EXPECT_EQ(body_of(r), "");
	EXPECT_EQ(r.find("Content-Length: 0\r\n"), std::string::npos);
}

TEST(HttpRequest, EventsGetTheirStatus)
{
	Fixture f;
	EXPECT_EQ(status_of(reply(RR_LISTEN_HTTP, "GET /", f.get(), RR_EVENT_TIMEOUT)), 408);
	EXPECT_EQ(status_of(reply(RR_LISTEN_HTTP, std::string(100, 'a'), f.get(), RR_EVENT_TOO_LONG)),
	          414);
	EXPECT_EQ(status_of(reply(RR_LISTEN_HTTP, "GET / HTTP/1.0\r\nX: " + std::string(100, 'a'),
	                          f.get(), RR_EVENT_TOO_LONG)),
	          431);
	std::string busy = reply(RR_LISTEN_HTTP, "", f.get(), RR_EVENT_BUSY);
	EXPECT_EQ(status_of(busy), 503);
	EXPECT_NE(busy.find("Retry-After: 1\r\n"), std::string::npos);
}

TEST(HttpMetrics, SeriesOfTheExporterAndTheListener)
{
	Fixture f;
	f.stats.accepted[RR_LISTEN_AGENT] = 7;
	std::string r = get("/metrics", f.get());
	EXPECT_EQ(status_of(r), 200);
	EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
	std::string m = body_of(r);
	for (const char *line :
	     {"replroute_node_state_info{node=\"standby1\",state=\"healthy\"} 1\n",
	      "replroute_node_state_info{node=\"standby2\",state=\"lagging\"} 1\n",
	      "replroute_node_routable{node=\"standby1\"} 1\n",
	      "replroute_node_routable{node=\"standby2\"} 0\n",
	      "replroute_node_drained{node=\"standby3\"} 1\n",
	      "replroute_node_registered{node=\"stray\"} 0\n",
	      "replroute_node_lag_bytes{node=\"standby2\"} 12582912\n",
	      "replroute_node_probe_state_info{node=\"standby1\",probe_state=\"ok\"} 1\n",
	      "replroute_worker_rounds_total 42\n", "replroute_worker_running 1\n",
	      "replroute_worker_data_age_seconds 0.01\n", "replroute_routable_standbys 1\n",
	      "replroute_registered_standbys 3\n",
	      "replroute_listener_connections_total{protocol=\"agent\"} 7\n",
	      "# TYPE replroute_worker_rounds_total counter\n"})
		EXPECT_NE(m.find(line), std::string::npos) << line << m;
	/* stale: as the view shows it */
	f.header.published_at = kT0 - 10 * kSecond;
	m = body_of(get("/metrics", f.get()));
	EXPECT_NE(m.find("replroute_node_state_info{node=\"standby1\",state=\"unknown\"} 1\n"),
	          std::string::npos);
	EXPECT_NE(m.find("replroute_routable_standbys 0\n"), std::string::npos);
}

TEST(HttpMetrics, LabelsAreEscaped)
{
	Fixture f;
	rr_node_entry odd = entry("a\"b\\c\nd", RR_STATE_UNREGISTERED, false);
	odd.registered = false;
	f.entries.push_back(odd);
	std::string m = body_of(get("/metrics", f.get()));
	EXPECT_NE(m.find("{node=\"a\\\"b\\\\c\\nd\"}"), std::string::npos) << m;
}

TEST(Json, EscapesAndReplacesBrokenUtf8)
{
	EXPECT_EQ(json_string("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
	EXPECT_EQ(json_string("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
	EXPECT_EQ(json_string("\xff"), "\"\xef\xbf\xbd\"");
	EXPECT_EQ(json_string("\xc3"), "\"\xef\xbf\xbd\"");
	EXPECT_EQ(json_string("\xed\xa0\x80"),
	          "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* surrogate */
	EXPECT_EQ(json_string("\xf4\x90\x80\x80").find("\xf4"), std::string::npos);
}

/* Random bytes, random cuts of valid requests, oversized lines: every reply
 * is well-formed (one line for the agent; a status line for HTTP). */
TEST(ListenFuzz, AnyBytesGetAWellFormedReply)
{
	Fixture f;
	rr_listen_view &view = f.get();
	std::mt19937_64 rng(20261129);
	const std::vector<std::string> seeds = {
	    "standby1\n", "GET /node/standby1?max_lag=1s HTTP/1.1\r\nHost: x\r\n\r\n",
	    "GET /metrics HTTP/1.0\r\n\r\n",
	    "GET /readers?min_lsn=0/1&max_lag_bytes=1MB HTTP/1.0\r\n\r\n"};
	for (int i = 0; i < 20000; ++i)
	{
		std::string input;
		switch (rng() % 3)
		{
		case 0:
			input.resize(rng() % 300);
			for (char &c : input)
				c = static_cast<char>(rng());
			break;
		default:
			input = seeds[rng() % seeds.size()];
			for (int k = 0, n = static_cast<int>(rng() % 4); k < n && !input.empty(); ++k)
				input[rng() % input.size()] = static_cast<char>(rng());
			if (rng() % 4 == 0)
				input.resize(rng() % (input.size() + 1));
		}
		rr_listen_event event = static_cast<rr_listen_event>(rng() % 4);
		std::string a = reply(RR_LISTEN_AGENT, input, view, event);
		ASSERT_FALSE(a.empty());
		ASSERT_EQ(a.find('\n'), a.size() - 1) << a;
		std::string h = reply(RR_LISTEN_HTTP, input, view, event);
		int status = status_of(h);
		ASSERT_TRUE(status >= 200 && status < 600) << h;
		ASSERT_NE(h.find("\r\n\r\n"), std::string::npos);
		(void) rr_listen_scan(RR_LISTEN_HTTP, input.data(), input.size());
		(void) rr_listen_scan(RR_LISTEN_AGENT, input.data(), input.size());
	}
}

TEST(ListenReply, NullArgumentsFailCleanly)
{
	Fixture f;
	char *out = nullptr;
	size_t length = 0;
	rr_error error{};
	EXPECT_EQ(rr_listen_reply(RR_LISTEN_AGENT, RR_EVENT_REQUEST, "x\n", 2, nullptr, &out, &length,
	                          nullptr, &error),
	          RR_ERR_NULL);
	EXPECT_EQ(rr_listen_reply(RR_LISTEN_AGENT, RR_EVENT_REQUEST, nullptr, 2, &f.get(), &out,
	                          &length, nullptr, &error),
	          RR_ERR_NULL);
}

TEST(ListenReply, MalformedRequestsAreCountedAsRejected)
{
	Fixture f;
	auto rejected = [&](rr_listen_protocol protocol, const std::string &request)
	{
		char *out = nullptr;
		size_t length = 0;
		bool flag = false;
		rr_error error{};
		EXPECT_EQ(rr_listen_reply(protocol, RR_EVENT_REQUEST, request.data(), request.size(),
		                          &f.get(), &out, &length, &flag, &error),
		          RR_OK);
		rr_listen_free(out);
		return flag;
	};
	EXPECT_FALSE(rejected(RR_LISTEN_AGENT, "standby1\n"));
	EXPECT_FALSE(rejected(RR_LISTEN_AGENT, "nosuch\n"));
	EXPECT_TRUE(rejected(RR_LISTEN_AGENT, "\x01junk\n"));
	EXPECT_FALSE(rejected(RR_LISTEN_HTTP, "GET /node/nosuch HTTP/1.0\r\n\r\n"));
	EXPECT_TRUE(rejected(RR_LISTEN_HTTP, "GET /node/x?bad=1 HTTP/1.0\r\n\r\n"));
	EXPECT_TRUE(rejected(RR_LISTEN_HTTP, "\x16\x03\x01junk\r\n\r\n"));
}
