"""Glob matching: Redis 7.0 semantics case by case, internal paths agreeing, no blow-ups."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shard import glob
from shard.glob import compile_glob, stringmatch

# (pattern, string, does KEYS pattern return the key) — each checked against redis 7.0.15.
KEYS_CASES = [
    (b"", b"", True),
    (b"", b"a", False),
    (b"*", b"a", True),
    (b"**", b"", False),
    (b"?", b"", False),
    (b"?", b"a", True),
    (b"?", b"ab", False),
    (b"a*", b"a", True),
    (b"a*", b"abc", True),
    (b"*c", b"abc", True),
    (b"a*c", b"ac", True),
    (b"a*c", b"abbc", True),
    (b"a*c", b"abcb", False),
    (b"a?c", b"abc", True),
    (b"a?c", b"ac", False),
    (b"h[ae]llo", b"hello", True),
    (b"h[ae]llo", b"hillo", False),
    (b"h[^e]llo", b"hallo", True),
    (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True),
    (b"h[b-a]llo", b"hbllo", True),
    (b"h[a-b]llo", b"hcllo", False),
    (b"[]", b"]", False),
    (b"[]a]", b"a", False),
    (b"[]a]", b"]", False),
    (b"[]]", b"]", False),
    (b"[^]", b"x", True),
    (b"[^]", b"]", True),
    (b"[^]a]", b"xa]", True),
    (b"[", b"[", False),
    (b"[", b"", False),
    (b"[ab", b"a", True),
    (b"[ab", b"b", True),
    (b"[ab", b"ab", False),
    (b"[^", b"x", True),
    (b"[^", b"^", True),
    (b"[a-]", b"a", True),
    (b"[a-]", b"]", True),
    (b"[a-]", b"^", True),
    (b"[a-]", b"-", False),
    (b"[a-]b", b"b", True),
    (b"[a-]b", b"ab", False),
    (b"[a-]b]", b"b", True),
    (b"[\\]]", b"]", True),
    (b"[\\]", b"\\", False),
    (b"[\\", b"\\", True),
    (b"[\\-a]", b"-", True),
    (b"[\\-a]", b"b", False),
    (b"[a\\-c]", b"b", False),
    (b"[a\\-c]", b"-", True),
    (b"[-a]", b"-", True),
    (b"[a-c-e]", b"d", False),
    (b"[a-c-e]", b"-", True),
    (b"\\", b"\\", True),
    (b"\\", b"", False),
    (b"a\\", b"a\\", True),
    (b"\\*", b"*", True),
    (b"\\*", b"a", False),
    (b"\\?", b"?", True),
    (b"\\a", b"a", True),
    (b"\\[a]", b"[a]", True),
    (b"\\\\", b"\\", True),
    (b"*\\", b"ab\\", True),
    (b"[*]", b"*", True),
    (b"[*]", b"a", False),
    (b"[?]", b"a", False),
    (b"a[*]b", b"a*b", True),
    (b"*[", b"a[", False),
    (b"*[", b"a", False),
    (b"[\xff-a]", b"\x00", True),
    (b"[\xff-a]", b"\xff", True),
    (b"[\xff-a]", b"\x80", False),
    (b"[\xff-a]", b"b", False),
    (b"[\x80-\xff]", b"\x90", True),
    (b"[\x00-\xff]", b"\x90", False),
    (b"[\x00-\xff]", b"\x00", True),
    (b"[a-\x80]", b"\x90", True),
    (b"[^\x80-\x90]", b"\xa0", True),
    (b"*a*a*a*b", b"aaaab", True),
    (b"*a*a*a*b", b"aab", False),
    (b"a\x00b*", b"a\x00bc", True),
    (b"*?*?", b"a", False),
    (b"*?*?", b"ab", True),
    (b"?*", b"a", True),
    (b"*[]*", b"a", False),
    (b"[]*", b"]x", False),
    (b"[]-a]", b"-", False),
    (b"[]-a]", b"^", False),
    (b"[z-a]", b"m", True),
    (b"[!a]", b"b", False),
    (b"[!a]", b"!", True),
]

# (pattern, command name, matched) for nocase matching, checked with
# COMMAND LIST FILTERBY PATTERN (which matches case-insensitively) on redis 7.0.15.
NOCASE_CASES = [
    (b"GET", b"get", True),
    (b"g[A-Z]t", b"get", True),
    (b"g[Z-a]t", b"get", False),  # ends ordered, then folded: z..a is empty
    (b"g[a-Z]t", b"get", False),
    (b"[\\G]et", b"get", False),  # an escape inside a set ignores nocase
    (b"[\\g]et", b"get", True),
    (b"\\Get", b"get", True),  # an escape outside a set does not
    (b"CONFIG|G*", b"config|get", True),
    (b"[^G]et", b"get", False),
    (b"[^g]ET", b"set", True),
    (b"[G-G]et", b"get", True),
    (b"*|[A-C]*", b"acl|cat", True),
]


@pytest.mark.parametrize(("pattern", "string", "expected"), KEYS_CASES)
def test_matches_like_redis(pattern: bytes, string: bytes, expected: bool) -> None:
    assert stringmatch(pattern, string) is expected


@pytest.mark.parametrize(("pattern", "string", "expected"), NOCASE_CASES)
def test_nocase_matches_like_redis(pattern: bytes, string: bytes, expected: bool) -> None:
    assert stringmatch(pattern, string, nocase=True) is expected


def test_star_does_not_match_the_empty_string() -> None:
    """KEYS/SCAN special-case the pattern ``*``; the matcher itself follows stringmatchlen."""
    assert not compile_glob(b"*")(b"")
    assert compile_glob(b"")(b"")


def _reference(pattern: bytes, string: bytes, nocase: bool) -> bool:
    """Plain dynamic programming over the parsed predicates: slow, obviously right."""
    if not string:
        return pattern == b""
    shape = glob._parse(pattern, nocase)
    middles = [masks for masks, count in shape.middles for _ in range(count)]
    segments = [shape.head, *middles] + ([shape.tail] if shape.tail is not None else [])
    reachable = [True] + [False] * len(string)
    for index, masks in enumerate(segments):
        if index:  # a star: every position at or after a reachable one is reachable
            for pos in range(1, len(string) + 1):
                reachable[pos] = reachable[pos] or reachable[pos - 1]
        for mask in masks:
            shifted = [False] + [
                reachable[pos] and bool(mask >> string[pos] & 1) for pos in range(len(string))
            ]
            reachable = shifted
    return reachable[-1]


def _random_case(rng: random.Random) -> tuple[bytes, bytes]:
    if rng.random() < 0.3:  # long segments exercise the bitset search
        unit = rng.choice([b"[ab]", b"a", b"?", b"[^b]", b"A", b"[a-b]", b"\\a"])
        pattern = b"*" * rng.randint(0, 1) + unit * rng.randint(30, 45)
        pattern += rng.choice([b"", b"*", b"b", b"*b*"]) + unit * rng.randint(0, 40)
        string = bytes(rng.choice(b"abAB") for _ in range(rng.randint(0, 120)))
    else:
        pattern = bytes(rng.choice(b"abAB*?[]^-\\\xff\x80z") for _ in range(rng.randint(1, 10)))
        string = bytes(rng.choice(b"abAB-]^\xff\x80z") for _ in range(rng.randint(0, 8)))
    return pattern, string


def test_all_matching_paths_agree_with_reference() -> None:
    rng = random.Random(7)
    for _ in range(4000):
        pattern, string = _random_case(rng)
        nocase = rng.random() < 0.5
        expected = _reference(pattern, string, nocase)
        assert stringmatch(pattern, string, nocase) is expected, (pattern, string, nocase)
        shape = glob._parse(pattern, nocase)
        if any(0 in masks for masks in shape.all_masks()):
            continue
        for build in (glob._fast_path, glob._regex_path, glob._SegmentMatcher):
            matcher = build(shape)
            if matcher is not None:
                assert matcher(string) is expected, (build, pattern, string, nocase)


ADVERSARIAL = [
    (b"*?" * 50000, b"x" * 50000, True),
    (b"a*" * 20000 + b"b", b"a" * 50000, False),
    (b"a*" * 20000, b"a" * 50000, True),
    (b"*a" * 20000 + b"*b", b"a" * 50000, False),
    (b"*a" * 20000 + b"*", b"a" * 49999 + b"b", True),
    (b"*" + b"a" * 1000 + b"b*", b"a" * 50000, False),
    (b"*" + b"[ab]" * 1000 + b"c*", b"a" * 50000, False),
    (b"*" + b"[ab]" * 20000 + b"*c", b"a" * 50000, False),
    (b"[ab]" * 30000 + b"*", b"ab" * 25000, True),
    (b"*[a]*" * 10000 + b"b", b"a" * 50000, False),
    ((b"*" + b"[ab]" * 33) * 1500, b"ab" * 25000, True),
    (b"*\\a" * 20000 + b"*", b"a" * 50000, True),
    (b"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", b"a" * 50000, False),
]


@pytest.mark.parametrize(("pattern", "string", "expected"), ADVERSARIAL)
def test_adversarial_patterns_stay_fast(pattern: bytes, string: bytes, expected: bool) -> None:
    started = time.perf_counter()
    assert stringmatch(pattern, string) is expected
    assert stringmatch(pattern, string, nocase=True) is expected
    assert time.perf_counter() - started < 0.5


# --- differential: the same patterns on a real redis-server ---------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def real_redis() -> Iterator[Callable[[list[tuple[bytes | str, ...]]], list[Any]]]:
    """Run commands on a private redis-server; replies come back raw (RESP2, no decoding)."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    redis = pytest.importorskip("redis")
    port = _free_port()
    args = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    connection = redis.Connection(host="127.0.0.1", port=port, protocol=2)
    deadline = time.monotonic() + 10
    while True:
        try:
            connection.connect()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.skip("redis-server did not start")
            time.sleep(0.02)

    def pipeline(commands: list[tuple[bytes | str, ...]]) -> list[Any]:
        connection.send_packed_command(connection.pack_commands(commands))
        return [connection.read_response() for _ in commands]

    yield pipeline
    connection.disconnect()
    process.terminate()
    process.wait(timeout=10)


