"""Number parsing and formatting: tables checked on redis 7.0.15, then differential runs."""

from __future__ import annotations

import math
import random
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shard import numbers
from shard.numbers import (
    LLONG_MAX,
    LLONG_MIN,
    InfiniteIncrement,
    LongDouble,
    NanOrInfinity,
    NotAFloat,
    d2string,
    fixedpoint_d2string,
    format_double,
    format_human_double,
    format_long_double_auto,
    hincrbyfloat,
    incrbyfloat,
    ld2string_human,
    ld_add,
    parse_int_arg,
    parse_score_bound,
    string2d,
    string2l,
    string2ld,
    string2ll,
)

STRING2LL = [
    (b"0", 0),
    (b"1", 1),
    (b"-1", -1),
    (b"-0", None),
    (b"01", None),
    (b"00", None),
    (b"+1", None),
    (b" 1", None),
    (b"1 ", None),
    (b"", None),
    (b"-", None),
    (b"1a", None),
    (b"0x10", None),
    (b"1.0", None),
    (b"9223372036854775807", LLONG_MAX),
    (b"9223372036854775808", None),
    (b"-9223372036854775808", LLONG_MIN),
    (b"-9223372036854775809", None),
    (b"18446744073709551616", None),
    (b"000000000000000000001", None),
    (b"\xd9\xa1", None),  # a non-ASCII digit
]


@pytest.mark.parametrize(("text", "expected"), STRING2LL)
def test_string2ll(text: bytes, expected: int | None) -> None:
    assert string2ll(text) == expected
    assert string2l(text) == expected
    assert parse_int_arg(text) == expected


# (score argument, ZSCORE reply or None for "value is not a valid float"), from redis 7.0.15
STRING2D = [
    (b"1", b"1"),
    (b"+1", b"1"),
    (b" 1", None),
    (b"1 ", None),
    (b"", None),
    (b".", None),
    (b"-", None),
    (b"1e", None),
    (b"1e+", None),
    (b"0x", None),
    (b"0x1p", None),
    (b"nan", None),
    (b"-nan", None),
    (b"inf", b"inf"),
    (b"+inf", b"inf"),
    (b"-inf", b"-inf"),
    (b"INF", b"inf"),
    (b"infinity", b"inf"),
    (b"infinit", None),
    (b"0x10", b"16"),
    (b"0x1.8p1", b"3"),
    (b".5", b"0.5"),
    (b"5.", b"5"),
    (b"1.e5", b"100000"),
    (b"1e400", None),
    (b"1e-400", None),
    (b"0e-400", b"0"),
    (b"4.9e-324", b"4.9406564584124654e-324"),
    (b"2.5e-324", b"4.9406564584124654e-324"),
    (b"2.4e-324", None),
    (b"1e-320", b"9.9998886718268301e-321"),
    (b"1000000000000000.25", b"1000000000000000.2"),
    (b"1e17", b"1e+17"),
    (b"-0", b"-0"),
    (b"0.1", b"0.10000000000000001"),
    (b"1e-5", b"1.0000000000000001e-05"),
    (b"123456789012345678", b"1.2345678901234568e+17"),
    (b"0x1.fffffffffffff7p1023", b"1.7976931348623157e+308"),
    (b"0x1.fffffffffffff8p1023", None),  # rounds up past the largest double
    (b"1.7976931348623158e308", b"1.7976931348623157e+308"),
    (b"1.7976931348623159e308", None),
]


@pytest.mark.parametrize(("text", "reply"), STRING2D)
def test_string2d_and_format_double(text: bytes, reply: bytes | None) -> None:
    value = string2d(text)
    if reply is None:
        assert value is None
    else:
        assert value is not None
        assert format_double(value) == reply
        assert format_double(value, resp3=True) == reply


