"""One LISTEN replroute connection per process: the cached list hears changes at once.

The worker on the primary sends NOTIFY replroute for every state change of a
node (README.md, "Events"). A daemon thread holds its own connection to the
primary, LISTENs, and calls on_event() for every notification, so a standby
that goes bad stops getting reads within milliseconds instead of CACHE_TTL.
It also calls on_event() whenever it (re)connects, since events sent while it
was away are lost. It never blocks a request: requests only ever start the
thread (at the first list fetch of the process, and again after a fork); the
connection is made inside the thread, and every failure leads to a new
attempt after a pause that doubles up to MAX_BACKOFF.

NOTIFY is per database: the worker sends it in replroute.database. The
listener asks the primary for that setting and connects there when it
differs from the database it was given.
"""

import logging
import os
import select
import threading
import time

logger = logging.getLogger("replroute_django")

MAX_BACKOFF = 5.0
# Keepalives: a primary that vanished without closing the connection is
# noticed within about a minute, not after TCP's two hours.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


APPLICATION_NAME = "replroute_django listener"


class Listener:
    def __init__(self, params, on_event, connect=None, poll_seconds=1.0):
        """params: a callable returning psycopg2.connect() keyword arguments."""
        self.params = params
        self.on_event = on_event
        self.connect = connect
        self.poll_seconds = poll_seconds
        self.events = 0
        self.connects = 0
        self.failures = 0
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self._pid = None
        self._lock = threading.Lock()
        self._conn = None
        self._last_warning = 0.0

    def ensure_started(self):
        thread = self._thread
        if thread is not None and self._pid == os.getpid() and thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._stop = threading.Event()
            self.connected = threading.Event()
            self._thread = threading.Thread(target=self._run, name="replroute-listen", daemon=True)
            self._thread.start()

    def stop(self, timeout=5.0):
        self._stop.set()
        conn = self._conn
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def alive(self):
        return self._thread is not None and self._thread.is_alive()

    def _open(self):
        connect = self.connect
        if connect is None:
            import psycopg2

            connect = psycopg2.connect
        params = dict(self.params())
        for key, value in KEEPALIVES.items():
            params.setdefault(key, value)
        params.setdefault("application_name", APPLICATION_NAME)
        conn = connect(**params)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT current_database(), current_setting('replroute.database', true)")
            current, wanted = cur.fetchone()
        if wanted and wanted != current:
            conn.close()
            params["database"] = wanted
            params.pop("dbname", None)
            conn = connect(**params)
            conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("LISTEN replroute")
        return conn

    def _run(self):
        backoff = 0.1
        while not self._stop.is_set():
            conn = None
            try:
                conn = self._conn = self._open()
                self.connects += 1
                self.connected.set()
                # Whatever happened while this thread was not listening.
                self.on_event()
                backoff = 0.1
                fd = conn.fileno()
                while not self._stop.is_set():
                    poller = select.poll()
                    poller.register(fd, select.POLLIN | select.POLLPRI)
                    poller.poll(int(self.poll_seconds * 1000))
                    conn.poll()
                    if conn.notifies:
                        self.events += len(conn.notifies)
                        del conn.notifies[:]
                        self.on_event()
            except Exception as exc:  # any failure: forget what we knew, try again
                self.failures += 1
                self.connected.clear()
                try:
                    self.on_event()
                except Exception:
                    pass
                now = time.monotonic()
                if not self._stop.is_set() and now - self._last_warning >= 30.0:
                    self._last_warning = now
                    logger.warning("replroute: LISTEN replroute connection failed (%s); "
                                   "retrying in %.1f s, the readers list meanwhile expires after CACHE_TTL",
                                   str(exc).strip(), backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            finally:
                self._conn = None
                self.connected.clear()
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
