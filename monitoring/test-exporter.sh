#!/usr/bin/env bash
# Start prometheus-postgres-exporter with replroute-queries.yaml against a
# running cluster, scrape /metrics and check the replroute series are there.
#
#   monitoring/test-exporter.sh DIR PGPORT
#
# DIR: the cluster's directory (scripts/rr-cluster start DIR), where the
# exporter's log goes. PGPORT: the primary's port. The exporter listens on
# 127.0.0.1:$EXPORTER_PORT (default 19187; below 32768 so it never collides
# with ports handed out for outgoing connections) and is stopped at the end.
# Drains and undrains standby2 on the way. Closes with `N passed, N failed`.
set -uo pipefail

dir=${1:?usage: test-exporter.sh DIR PGPORT}
pgport=${2:?usage: test-exporter.sh DIR PGPORT}
eport=${EXPORTER_PORT:-19187}
here=$(cd "$(dirname "$0")" && pwd)
exporter=${EXPORTER:-/usr/bin/prometheus-postgres-exporter}
psql="$(pg_config --bindir)/psql"
passed=0 failed=0

pass() { passed=$((passed + 1)); echo "PASS  $1"; }
fail() { failed=$((failed + 1)); echo "FAIL  $1${2:+  ($2)}"; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

sql() { "$psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -c "$1"; }

if [ ! -x "$exporter" ]; then
	fail "prometheus-postgres-exporter installed" "apt-get install prometheus-postgres-exporter"
	finish
fi
if curl -s -o /dev/null "http://127.0.0.1:$eport/"; then
	fail "exporter port $eport free" "something already listens there; set EXPORTER_PORT"
	finish
fi

log="$dir/exporter.log"
DATA_SOURCE_NAME="postgresql://postgres@127.0.0.1:$pgport/postgres?sslmode=disable" \
	"$exporter" --extend.query-path="$here/replroute-queries.yaml" \
	--web.listen-address="127.0.0.1:$eport" --disable-settings-metrics >"$log" 2>&1 &
pid=$!
cleanup() {
	kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	sql "SELECT replroute_undrain('standby2')" >/dev/null 2>&1 || true
}
trap cleanup EXIT

scrape() { curl -fsS --max-time 5 "http://127.0.0.1:$eport/metrics"; }

up=""
for _ in $(seq 1 100); do
	if scrape >/dev/null 2>&1; then up=1; break; fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$up" ]; then
	fail "exporter serves /metrics" "see $log"
	finish
fi
pass "exporter serves /metrics on 127.0.0.1:$eport"

sql "SELECT replroute_refresh()" >/dev/null
metrics=$(scrape)

has() { # NAME REGEX
	if grep -Eq "$2" <<<"$metrics"; then pass "$1"; else fail "$1" "no line matches $2"; fi
}
num='[-+0-9.eE]+|NaN'
series() { # NAME METRIC VALUE_REGEX [LABEL=VALUE...]: one line with all those labels and that value
	local name=$1 metric=$2 value=$3 lines
	shift 3
	lines=$(grep -E "^$metric(\{| )" <<<"$metrics")
	for label in "$@"; do lines=$(grep -F "$label" <<<"$lines"); done
	if grep -Eq " ($value)$" <<<"$lines"; then pass "$name"; else fail "$name" "no $metric{$*} with value $value"; fi
}

has "pg_up 1" '^pg_up 1$'
has "queries file loaded without error" '^pg_exporter_user_queries_load_error\{.*\} 0$'
for node in standby1 standby2; do
	series "replroute_node_state_info: $node healthy" replroute_node_state_info '1' "node=\"$node\"" 'state="healthy"'
	series "replroute_node_routable: $node 1" replroute_node_routable '1' "node=\"$node\""
	series "replroute_node_lag_bytes: $node" replroute_node_lag_bytes "$num" "node=\"$node\""
	series "replroute_node_replay_lag_seconds: $node" replroute_node_replay_lag_seconds "$num" "node=\"$node\""
done
series "replroute_node_state_age_seconds" replroute_node_state_age_seconds "$num"
series "replroute_worker_running 1" replroute_worker_running '1'
series "replroute_worker_rounds_total" replroute_worker_rounds_total "$num"
series "replroute_worker_round_age_seconds" replroute_worker_round_age_seconds "$num"
series "replroute_worker_data_age_seconds" replroute_worker_data_age_seconds "$num"
series "replroute_worker_last_round_duration_seconds" replroute_worker_last_round_duration_seconds "$num"
series "replroute_routable_standbys 2" replroute_routable_standbys '2'
if grep -qi 'error.*replroute\|replroute.*error' "$log"; then
	fail "no query errors in the exporter log" "$(grep -i 'error' "$log" | head -n 3)"
else
	pass "no query errors in the exporter log"
fi

series "replroute_events_total" replroute_events_total "$num"
series "replroute_event_log_events: worker_started 1" replroute_event_log_events '1' 'to_state="worker_started"'
value() { # METRIC [LABEL]: the value of the first matching line, or empty
	grep -E "^$1(\{| )" <<<"$metrics" | grep -F "${2:-}" | head -n 1 | awk '{print $NF}'
}
events_before=$(value replroute_events_total)
drained_before=$(value replroute_event_log_events 'to_state="drained"')

# A state change shows in the next scrape: the state label moves, routable drops.
sql "SELECT replroute_drain('standby2')" >/dev/null && sql "SELECT replroute_refresh()" >/dev/null
metrics=$(scrape)
events_after=$(value replroute_events_total)
drained_after=$(value replroute_event_log_events 'to_state="drained"')
if awk -v a="${events_before:-x}" -v b="${events_after:-x}" 'BEGIN { exit !(a ~ /^[0-9.e+]+$/ && b + 0 > a + 0) }'; then
	pass "replroute_events_total grows with the drain ($events_before -> $events_after)"
else
	fail "replroute_events_total grows with the drain" "$events_before -> $events_after"
fi
if awk -v a="${drained_before:-0}" -v b="${drained_after:-x}" 'BEGIN { exit !(b ~ /^[0-9.e+]+$/ && b + 0 == a + 1) }'; then
	pass "replroute_event_log_events{to_state=drained} counts the drain"
else
	fail "replroute_event_log_events{to_state=drained} counts the drain" "${drained_before:-none} -> ${drained_after:-none}"
fi
series "drained standby2: routable 0" replroute_node_routable '0' 'node="standby2"'
series "drained standby2: drained 1" replroute_node_drained '1' 'node="standby2"'
series "drained standby2: state label drained" replroute_node_state_info '1' 'node="standby2"' 'state="drained"'
series "replroute_routable_standbys 1 while drained" replroute_routable_standbys '1'
sql "SELECT replroute_undrain('standby2')" >/dev/null

# The example alert rules, where promtool is installed (package prometheus).
if command -v promtool >/dev/null; then
	if (cd "$here" && promtool check rules replroute-alerts.yml >/dev/null && promtool test rules replroute-alerts.test.yml >/dev/null); then
		pass "alert rules check and their unit tests (promtool)"
	else
		fail "alert rules check and their unit tests (promtool)"
	fi
else
	echo "SKIP  alert rules (no promtool)"
fi

kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
if kill -0 "$pid" 2>/dev/null; then fail "exporter stopped"; else pass "exporter stopped"; fi
finish