# (increment on an absent key, reply or None for "not a valid float"), from redis 7.0.15
INCRBYFLOAT_ABSENT = [
    (b"0.1", b"0.1"),
    (b"1e5", b"100000"),
    (b"0x10", b"16"),
    (b"1.5e+3", b"1500"),
    (b"-3.7e10", b"-37000000000"),
    (b"1.23456789012345678", b"1.23456789012345678"),
    (b"123456789012345678901234567890", b"123456789012345678899921813504"),
    (b"0.000003814697265625", b"0.00000381469726562"),  # 2**-18: a tie, kept even
    (b"0.000011444091796875", b"0.00001144409179688"),  # 3 * 2**-18: a tie, rounded up
    (b"-0.00000000000000000001", b"0"),  # "-0" is printed as "0"
    (b"1e-17", b"0.00000000000000001"),
    (b"5e-18", b"0"),
    (b"0x1p-16445", b"0"),  # the smallest subnormal long double
    (b"0x1p-16446", None),  # half of it rounds to zero: ERANGE
    (b"1e-4950", b"0"),
    (b"1e-4960", None),
    (b"1e4933", None),
    (b"0x1.ffffffffffffffffp16383", None),  # rounds up past the largest long double
    (b" 1", None),
    (b"nan", None),
]


@pytest.mark.parametrize(("increment", "reply"), INCRBYFLOAT_ABSENT)
def test_incrbyfloat_on_absent_key(increment: bytes, reply: bytes | None) -> None:
    if reply is None:
        with pytest.raises(NotAFloat):
            incrbyfloat(None, increment)
    else:
        assert incrbyfloat(None, increment) == reply


def test_incrbyfloat_long_results() -> None:
    assert incrbyfloat(None, b"1e4932").startswith(b"100000000000000000000601894938")
    assert len(incrbyfloat(None, b"1e4932")) == 4933
    top = incrbyfloat(None, b"0x1.fffffffffffffffep16383")
    assert top.startswith(b"11897314953572317650212638530309702051690633222946")
    assert incrbyfloat(b"1e308", b"1e308").startswith(b"19999999999999999999337175931169")


@pytest.mark.parametrize(
    ("current", "result"),
    [(b"1e5", b"100001"), (b"0x10", b"17"), (b"1.5e+3", b"1501"), (b"-0", b"1"), (b"5.", b"6")],
)
def test_incrbyfloat_parses_stored_values(current: bytes, result: bytes) -> None:
    assert incrbyfloat(current, b"1") == result


@pytest.mark.parametrize(
    ("current", "increment", "error"),
    [
        (b"  1", b"1", NotAFloat),
        (b"1 ", b"1", NotAFloat),
        (b"", b"1", NotAFloat),
        (b"abc", b"inf", NotAFloat),
        (b"1", b"abc", NotAFloat),
        (b"inf", b"1", NanOrInfinity),
        (b"infinity", b"0", NanOrInfinity),
        (b"1", b"inf", NanOrInfinity),
        (b"-inf", b"+inf", NanOrInfinity),
        (b"1e4932", b"1e4932", NanOrInfinity),
        (b"1" * 5120, b"1", NotAFloat),  # longer than Redis' buffer
    ],
)
def test_incrbyfloat_errors(current: bytes, increment: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        incrbyfloat(current, increment)


def test_incrbyfloat_reports_which_text_is_bad() -> None:
    with pytest.raises(NotAFloat) as stored:
        incrbyfloat(b"x", b"y")
    assert stored.value.operand == "current"
    with pytest.raises(NotAFloat) as argument:
        incrbyfloat(b"1", b"y")
    assert argument.value.operand == "increment"


def test_hincrbyfloat_checks_in_redis_order() -> None:
    assert hincrbyfloat(None, b"1.5") == b"1.5"
    with pytest.raises(NotAFloat) as bad:
        hincrbyfloat(b"abc", b"x")
    assert bad.value.operand == "increment"
    with pytest.raises(InfiniteIncrement):
        hincrbyfloat(b"abc", b"inf")
    with pytest.raises(NotAFloat) as stored:
        hincrbyfloat(b"abc", b"1")
    assert stored.value.operand == "current"
    with pytest.raises(NanOrInfinity):
        hincrbyfloat(b"1e4932", b"1e4932")


def test_repeated_tenths_stay_short() -> None:
    value = b"0"
    for expected in (b"0.1", b"0.2", b"0.3", b"0.4", b"0.5"):
        value = incrbyfloat(value, b"0.1")
        assert value == expected


def test_long_double_addition_rounds_once() -> None:
    one, tiny = LongDouble(1, 0), LongDouble(1, -64)  # 2**-64 is half an ulp of 1
    assert ld_add(one, tiny) == LongDouble(1 << 63, -63)  # tie: stays even
    odd = LongDouble((1 << 63) + 1, -63)
    assert ld_add(odd, tiny) == LongDouble((1 << 63) + 2, -63)  # tie: rounds to even
    assert ld_add(LongDouble(infinite=1), LongDouble(infinite=-1)) is None
    assert ld2string_human(LongDouble(-3, -1)) == b"-1.5"
    assert ld2string_human(LongDouble(infinite=-1)) == b"-inf"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (math.inf, b"inf"),
        (-math.inf, b"-inf"),
        (math.nan, b"nan"),
        (-math.nan, b"-nan"),
        (0.0, b"0"),
        (-0.0, b"-0"),
        (1.5, b"1.5"),
        (1e16, b"10000000000000000"),
        (1e17, b"1e+17"),
        (2.0**-1074, b"4.9406564584124654e-324"),
    ],
)
def test_format_double(value: float, text: bytes) -> None:
    assert format_double(value) == text
    assert format_double(value, resp3=True) == text
    if not math.isnan(value):
        assert format_long_double_auto(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, b"1"),
        (3.0, b"3"),
        (-0.0, b"-0"),
        (0.0, b"0"),
        (0.1, b"0.10000000000000001"),
        (1e17, b"100000000000000000"),
        (2.0**62, b"4611686018427387904"),
        (-(2.0**62), b"-4611686018427387904"),
        (2.0**63, b"9.2233720368547758e+18"),
        (2.5, b"2.5"),
        (math.inf, b"inf"),
        (-math.inf, b"-inf"),
        (math.nan, b"nan"),
    ],
)
def test_d2string(value: float, text: bytes) -> None:
    assert d2string(value) == text


