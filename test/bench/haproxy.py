#!/usr/bin/python3
"""Figures of replroute's listener behind HAProxy (test/bench/run --only haproxy).

Against a running rr-cluster (primary on BASE, standby1/2 on BASE+1/2), it
sets replroute.agent_port and starts Debian's haproxy with the configuration
of docs/haproxy.md (agent-inter 100ms, option redispatch 1, the primary as a
backup), then prints:

  - for a crashed (SIGQUIT, as pg_ctl stop -m immediate), hung (SIGSTOP of
    every process), lagging (replay paused, 2 MB written, max_lag_bytes 1MB)
    and drained (replroute_drain) standby1, over T trials: the time from the
    fault to HAProxy taking standby1 out (its stats socket, polled every
    2 ms), and, from a load of new connections through HAProxy's read port,
    the connections that failed or reached standby1 after that point (and
    before it, for comparison);
  - the time per query through HAProxy and directly to a standby (pgbench,
    SELECT 1, one client, simple protocol, persistent connection);
  - the listener's CPU while answering 10 and 100 agent checks per second.
It asserts nothing.
"""
import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import threading
import time

import psycopg2

ap = argparse.ArgumentParser()
ap.add_argument("--dir", required=True)
ap.add_argument("--base", type=int, required=True)
ap.add_argument("--bindir", required=True)
ap.add_argument("--user", default="replroute")
ap.add_argument("--trials", type=int, default=5)
ap.add_argument("--seconds", type=int, default=4)
ap.add_argument("--no-external", dest="external", action="store_false",
                help="skip the comparison with an external agent")
args = ap.parse_args()

base = args.base
agent_port, read_port = base + 40, base + 41
hdir = os.path.join(args.dir, "haproxy")


def as_user(cmd, **kw):
    if os.getuid() == 0:
        cmd = ["runuser", "-u", args.user, "--"] + cmd
    return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd="/", **kw)


