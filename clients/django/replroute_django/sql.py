"""Is a statement a write? Decided from its text, conservatively.

A false "write" costs one extra round trip to the primary (to learn its WAL
position) and sends the reads that follow to standbys that caught up; a false
"read" can cost a stale read. So anything not clearly a read or a
transaction-control statement counts as a write.

Side effects hidden in functions (SELECT my_proc()) cannot be seen from the
text; code that calls such functions tells us with remember_write().
"""

import re

_READ_HEADS = frozenset(["select", "show", "values", "table", "fetch", "move", "close"])

# Statements that change no data another session could read: transaction
# control (Django's savepoints go through execute wrappers) and session state.
_NEUTRAL_HEADS = frozenset([
    "begin", "start", "commit", "end", "rollback", "abort", "savepoint",
    "release", "set", "reset", "discard", "deallocate", "listen", "unlisten",
])

_COMMENT_OR_LITERAL = re.compile(
    r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$([A-Za-z_]\w*)?\$.*?\$\1\$",
    re.S,
)
_WRITE_WORD = re.compile(r"\b(insert|update|delete|merge|into)\b", re.I)
_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z]+)")


def _strip(sql):
    # Comments and literals removed so words inside them decide nothing.
    return _COMMENT_OR_LITERAL.sub(" ", sql)


def is_write(sql):
    if isinstance(sql, bytes):
        sql = sql.decode("utf-8", "replace")
    elif not isinstance(sql, str):
        # psycopg's sql.Composed and friends: no cheap text form; assume the worst.
        try:
            sql = str(sql)
        except Exception:
            return True
    body = _strip(sql)
    match = _FIRST_WORD.match(body)
    if match is None:
        return False
    head = match.group(1).lower()
    if head in _NEUTRAL_HEADS:
        return False
    if head in _READ_HEADS:
        # SELECT ... INTO creates a table; FOR UPDATE only locks.
        return head == "select" and re.search(r"\binto\b", body, re.I) is not None
    if head in ("with", "explain", "declare"):
        # A data-modifying CTE, EXPLAIN ANALYZE of a write, or a cursor over one.
        return _WRITE_WORD.search(body) is not None
    return True


def is_read(sql):
    """A statement safe to re-run elsewhere after its connection broke."""
    if isinstance(sql, bytes):
        sql = sql.decode("utf-8", "replace")
    if not isinstance(sql, str):
        return False
    body = _strip(sql)
    match = _FIRST_WORD.match(body)
    if match is None:
        return False
    head = match.group(1).lower()
    return head in ("select", "with", "values", "table") and not is_write(sql)