def test_format_human_double() -> None:
    assert format_human_double(13.361389338970184) == b"13.36138933897018433"
    assert format_human_double(-0.0) == b"0"
    assert format_human_double(2.0) == b"2"


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (0.0, 4, b"0.0000"),
        (-0.0, 4, b"0.0000"),
        (0.775, 4, b"0.7750"),
        (-0.775, 4, b"-0.7750"),
        (1234.56789, 4, b"1234.5679"),
        (0.00005, 4, b"0.0000"),  # 0.5 after scaling: half to even
        (0.00015, 4, b"0.0001"),  # scaled in double arithmetic: 1.4999999999999998
        (166274.1516, 4, b"166274.1516"),
        (1e-9, 4, b"0.0000"),
        (-1e-9, 4, b"0.0000"),
        (3.0, 1, b"3.0"),
    ],
)
def test_fixedpoint_d2string(value: float, digits: int, text: bytes) -> None:
    assert fixedpoint_d2string(value, digits) == text


# (ZCOUNT min argument, parsed bound or None for "min or max is not a float"), redis 7.0.15
SCORE_BOUNDS = [
    (b"1", (1.0, False)),
    (b"(1", (1.0, True)),
    (b" 1", (1.0, False)),
    (b"\t\n\v\f\r1", (1.0, False)),
    (b"( 1", (1.0, True)),
    (b" (1", None),
    (b"((1", None),
    (b"1 ", None),
    (b"", (0.0, False)),
    (b"(", (0.0, True)),
    (b"  ", None),
    (b"-", None),
    (b"1e", None),
    (b"nan", None),
    (b"1e400", (math.inf, False)),
    (b"-1e400", (-math.inf, False)),
    (b"1e-400", (0.0, False)),
    (b"0x1p-1080", (0.0, False)),
    (b"0x10", (16.0, False)),
    (b"+inf", (math.inf, False)),
    (b"-infinity", (-math.inf, False)),
    (b"1\x00x", (1.0, False)),  # C stops at the NUL
    (b"\x00x", (0.0, False)),
]


@pytest.mark.parametrize(("text", "bound"), SCORE_BOUNDS)
def test_parse_score_bound(text: bytes, bound: tuple[float, bool] | None) -> None:
    assert parse_score_bound(text) == bound


def test_huge_texts_do_not_hit_int_conversion_limits() -> None:
    digits = b"1" + b"0" * 4500
    assert string2d(digits) is None  # overflows a double
    assert string2ld(b"0." + b"0" * 5000 + b"1") is None  # underflows a long double
    assert string2ld(b"0." + b"0" * 4600 + b"1") is not None  # a long double reaches 1e-4951
    assert string2ld(b"1" + b"0" * 4900) is not None
    assert string2d(b"1" * 20000 + b"e-19990") == pytest.approx(1.1111111111111112e9)
    assert string2d(b"1e" + b"9" * 30) is None
    assert string2d(b"1e-" + b"9" * 30) is None
    assert string2d(b"0e" + b"9" * 30) == 0.0


