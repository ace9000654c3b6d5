"""Sans-I/O parser for client requests (RESP multibulk and inline commands).

``RequestParser.feed(data)`` returns the complete commands found so far and, when the input
breaks the protocol, the Redis error text after which the connection must be closed.  It
knows no sockets, so tests feed it frames split at every byte.

Two parsers live here.  The exact one, in Python, follows Redis' ``processMultibulkBuffer`` and
``processInlineBuffer`` rules byte for byte (limits, error texts, inline quoting).  hiredis'
C reader is ~10x faster but lenient (it accepts any RESP type inside a request and cannot say
where it stopped), so it only gets chunks that start at a command boundary, end in CRLF and
contain nothing it could misread; anything else, and any chunk it leaves unfinished, goes
through the exact parser.
"""

from __future__ import annotations

import re

import hiredis

from shard import errors
from shard.numbers import string2ll

INLINE_MAX = 64 * 1024  # Redis' PROTO_INLINE_MAX_SIZE
INT_MAX = 2**31 - 1
UNAUTH_MAX_ARGS = 10
UNAUTH_MAX_BULK = 16384

Command = list[bytes]
# What sends a chunk to the exact parser although it looks clean:
# - RESP types hiredis would turn into bytes inside a request although Redis refuses them
#   (``+simple``, ``=verbatim``, ``|attribute``); three memchr scans rule them out cheaply and
#   the regex only runs when one of the bytes occurs at all;
# - array headers of a million elements or more: hiredis allocates the announced array up
#   front and freeing a 3-billion slot one takes seconds.  (Big bulks need no check: a chunk
#   no longer than proto-max-bulk-len cannot hold one above it, and a frame hiredis cannot
#   finish in one chunk is handed to the exact parser, which enforces the limits.)
_SUSPECT_TYPE = re.compile(rb"\r\n[+=|]")
_HUGE_ARRAY = re.compile(rb"\*\d{7}")


def _hiredis_safe(data: bytes) -> bool:
    if (data.find(b"+") >= 0 or data.find(b"=") >= 0 or data.find(b"|") >= 0) and (
        _SUSPECT_TYPE.search(data) is not None
    ):
        return False
    return _HUGE_ARRAY.search(data) is None