def psql(port, sql):
    out = subprocess.run([os.path.join(args.bindir, "psql"), "-X", "-At", "-h", "127.0.0.1",
                          "-p", str(port), "-U", "postgres", "-d", "postgres", "-c", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def pids_of(datadir):
    with open(os.path.join(datadir, "postmaster.pid")) as f:
        postmaster = int(f.readline())
    pids = [postmaster]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
                if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                    pids.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return pids


def listener_pid():
    for pid in pids_of(os.path.join(args.dir, "primary"))[1:]:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"replroute listener" in f.read():
                    return pid
        except OSError:
            pass
    return None


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def servers():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.path.join(hdir, "haproxy.sock"))
    s.sendall(b"show stat\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    lines = data.decode().splitlines()
    cols = lines[0].lstrip("# ").split(",")
    out = {}
    for line in lines[1:]:
        if line:
            row = dict(zip(cols, line.split(",")))
            out[row["svname"]] = row
    return out


def wait_status(name, prefixes, limit=30.0, step=0.002):
    t0 = time.time()
    while time.time() - t0 < limit:
        status = servers().get(name, {}).get("status", "")
        if status.startswith(prefixes):
            return time.time()
        time.sleep(step)
    return None


class Load:
    """New connections through HAProxy's read port, back to back, in two
    threads: (start, server port, 'failed', or 'stuck' for one still waiting
    when the load stops: a connection or query on a hung standby)."""

    def __init__(self):
        self.records = []
        self.inflight = {}
        self.stop = False
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(2)]
        for t in self.threads:
            t.start()

    def run(self):
        me = threading.get_ident()
        while not self.stop:
            t0 = time.time()
            self.inflight[me] = t0
            try:
                c = psycopg2.connect(host="127.0.0.1", port=read_port, user="postgres",
                                     dbname="postgres", connect_timeout=3)
                cur = c.cursor()
                cur.execute("SELECT inet_server_port()")
                port = cur.fetchone()[0]
                c.close()
                result = port
            except Exception:
                result = "failed"
            if self.stop and self.inflight.get(me) is None:
                return  # reported as stuck already
            self.inflight.pop(me, None)
            self.records.append((t0, result))
            if result == "failed":
                time.sleep(0.01)

    def finish(self):
        self.stop = True
        deadline = time.time() + 4
        for t in self.threads:
            t.join(max(0.0, deadline - time.time()))
        records = list(self.records)
        for ident, t0 in list(self.inflight.items()):
            records.append((t0, "stuck"))
            self.inflight[ident] = None
        return records


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# --- set up: the agent on the primary, haproxy in front of the standbys
psql(base, f"ALTER SYSTEM SET replroute.agent_port = {agent_port}")
psql(base, "ALTER SYSTEM SET replroute.agent_listen_addresses = '127.0.0.1'")
psql(base, "ALTER SYSTEM SET replroute.max_lag_bytes = '1MB'")
psql(base, "ALTER SYSTEM SET replroute.max_replay_lag = -1")
psql(base, "SELECT pg_reload_conf()")
os.makedirs(hdir, exist_ok=True)
if os.getuid() == 0:
    subprocess.run(["chown", args.user, hdir], check=True)


def start_haproxy(check_port):
    """haproxy with the documented configuration, its agent at check_port."""
    lines = []
    for k in (1, 2):
        lines.append(f"    server standby{k} 127.0.0.1:{base + k} weight 100 check agent-check "
                     f"agent-addr 127.0.0.1 agent-port {check_port} agent-send \"standby{k}\\n\" "
                     f"agent-inter 100ms")
    lines.append(f"    server primary 127.0.0.1:{base} backup check")
    config = f"""global
    stats socket {hdir}/haproxy.sock mode 666 level admin

defaults
    mode tcp
    timeout connect 1s
    timeout client 1m
    timeout server 1m
    timeout check 1s

listen replroute_reads
    bind 127.0.0.1:{read_port}
    balance roundrobin
    option redispatch 1
""" + "\n".join(lines) + "\n"
    with open(os.path.join(hdir, "haproxy.cfg"), "w") as f:
        f.write(config)
    os.chmod(os.path.join(hdir, "haproxy.cfg"), 0o644)
    if os.path.exists(os.path.join(hdir, "haproxy.sock")):
        os.unlink(os.path.join(hdir, "haproxy.sock"))
    cmd = ["/usr/sbin/haproxy", "-db", "-f", os.path.join(hdir, "haproxy.cfg")]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", args.user, "--"] + cmd
    proc = subprocess.Popen(cmd, stdout=open(os.path.join(args.dir, "haproxy.log"), "a"),
                            stderr=subprocess.STDOUT, cwd="/")
    for _ in range(100):
        if os.path.exists(os.path.join(hdir, "haproxy.sock")):
            break
        time.sleep(0.1)
    for k in (1, 2):
        if wait_status(f"standby{k}", ("UP",)) is None:
            raise SystemExit(f"standby{k} never UP in haproxy: {servers()}")
    return proc


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait()


haproxy = None
agent = None
try:
    haproxy = start_haproxy(agent_port)

    s1dir = os.path.join(args.dir, "standby1")
    s1port = base + 1
    pg_ctl = os.path.join(args.bindir, "pg_ctl")

    def wait_both_up():
        for k in (1, 2):
            if wait_status(f"standby{k}", ("UP",), limit=60) is None:
                raise SystemExit(f"standby{k} not UP again: {servers()}")
        time.sleep(0.3)

    def crash():
        os.kill(pids_of(s1dir)[0], signal.SIGQUIT)

    def crash_repair():
        for _ in range(200):
            if not os.path.exists(os.path.join(s1dir, "postmaster.pid")):
                break
            time.sleep(0.05)
        as_user([pg_ctl, "-D", s1dir, "-l", os.path.join(args.dir, "standby1.log"), "-w", "start"])

    hung = []

    def hang():
        hung[:] = pids_of(s1dir)
        for p in hung:
            try:
                os.kill(p, signal.SIGSTOP)
            except ProcessLookupError:
                pass  # a backend that was exiting
        # WAL pending, so that the walsender side sees it too
        psql(base, "SELECT pg_logical_emit_message(true, 'rr', repeat('x', 1000))")

    def hang_repair():
        for p in hung:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def lag():
        psql(s1port, "SELECT pg_wal_replay_pause()")
        for _ in range(100):
            if psql(s1port, "SELECT pg_get_wal_replay_pause_state()") == "paused":
                break
            time.sleep(0.02)

    def lag_write():
        psql(base, "SELECT pg_logical_emit_message(true, 'rr', repeat('x', 2 * 1024 * 1024))")

    def lag_repair():
        psql(s1port, "SELECT pg_wal_replay_resume()")

    def drain():
        psql(base, "SELECT replroute_drain('standby1')")

    def drain_repair():
        psql(base, "SELECT replroute_undrain('standby1')")

    rows = [
        ("crashed (SIGQUIT)", None, crash, crash_repair, ("DOWN",), "150 ms"),
        ("hung (SIGSTOP)", None, hang, hang_repair, ("DOWN",), "1.5 s"),
        ("past the lag bound (1MB)", lag, lag_write, lag_repair, ("DOWN",), "200 ms"),
        ("drained", None, drain, drain_repair, ("DRAIN",), "150 ms"),
    ]
    print(f"through HAProxy {subprocess.run(['/usr/sbin/haproxy', '-v'], capture_output=True, text=True).stdout.split()[2]}, "
          f"agent-inter 100ms, option redispatch 1; {args.trials} trials each; "
          f"replroute poll_interval={psql(base, 'SHOW replroute.poll_interval')}, "
          f"probe_interval={psql(base, 'SHOW replroute.probe_interval')}, "
          f"probe_timeout={psql(base, 'SHOW replroute.probe_timeout')}")
    print("fault -> HAProxy takes standby1 out (stats socket, polled every 2 ms); "
          "new connections through HAProxy during the trial")
    def fault_rows(title):
        print(title)
        for label, prepare, fault, repair, statuses, target in rows:
            delays, failed_before, failed_after, bad_after, total = [], 0, 0, 0, 0
            stuck_before = stuck_after = 0
            for _ in range(args.trials):
                wait_both_up()
                if prepare:
                    prepare()
                load = Load()
                # A random phase against the 100 ms agent-inter: the trials
                # start right after HAProxy saw the standby UP, so a fixed
                # sleep would land every fault at the same point of the check
                # cycle and measure that point, not the agent.
                time.sleep(0.3 + random.random() * 0.1)
                t0 = time.time()
                fault()
                t1 = wait_status("standby1", statuses)
                time.sleep(0.5)
                records = load.finish()
                repair()
                if t1 is None:
                    print(f"  {label}: not taken out within 30 s")
                    continue
                delays.append((t1 - t0) * 1000)
                for start, port in records:
                    if start < t0:
                        continue
                    total += 1
                    if start >= t1:
                        failed_after += port == "failed"
                        stuck_after += port == "stuck"
                        bad_after += port == s1port
                    else:
                        failed_before += port == "failed"
                        stuck_before += port == "stuck"
            print(f"  {label:26s} median {median(delays):7.0f} ms  (min {min(delays, default=float('nan')):.0f}, "
                  f"max {max(delays, default=float('nan')):.0f}; target {target})  "
                  f"connections after the fault {total}: before taken out failed {failed_before}, "
                  f"stuck {stuck_before}; after: failed {failed_after}, stuck {stuck_after}, "
                  f"to standby1 {bad_after}")

    fault_rows("agent: replroute's listener (replroute.agent_port)")
    wait_both_up()

    # --- per query cost through HAProxy vs direct
    script = os.path.join(args.dir, "select1.sql")
    with open(script, "w") as f:
        f.write("SELECT 1;\n")
    os.chmod(script, 0o644)

    def latency_us(port):
        out = subprocess.run([os.path.join(args.bindir, "pgbench"), "-n", "-c", "1", "-T",
                              str(args.seconds), "-f", script, "-h", "127.0.0.1", "-p", str(port),
                              "-U", "postgres", "postgres"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("tps = "):
                return 1e6 / float(line.split()[2])
        return float("nan")

    direct, proxied = [], []
    for _ in range(3):
        direct.append(latency_us(base + 2))
        proxied.append(latency_us(read_port))
    d, p = median(direct), median(proxied)
    print(f"SELECT 1, pgbench 1 client, {args.seconds}s x 3, median: direct to a standby {d:.0f} us/query, "
          f"through HAProxy {p:.0f} us/query (+{p - d:.0f} us)")

    stop(haproxy)
    haproxy = None

    # --- the same faults with the external agent (test/bench/external_agent.py)
    if args.external:
        ext_port = agent_port + 2
        cmd = ["/usr/bin/python3", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                "external_agent.py"), str(ext_port),
               f"host=127.0.0.1 port={base} user=postgres dbname=postgres"]
        agent = subprocess.Popen(cmd, cwd="/")
        time.sleep(1)
        haproxy = start_haproxy(ext_port)
        fault_rows("agent: an external 40-line agent reading replroute_nodes (same run)")
        wait_both_up()
        stop(haproxy)
        haproxy = None
        agent.terminate()
        agent.wait()
        agent = None

    # --- the listener's CPU at 10 and 100 checks per second
    pid = listener_pid()
    hz = os.sysconf("SC_CLK_TCK")
    for rate in (10, 100):
        seconds = 20
        c0, w0 = cpu_ticks(pid), time.time()
        n = 0
        while time.time() - w0 < seconds:
            due = w0 + n / rate
            if due > time.time():
                time.sleep(due - time.time())
            s = socket.create_connection(("127.0.0.1", agent_port))
            s.sendall(b"standby1\n")
            s.recv(256)
            s.close()
            n += 1
        c1, w1 = cpu_ticks(pid), time.time()
        print(f"listener CPU at {rate} checks/s: {100 * (c1 - c0) / hz / (w1 - w0):.2f} % of one core "
              f"({n} checks in {w1 - w0:.1f} s)")
finally:
    if haproxy is not None:
        stop(haproxy)
    if agent is not None:
        agent.terminate()
    for setting in ("agent_port", "agent_listen_addresses", "max_lag_bytes", "max_replay_lag"):
        psql(base, f"ALTER SYSTEM RESET replroute.{setting}")
    psql(base, "SELECT pg_reload_conf()")