# --- differential: the same operations on a real redis-server --------------------------------

Replies = Callable[[list[tuple[bytes | str, ...]]], list[Any]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def real_redis() -> Iterator[Replies]:
    """Run commands on a private redis-server; replies are raw bytes, errors are strings."""
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

    def run(commands: list[tuple[bytes | str, ...]]) -> list[Any]:
        connection.send_packed_command(connection.pack_commands(commands))
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(connection.read_response())
            except redis.ResponseError as error:
                replies.append(str(error))
        return replies

    yield run
    connection.disconnect()
    process.terminate()
    process.wait(timeout=10)


def _random_decimal(rng: random.Random) -> bytes:
    sign = rng.choice([b"", b"-", b"+"]) if rng.random() < 0.4 else b""
    digits = str(rng.randrange(10 ** rng.randint(1, 20))).encode()
    cut = rng.randint(0, len(digits))
    text = digits[:cut] + (b"." if rng.random() < 0.7 else b"") + digits[cut:]
    if rng.random() < 0.4:
        text += rng.choice([b"e", b"E"]) + str(rng.randint(-30, 30)).encode()
    return sign + text


def _incrbyfloat_reply(current: bytes | None, increment: bytes) -> bytes | str:
    try:
        return incrbyfloat(current, increment)
    except NotAFloat:
        return "value is not a valid float"
    except NanOrInfinity:
        return "increment would produce NaN or Infinity"


ODD_STORED = [b"  1", b"1e5", b"0x10", b"1.5e+3", b"inf", b"abc", b"-0", b"1e4932", b"0x1p-16445"]
INCREMENTS = [b"0.1", b"1e-5", b"-3.7e10", b"5.0e3", b"17", b"1.23456789012345678", b"-0.3"]


def test_incrbyfloat_walk_matches_real_redis(real_redis: Replies) -> None:
    """Thousands of INCRBYFLOATs on a few keys; now and then a key holds an odd text."""
    rng = random.Random(42)
    stored: dict[bytes, bytes | None] = {b"k%d" % index: None for index in range(4)}
    commands: list[tuple[bytes | str, ...]] = [("FLUSHALL",)]
    expected: list[Any] = [b"OK"]

    def step(key: bytes, increment: bytes) -> None:
        reply = _incrbyfloat_reply(stored[key], increment)
        if isinstance(reply, bytes):
            stored[key] = reply
        commands.append((b"INCRBYFLOAT", key, increment))
        expected.append(reply)

    def store(key: bytes, value: bytes) -> None:
        commands.append((b"SET", key, value))
        expected.append(b"OK")
        stored[key] = value

    for _ in range(3000):
        key = rng.choice(list(stored))
        roll = rng.random()
        if roll < 0.03:  # an odd stored text, one increment on it, then a plain number again
            store(key, rng.choice(ODD_STORED))
            step(key, rng.choice(INCREMENTS))
            store(key, _random_decimal(rng))
        elif roll < 0.05:
            step(key, rng.choice([b"inf", b"nan", b" 1", b"1e308", b"0x1p-3", b"-0"]))
        else:
            step(key, rng.choice(INCREMENTS) if roll < 0.6 else _random_decimal(rng))
    replies = real_redis(commands)
    assert sum(isinstance(reply, bytes) for reply in expected) > 2500  # mostly successes
    for command, want, got in zip(commands, expected, replies, strict=True):
        assert got == want, command


def test_hincrbyfloat_matches_real_redis(real_redis: Replies) -> None:
    rng = random.Random(5)
    current: bytes | None = None
    commands: list[tuple[bytes | str, ...]] = [("DEL", "h")]
    expected: list[Any] = [None]
    for _ in range(500):
        increment = _random_decimal(rng) if rng.random() < 0.9 else rng.choice(INCREMENTS)
        want: bytes | str
        try:
            current = want = hincrbyfloat(current, increment)
        except NotAFloat:
            want = "value is not a valid float"
        commands.append((b"HINCRBYFLOAT", b"h", b"f", increment))
        expected.append(want)
    replies = real_redis(commands)
    for command, want, got in zip(commands[1:], expected[1:], replies[1:], strict=True):
        assert got == want, command


def _random_double_text(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.3:  # any double, by its bits
        (value,) = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))
        return repr(value).encode()
    if roll < 0.45:
        return repr(rng.uniform(-1e6, 1e6)).encode()
    if roll < 0.7:
        return _random_decimal(rng)
    if roll < 0.8:
        return b"0x%xp%d" % (rng.getrandbits(rng.randint(1, 70)), rng.randint(-1100, 1000))
    return bytes(rng.choice(b"0123456789.eE+-xXpinfINF ") for _ in range(rng.randint(0, 8)))


