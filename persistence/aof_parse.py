"""Reading an append-only file: its RDB preamble, then RESP commands, strictly.

The parser tells a *truncated* tail (the file ends inside a command, or inside a MULTI that
has no EXEC: what a crash during a write leaves) from *corruption* (bytes that are not a
command where one must start): the first may load with a warning (``aof-load-truncated``),
the second refuses to start.
"""

from __future__ import annotations

from collections.abc import Iterator

OK = "ok"
TRUNCATED = "truncated"
CORRUPT = "corrupt"
MAX_ARGS = 1 << 20


class AofParser:
    """Iterates ``(argv, end offset)`` of the complete commands from ``start``; afterwards
    ``status`` says how the file ended and ``valid_end`` where its last complete command
    ends, ``error_at`` where corruption starts."""

    def __init__(self, data: bytes, start: int = 0) -> None:
        self.data = data
        self.start = start
        self.status = OK
        self.valid_end = start
        self.error_at = -1

    def commands(self) -> Iterator[tuple[list[bytes], int]]:
        data = self.data
        size = len(data)
        pos = self.start
        while pos < size:
            parsed = self._command(pos)
            if parsed is None:
                return
            argv, pos = parsed
            self.valid_end = pos
            yield argv, pos

    def _fail(self, status: str, pos: int) -> None:
        self.status = status
        self.error_at = pos

    def _line(self, pos: int, marker: int) -> tuple[int, int] | None:
        """The integer after ``marker`` on the line at ``pos`` and the position after it."""
        data = self.data
        if data[pos] != marker:
            self._fail(CORRUPT, pos)
            return None
        end = data.find(b"\r\n", pos + 1, pos + 24)
        if end < 0:
            tail = data[pos + 1 :].rstrip(b"\r")
            if len(tail) < 22 and (not tail or tail.isdigit()):  # the file ends in this line
                self._fail(TRUNCATED, pos)
            else:
                self._fail(CORRUPT, pos)
            return None
        digits = data[pos + 1 : end]
        if not digits.isdigit():
            self._fail(CORRUPT, pos)
            return None
        return int(digits), end + 2

    def _command(self, start: int) -> tuple[list[bytes], int] | None:
        data = self.data
        size = len(data)
        head = self._line(start, 0x2A)  # '*'
        if head is None:
            return None
        count, pos = head
        if not 1 <= count <= MAX_ARGS:
            self._fail(CORRUPT, start)
            return None
        argv: list[bytes] = []
        for _ in range(count):
            if pos >= size:
                self._fail(TRUNCATED, start)
                return None
            bulk = self._line(pos, 0x24)  # '$'
            if bulk is None:
                return None
            length, pos = bulk
            end = pos + length
            if end + 2 > size:
                self._fail(TRUNCATED, start)
                return None
            if data[end : end + 2] != b"\r\n":
                self._fail(CORRUPT, end)
                return None
            argv.append(data[pos:end])
            pos = end + 2
        return argv, pos