RedisPipeline = Callable[[list[tuple[bytes | str, ...]]], list[Any]]


def test_keys_agree_with_real_redis(real_redis: RedisPipeline) -> None:
    rng = random.Random(2024)
    alphabet = b"ab*?[]^-\\A"
    keys = {bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(400)}
    keys |= {b"", b"\xff", b"\x80a", b"a\x00b"}
    real_redis([("FLUSHALL",), *((b"SET", key, b"1") for key in keys)])
    pattern_alphabet = alphabet + b"\xff\x80"
    patterns = [
        bytes(rng.choice(pattern_alphabet) for _ in range(rng.randint(0, 7))) for _ in range(600)
    ]
    replies = real_redis([(b"KEYS", pattern) for pattern in patterns])
    for pattern, returned in zip(patterns, replies, strict=True):
        matcher = compile_glob(pattern)
        mine = keys if pattern == b"*" else {key for key in keys if matcher(key)}
        assert set(returned) == mine, pattern


def test_nocase_agrees_with_real_redis(real_redis: RedisPipeline) -> None:
    """COMMAND LIST FILTERBY PATTERN is the reachable nocase user of stringmatchlen."""
    (names,) = real_redis([(b"COMMAND", b"LIST")])
    rng = random.Random(99)
    alphabet = b"gGeEtTsSlL|cC*?[]^-\\"
    patterns = [bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(300)]
    replies = real_redis([(b"COMMAND", b"LIST", b"FILTERBY", b"PATTERN", p) for p in patterns])
    for pattern, returned in zip(patterns, replies, strict=True):
        mine = {name for name in names if stringmatch(pattern, name, nocase=True)}
        assert set(returned) == mine, pattern