class RequestParser:
    def __init__(self, max_bulk: int = 512 * 1024 * 1024) -> None:
        self.max_bulk = max_bulk
        self.authenticated = True
        self._buf = bytearray()
        self._need = 0  # the exact parser waits until the buffer holds this many bytes
        self._reader = hiredis.Reader()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def take_buffered(self) -> bytes:
        """The received bytes not parsed into commands yet, handed out and forgotten (a
        connection moving to another process, replication/handoff.py)."""
        data = bytes(self._buf)
        self._buf = bytearray()
        self._need = 0
        self._reader = hiredis.Reader()
        return data

    def feed(self, data: bytes) -> tuple[list[Command], str | None]:
        if (
            not self._buf
            and data[:1] == b"*"
            and data[-2:] == b"\r\n"
            and len(data) <= self.max_bulk
            and self.authenticated
            and _hiredis_safe(data)
        ):
            commands = self._fast(data)
            if commands is not None:
                return commands, None
        self._buf += data
        if len(self._buf) < self._need:
            return [], None
        return self._exact()

    # --- hiredis fast path ---------------------------------------------------------------

    def _fast(self, data: bytes) -> list[Command] | None:
        """All commands of ``data`` via hiredis, or None to let the exact parser take it."""
        reader = self._reader
        reader.feed(data)
        commands: list[Command] = []
        at_boundary = False
        join = b"".join
        try:
            while True:
                cmd = reader.gets()
                if cmd is False:
                    break
                if type(cmd) is not list or not cmd:
                    self._fallback()
                    return None
                join(cmd)  # TypeError unless every element is bytes (not None, int, list ...)
                commands.append(cmd)
                at_boundary = not reader.has_data()
        except (hiredis.ProtocolError, TypeError):
            self._fallback()
            return None
        # hiredis may hold a half-read frame without buffered bytes (it consumed a header):
        # only a chunk that ended exactly after a command is finished here.
        if not at_boundary:
            self._fallback()
            return None
        return commands

    def _fallback(self) -> None:
        """Forget hiredis' state; the exact parser re-reads the whole chunk (nothing of it
        has been handed out yet)."""
        self._reader = hiredis.Reader()

    # --- exact parser --------------------------------------------------------------------

    def _exact(self) -> tuple[list[Command], str | None]:
        buf = self._buf
        pos = 0
        commands: list[Command] = []
        error = None
        self._need = 0
        while pos < len(buf):
            if buf[pos] == 42:  # '*'
                cmd, end, error = self._multibulk(buf, pos)
            else:
                cmd, end, error = self._inline(buf, pos)
            if error is not None:
                break
            if cmd is None:
                # Incomplete: ``end`` is how long the buffer must get before trying again.
                self._need = end - pos
                break
            if cmd:
                commands.append(cmd)
            pos = end
            if not self.authenticated and commands:
                break  # the next one is parsed after this one ran: it may be AUTH
        if error is not None:
            self._buf = bytearray()
        else:
            del buf[:pos]
        return commands, error

    def _inline(self, buf: bytearray, pos: int) -> tuple[Command | None, int, str | None]:
        end = buf.find(b"\n", pos)
        if end < 0:
            if len(buf) - pos > INLINE_MAX:
                return None, pos, errors.PROTOCOL_BIG_INLINE
            return None, len(buf) + 1, None
        line = bytes(buf[pos:end])
        if line.endswith(b"\r"):
            line = line[:-1]
        args = split_inline(line)
        if args is None:
            return None, pos, errors.PROTOCOL_QUOTES
        return args, end + 1, None

    def _multibulk(self, buf: bytearray, pos: int) -> tuple[Command | None, int, str | None]:
        header = self._line(buf, pos, errors.PROTOCOL_BIG_MBULK)
        if header is None:
            return None, len(buf) + 1, None
        if isinstance(header, str):
            return None, pos, header
        count, after = header
        if count is None or count > INT_MAX:
            return None, pos, errors.PROTOCOL_MULTIBULK
        if not self.authenticated and count > UNAUTH_MAX_ARGS:
            return None, pos, errors.PROTOCOL_UNAUTH_MULTIBULK
        if count <= 0:
            return [], after, None
        args: list[bytes] = []
        cur = after
        for _ in range(count):
            if cur >= len(buf):
                return None, len(buf) + 1, None
            if buf[cur] != 36:  # '$'
                got = chr(buf[cur])
                return None, pos, errors.PROTOCOL_EXPECTED.format(got=got)
            header = self._line(buf, cur, errors.PROTOCOL_BIG_BULK)
            if header is None:
                return None, len(buf) + 1, None
            if isinstance(header, str):
                return None, pos, header
            size, start = header
            if size is None or size < 0 or size > self.max_bulk:
                return None, pos, errors.PROTOCOL_BULK
            if size > UNAUTH_MAX_BULK and not self.authenticated:
                return None, pos, errors.PROTOCOL_UNAUTH_BULK
            if start + size + 2 > len(buf):
                return None, start + size + 2, None
            args.append(bytes(buf[start : start + size]))
            cur = start + size + 2  # like Redis, the two bytes after the data are not checked
        return args, cur, None

    @staticmethod
    def _line(buf: bytearray, pos: int, too_big: str) -> tuple[int | None, int] | str | None:
        """(number after the type byte, position after CRLF); None = need more; str = error."""
        cr = buf.find(b"\r", pos)
        if cr < 0:
            return too_big if len(buf) - pos > INLINE_MAX else None
        if cr + 1 >= len(buf):
            return None
        return string2ll(bytes(buf[pos + 1 : cr])), cr + 2


_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}
_HEX = b"0123456789abcdefABCDEF"


def split_inline(line: bytes) -> list[bytes] | None:
    """Split an inline command like Redis' ``sdssplitargs`` (None: unbalanced quotes)."""
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \n\r\t\v\f\0":
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_dq = in_sq = False
        while True:
            if in_dq:
                if i >= n:
                    return None
                ch = line[i]
                if ch == 92 and i + 3 < n and line[i + 1] == ord("x") and line[i + 2] in _HEX and line[i + 3] in _HEX:
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif ch == 92 and i + 1 < n:
                    i += 1
                    current += _ESCAPES.get(line[i], bytes([line[i]]))
                elif ch == 34:
                    if i + 1 < n and line[i + 1] not in b" \n\r\t\v\f\0":
                        return None
                    in_dq = False
                    i += 1
                    break
                else:
                    current.append(ch)
            elif in_sq:
                if i >= n:
                    return None
                ch = line[i]
                if ch == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    current.append(39)
                elif ch == 39:
                    if i + 1 < n and line[i + 1] not in b" \n\r\t\v\f\0":
                        return None
                    in_sq = False
                    i += 1
                    break
                else:
                    current.append(ch)
            else:
                if i >= n:
                    break
                ch = line[i]
                if ch in b" \n\r\t\0":
                    break
                if ch == 34:
                    in_dq = True
                elif ch == 39:
                    in_sq = True
                else:
                    current.append(ch)
            i += 1
        args.append(bytes(current))