def test_double_arguments_and_replies_match_real_redis(real_redis: Replies) -> None:
    """ZADD parses with string2d; ZSCORE replies with addReplyDouble, ZSCAN with %.17Lg."""
    rng = random.Random(11)
    texts = [_random_double_text(rng) for _ in range(1500)]
    commands: list[tuple[bytes | str, ...]] = [("CONFIG", "SET", "zset-max-listpack-entries", "0")]
    for text in texts:
        commands += [("DEL", "z"), (b"ZADD", b"z", text, b"m"), ("ZSCORE", "z", "m")]
        commands.append(("ZSCAN", "z", "0"))
    replies = real_redis(commands)[1:]
    real_redis([("CONFIG", "SET", "zset-max-listpack-entries", "128")])
    for index, text in enumerate(texts):
        added, score, scan = replies[4 * index + 1 : 4 * index + 4]
        value = string2d(text)
        if value is None:
            assert added == "value is not a valid float", text
            continue
        assert added == 1, text
        assert score == format_double(value), text
        assert scan[1][1] == format_long_double_auto(value), text


def test_listpack_scores_match_real_redis(real_redis: Replies) -> None:
    """A small sorted set stores d2string text, which ZSCAN returns as is."""
    rng = random.Random(12)
    values = [v for v in (string2d(_random_double_text(rng)) for _ in range(800)) if v]
    values += [1.0, 1e17, 2.0**62, 2.0**63, -(2.0**62), 0.5, 123.0]
    commands: list[tuple[bytes | str, ...]] = []
    for value in values:
        commands += [("DEL", "z"), (b"ZADD", b"z", repr(value).encode(), b"m"), ("ZSCAN", "z", "0")]
    replies = real_redis(commands)
    for index, value in enumerate(values):
        assert replies[3 * index + 2][1][1] == d2string(value), value


SCORES = [-math.inf, -1e308, -1.0, -5e-324, 0.0, 5e-324, 1.0, 2.0, 1e308, math.inf]


def test_score_bounds_match_real_redis(real_redis: Replies) -> None:
    rng = random.Random(14)
    texts = [text for text, _ in SCORE_BOUNDS]
    for _ in range(600):
        text = _random_double_text(rng)
        texts.append(rng.choice([b"", b"(", b" ", b"(\t"]) + text + rng.choice([b"", b"", b" "]))
    commands: list[tuple[bytes | str, ...]] = [("DEL", "z")]
    members = [item for i, v in enumerate(SCORES) for item in (repr(v), str(i))]
    commands.append((b"ZADD", b"z", *members))
    commands += [(b"ZCOUNT", b"z", text, b"+inf") for text in texts]
    replies = real_redis(commands)[2:]
    for text, got in zip(texts, replies, strict=True):
        bound = parse_score_bound(text)
        if bound is None:
            assert got == "min or max is not a float", text
            continue
        value, exclusive = bound
        assert got == sum(score > value or (score == value and not exclusive) for score in SCORES)


def test_integer_arguments_match_real_redis(real_redis: Replies) -> None:
    rng = random.Random(13)
    texts = [b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808"]
    for _ in range(600):
        texts.append(bytes(rng.choice(b"0123456789-+ ") for _ in range(rng.randint(0, 22))))
        texts.append(str(rng.randint(-(2**64), 2**64)).encode())
    commands: list[tuple[bytes | str, ...]] = []
    for text in texts:
        commands += [("DEL", "n"), (b"INCRBY", b"n", text)]
    replies = real_redis(commands)
    for index, text in enumerate(texts):
        got = replies[2 * index + 1]
        parsed = string2ll(text)
        want = "value is not an integer or out of range" if parsed is None else parsed
        assert got == want, text


def test_module_names_its_errors() -> None:
    assert issubclass(numbers.NotAFloat, ValueError)
    assert issubclass(numbers.NanOrInfinity, ValueError)
