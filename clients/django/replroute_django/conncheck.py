"""Connection checks without a round trip, and client-side deadlines.

socket_readable() asks the kernel, with poll(), whether an idle connection's
socket has something to read (an error message, EOF): select.select() would
raise for descriptors >= 1024, which a busy process reaches.

Deadlines shuts a connection's socket down when a query on it outlives its
deadline. A standby that froze (a stopped process, a cut network) before the
worker excluded it keeps acknowledging packets at the kernel level, so a
query on it blocks in libpq forever; only the client can tell. One watchdog
thread per process holds the deadlines; when one passes while its query is
still running, it shuts the socket down (shutdown(2) on a duplicate of the
descriptor: the socket, not the descriptor, is what is shut), libpq sees
EOF, and psycopg2 raises OperationalError in the waiting thread at once.
Whether a deadline fired is decided under one lock with the end of the
query, so the caller always knows whether the connection is still whole.
"""

import heapq
import itertools
import os
import select
import socket
import threading
import time


def connection_broken(conn):
    """Is Django connection conn's database connection closed or gone?"""
    raw = conn.connection
    return raw is None or bool(getattr(raw, "closed", False))


_POLL_BAD = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL


def socket_readable(raw):
    """True when raw's socket has data or an error waiting (or cannot be asked)."""
    try:
        fd = raw.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        return any(events & _POLL_BAD for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError, TypeError):
        return True


def shutdown_fd(fd):
    """Shut the socket behind fd down for both directions; the fd stays open."""
    dup = os.dup(fd)
    try:
        sock = socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        raise
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


class Guard:
    """One registered deadline; .fired tells whether the socket was shut down."""

    __slots__ = ("deadline", "fd", "fired", "done")

    def __init__(self, deadline, fd):
        self.deadline = deadline
        self.fd = fd
        self.fired = False
        self.done = False


class Deadlines:
    """The process's watchdog: shuts sockets down whose deadline passed.

        with deadlines.guard(raw_connection, 0.15) as guard:
            cursor.execute(...)
        if guard.fired: the connection is broken, discard it

    The exception the query raises when the deadline fires propagates out of
    the with block; guard.fired is set either way.
    """

    def __init__(self, clock=time.monotonic, shutdown=shutdown_fd):
        self.clock = clock
        self.shutdown = shutdown
        self._pid = None
        self._setup()

    def _setup(self):
        self._cond = threading.Condition()
        self._heap = []
        self._seq = itertools.count()
        self._thread = None
        self._pid = os.getpid()

    def _ensure_thread(self):
        # Called under the lock. After a fork the child has no watchdog.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="replroute-deadlines", daemon=True)
            self._thread.start()

    def register(self, fd, seconds):
        if self._pid != os.getpid():
            self._setup()
        guard = Guard(self.clock() + seconds, fd)
        with self._cond:
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (guard.deadline, next(self._seq), guard))
            self._ensure_thread()
            # The watchdog sleeps until the earliest deadline it knows of;
            # only an earlier one needs to wake it.
            if earliest is None or guard.deadline < earliest:
                self._cond.notify()
        return guard

    def finish(self, guard):
        """The query ended. Returns True if the deadline fired first."""
        with self._cond:
            guard.done = True
            return guard.fired

    def guard(self, raw, seconds):
        return _GuardContext(self, raw.fileno(), seconds)

    def _run(self):
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, guard = self._heap[0]
                now = self.clock()
                if deadline > now:
                    self._cond.wait(deadline - now)
                    continue
                heapq.heappop(self._heap)
                guard.fired = True
                try:
                    self.shutdown(guard.fd)
                except Exception:  # the descriptor went away meanwhile: nothing to stop
                    pass

    def pending(self):
        with self._cond:
            return sum(1 for _, _, g in self._heap if not g.done)


class _GuardContext:
    __slots__ = ("deadlines", "fd", "seconds", "guard")

    def __init__(self, deadlines, fd, seconds):
        self.deadlines = deadlines
        self.fd = fd
        self.seconds = seconds
        self.guard = None

    def __enter__(self):
        self.guard = self.deadlines.register(self.fd, self.seconds)
        return self.guard

    def __exit__(self, *exc):
        self.deadlines.finish(self.guard)
        return False


_deadlines = Deadlines()


def deadlines():
    return _deadlines
