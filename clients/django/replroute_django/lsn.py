"""PostgreSQL LSNs ('16/B374D848') as integers, so they compare as numbers."""

import re

_LSN_RE = re.compile(r"\A([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})\Z")


def parse_lsn(text):
    """Return the LSN as an int, or None for None/''.

    Raises ValueError for anything that is not 'X/Y' with hexadecimal halves
    of at most 32 bits each: a malformed LSN must never silently compare as
    "old enough".
    """
    if text is None or text == "":
        return None
    if isinstance(text, int):
        if text < 0 or text >= 1 << 64:
            raise ValueError("LSN out of range: %r" % (text,))
        return text
    match = _LSN_RE.match(str(text).strip())
    if match is None:
        raise ValueError("not an LSN: %r" % (text,))
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def format_lsn(value):
    if value is None:
        return None
    return "%X/%X" % (value >> 32, value & 0xFFFFFFFF)


def lsn_max(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b
