#!/usr/bin/env bash
# Scrape replroute's own /metrics (the listener's HTTP port) with Debian's
# prometheus, with the alert rules of replroute-alerts.yml loaded, against a
# running cluster.
#
#   monitoring/test-listener-metrics.sh DIR PGPORT
#
# DIR: the cluster's directory (scripts/rr-cluster start DIR), where
# prometheus keeps its data and log. PGPORT: the primary's port.  Sets
# replroute.http_port = $LISTEN_PORT (default 19188) on the primary with ALTER
# SYSTEM and resets it at the end; prometheus listens on 127.0.0.1:$PROM_PORT
# (default 19090).  Drains and undrains standby2 on the way.  Closes with
# `N passed, N failed`.
set -uo pipefail

dir=${1:?usage: test-listener-metrics.sh DIR PGPORT}
pgport=${2:?usage: test-listener-metrics.sh DIR PGPORT}
lport=${LISTEN_PORT:-19188}
pport=${PROM_PORT:-19090}
here=$(cd "$(dirname "$0")" && pwd)
psql="$(pg_config --bindir)/psql"
passed=0 failed=0

pass() { passed=$((passed + 1)); echo "PASS  $1"; }
fail() { failed=$((failed + 1)); echo "FAIL  $1${2:+  ($2)}"; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }
sql() { "$psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -c "$1"; }

for tool in prometheus promtool curl; do
	command -v "$tool" >/dev/null || { fail "$tool installed" "apt-get install prometheus curl"; finish; }
done
for port in "$lport" "$pport"; do
	if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; then
		fail "port $port free" "something already listens there; set LISTEN_PORT / PROM_PORT"
		finish
	fi
done

sql "ALTER SYSTEM SET replroute.http_port = $lport" && sql "ALTER SYSTEM SET replroute.agent_listen_addresses = '127.0.0.1'" &&
	sql "SELECT pg_reload_conf()" >/dev/null
prom_pid=""
cleanup() {
	[ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
	sql "SELECT replroute_undrain('standby2')" >/dev/null 2>&1 || true
	sql "ALTER SYSTEM RESET replroute.http_port" >/dev/null 2>&1
	sql "ALTER SYSTEM RESET replroute.agent_listen_addresses" >/dev/null 2>&1
	sql "SELECT pg_reload_conf()" >/dev/null 2>&1
}
trap cleanup EXIT

scrape() { curl -fsS --max-time 5 "http://127.0.0.1:$lport/metrics"; }
up=""
for _ in $(seq 1 100); do
	if scrape >/dev/null 2>&1; then up=1; break; fi
	sleep 0.1
done
[ -n "$up" ] || { fail "the listener serves /metrics on port $lport" "see the primary's log"; finish; }
pass "the listener serves /metrics on 127.0.0.1:$lport"

if scrape | promtool check metrics >"$dir/promtool-metrics.out" 2>&1; then
	pass "promtool check metrics: the exposition is clean"
else
	fail "promtool check metrics" "$(head -n 3 "$dir/promtool-metrics.out")"
fi

mkdir -p "$dir/prometheus"
cp "$here/replroute-alerts.yml" "$dir/prometheus/"
cat >"$dir/prometheus/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - replroute-alerts.yml
scrape_configs:
  - job_name: replroute
    static_configs:
      - targets: ['127.0.0.1:$lport']
EOF
prometheus --config.file="$dir/prometheus/prometheus.yml" --storage.tsdb.path="$dir/prometheus/data" \
	--web.listen-address="127.0.0.1:$pport" >"$dir/prometheus/prometheus.log" 2>&1 &
prom_pid=$!

query() { # PROMQL: the values of the result, one per line
	curl -fsS --max-time 5 "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1" |
		python3 -c 'import json,sys; [print(r["value"][1]) for r in json.load(sys.stdin)["data"]["result"]]'
}
wait_query() { # NAME PROMQL EXPECTED
	local got=""
	for _ in $(seq 1 150); do
		got=$(query "$2" 2>/dev/null | head -n 1)
		[ "$got" = "$3" ] && { pass "$1"; return; }
		sleep 0.2
	done
	fail "$1" "$2 = '${got}', wanted $3"
}

wait_query "prometheus scrapes the listener" 'up{job="replroute"}' 1
wait_query "2 routable standbys" 'replroute_routable_standbys' 2
wait_query "standby1 healthy" 'replroute_node_state_info{node="standby1",state="healthy"}' 1
wait_query "worker running" 'replroute_worker_running' 1
wait_query "data fresh" 'replroute_worker_data_age_seconds < bool 2' 1
wait_query "rounds counted" 'replroute_worker_rounds_total > bool 0' 1
wait_query "probe state" 'replroute_node_probe_state_info{node="standby2",probe_state="ok"}' 1

sql "SELECT replroute_drain('standby2')" >/dev/null
wait_query "drained standby2 seen by prometheus" 'replroute_node_drained{node="standby2"}' 1
wait_query "routable standbys 1 while drained" 'replroute_routable_standbys' 1
# The alert's expression against the live series: a drained node is left out.
wait_query "ReplrouteStandbyNotRoutable's expression leaves the drained node out" \
	'count(replroute_node_routable == 0 and replroute_node_registered == 1 and replroute_node_drained == 0) or vector(0)' 0
sql "SELECT replroute_undrain('standby2')" >/dev/null
wait_query "undrained: 2 routable again" 'replroute_routable_standbys' 2

rules=$(curl -fsS --max-time 5 "http://127.0.0.1:$pport/api/v1/rules")
if python3 -c '
import json, sys
groups = json.loads(sys.argv[1])["data"]["groups"]
rules = [r for g in groups for r in g["rules"]]
bad = [r["name"] for r in rules if r.get("health") != "ok" or r.get("lastError")]
firing = [r["name"] for r in rules if r.get("state") == "firing"]
print(len(rules), "rules;", "unhealthy:", bad, "firing:", firing)
sys.exit(1 if bad or firing or not rules else 0)' "$rules"; then
	pass "every alert rule evaluates cleanly against the listener's series, none firing"
else
	fail "alert rules against the listener's series" "$rules"
fi
if (cd "$here" && promtool check rules replroute-alerts.yml >/dev/null && promtool test rules replroute-alerts.test.yml >/dev/null); then
	pass "alert rules check and their unit tests (promtool)"
else
	fail "alert rules check and their unit tests (promtool)"
fi
finish
