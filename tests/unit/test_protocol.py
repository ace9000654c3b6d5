"""The request parser, fed whole and split at every byte."""

from __future__ import annotations

import pytest

from gateway.protocol import RequestParser, split_inline
from shard import errors


def parse_all(data: bytes, step: int | None = None) -> tuple[list[list[bytes]], str | None]:
    parser = RequestParser()
    commands: list[list[bytes]] = []
    chunks = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for chunk in chunks:
        got, error = parser.feed(chunk)
        commands += got
        if error:
            return commands, error
    return commands, None


def split_everywhere(data: bytes) -> list[tuple[list[list[bytes]], str | None]]:
    results = []
    for cut in range(1, len(data)):
        parser = RequestParser()
        first, err1 = parser.feed(data[:cut])
        if err1:
            results.append((first, err1))
            continue
        second, err2 = parser.feed(data[cut:])
        results.append((first + second, err2))
    return results


PIPELINE = (
    b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"
    b"PING\r\n"
    b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"
    b'SET "a b" \'c d\' "\\x41\\n"\n'
    b"*1\r\n$0\r\n\r\n"
)
EXPECTED = [
    [b"SET", b"key", b"value"],
    [b"PING"],
    [b"GET", b"key"],
    [b"SET", b"a b", b"c d", b"A\n"],
    [b""],
]


def test_pipeline_whole_and_split_at_every_byte() -> None:
    assert parse_all(PIPELINE) == (EXPECTED, None)
    for commands, error in split_everywhere(PIPELINE):
        assert error is None
        assert commands == EXPECTED
    assert parse_all(PIPELINE, step=1) == (EXPECTED, None)


def test_binary_safe_values() -> None:
    value = bytes(range(256)) * 3
    frame = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n" % (len(value), value)
    assert parse_all(frame) == ([[b"SET", b"k", value]], None)
    for commands, error in split_everywhere(frame):
        assert (commands, error) == ([[b"SET", b"k", value]], None)


@pytest.mark.parametrize(
    "data, error",
    [
        (b"*3000000000\r\n", errors.PROTOCOL_MULTIBULK),
        (b"*abc\r\n", errors.PROTOCOL_MULTIBULK),
        (b"*1\r\n$-1\r\n", errors.PROTOCOL_BULK),
        (b"*1\r\n$x\r\n", errors.PROTOCOL_BULK),
        (b"*1\r\n$600000000\r\n", errors.PROTOCOL_BULK),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", errors.PROTOCOL_EXPECTED.format(got="f")),
        (b"*1\r\n+PING\r\n", errors.PROTOCOL_EXPECTED.format(got="+")),
        (b"*1\r\n:1\r\n", errors.PROTOCOL_EXPECTED.format(got=":")),
        (b'SET "unbalanced\r\n', errors.PROTOCOL_QUOTES),
        (b"*" + b"1" * 70000, errors.PROTOCOL_BIG_MBULK),
        (b"*1\r\n$" + b"1" * 70000, errors.PROTOCOL_BIG_BULK),
        (b"x" * 70000, errors.PROTOCOL_BIG_INLINE),
    ],
)
def test_protocol_errors_match_redis(data: bytes, error: str) -> None:
    assert parse_all(data)[1] == error
    assert parse_all(data, step=7)[1] == error


def test_commands_before_an_error_are_kept() -> None:
    commands, error = parse_all(b"*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n")
    assert commands == [[b"PING"]]
    assert error == errors.PROTOCOL_BULK


def test_empty_multibulk_and_blank_inline_lines_are_skipped() -> None:
    assert parse_all(b"*0\r\n*-1\r\n\r\n\n*1\r\n$4\r\nPING\r\n") == ([[b"PING"]], None)


def test_partial_frame_waits() -> None:
    parser = RequestParser()
    assert parser.feed(b"*2\r\n$3\r\nGET\r\n$3\r\nke") == ([], None)
    assert parser.feed(b"y\r\n") == ([[b"GET", b"key"]], None)


def test_unauthenticated_limits() -> None:
    parser = RequestParser()
    parser.authenticated = False
    assert parser.feed(b"*11\r\n")[1] == errors.PROTOCOL_UNAUTH_MULTIBULK
    parser = RequestParser()
    parser.authenticated = False
    assert parser.feed(b"*1\r\n$16385\r\n")[1] == errors.PROTOCOL_UNAUTH_BULK


@pytest.mark.parametrize(
    "line, args",
    [
        (b"set a b", [b"set", b"a", b"b"]),
        (b'  "x y"  z ', [b"x y", b"z"]),
        (b"'it\\'s'", [b"it's"]),
        (b'"\\t\\r\\n\\a\\b\\\\ \\"q\\""', [b'\t\r\n\a\b\\ "q"']),
        (b'"\\x7a\\x5A"', [b"zZ"]),
        (b'"a"b', None),
        (b"'a'b", None),
        (b'"open', None),
        (b"", []),
    ],
)
def test_inline_splitting(line: bytes, args: list[bytes] | None) -> None:
    assert split_inline(line) == args


@pytest.mark.parametrize("data", [b"*3000000000\r\n", b"*1\r\n*3000000000\r\n", b"*2147483647\r\n"])
def test_huge_array_headers_never_reach_hiredis(data: bytes) -> None:
    # hiredis allocates an announced array up front; freeing a 3e9-slot one took 5 s.
    import time

    started = time.monotonic()
    parse_all(data)
    assert time.monotonic() - started < 0.5
