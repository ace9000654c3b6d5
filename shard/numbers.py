"""Redis 7.0 number parsing and formatting, byte for byte, with no I/O.

Which function Redis uses where:

* ``string2ll`` — every integer argument and stored integer (``getLongLongFromObject``):
  INCRBY, EXPIRE, LRANGE indexes, the RESP length headers ...  ``string2l`` is the same on
  64-bit builds; ``parse_int_arg`` is the name to use for command arguments.
* ``string2d`` — double arguments (``getDoubleFromObject``): ZADD/ZINCRBY scores,
  ZUNIONSTORE/ZINTERSTORE weights, GEO coordinates, radius, width and height.
* ``parse_score_bound`` — ZRANGEBYSCORE/ZCOUNT/ZREMRANGEBYSCORE bounds (``zslParseRange``,
  a bare strtod: looser than ``string2d``).
* ``string2ld`` — long double arguments and stored values (``getLongDoubleFromObject``):
  INCRBYFLOAT and HINCRBYFLOAT, which compute in x87 80-bit long double, and blocking
  timeouts in seconds (BLPOP ...).  ``incrbyfloat`` and ``hincrbyfloat`` do the whole
  computation and return the text Redis stores and replies (``ld2string`` human mode:
  ``%.17Lf`` with trailing zeros trimmed); the same text is the replicated SET value.
* ``format_double`` — every double in a reply (``addReplyDouble``): ZSCORE, ZINCRBY, ZRANGE
  WITHSCORES ...  ``%.17g``, with ``inf``/``-inf`` spelt out; the text is the same for RESP2
  bulk strings and RESP3 doubles.  ZSCAN of a skiplist-encoded sorted set formats scores
  with ``%.17Lg`` (``format_long_double_auto``), which prints the same digits.
* ``d2string`` — a score stored as text in a listpack-encoded sorted set (integers without
  exponent), which is what ZSCAN returns for small sorted sets and what RDB/DUMP contain.
* ``format_human_double`` — GEOPOS / WITHCOORD replies (``addReplyHumanLongDouble``).
* ``fixedpoint_d2string`` — GEODIST and WITHDIST (four decimals).

Python has no long double, so long doubles are exact integers here: parsed text is rounded
once to 64 significant bits (ties to even, like glibc ``strtold``), sums are computed exactly
and rounded once (like the x87 FPU), and ``%.17Lf`` is computed exactly and rounded half to
even (like glibc ``printf``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

LLONG_MIN = -(1 << 63)
LLONG_MAX = (1 << 63) - 1
_LONG_STR_SIZE = 21  # string2ll rejects texts this long or longer
_MAX_LONG_DOUBLE_CHARS = 5 * 1024  # string2ld rejects texts this long or longer


class NotAFloat(ValueError):
    """A text Redis does not accept as a float; ``operand`` says which one."""

    def __init__(self, operand: str) -> None:
        super().__init__(f"{operand} is not a valid float")
        self.operand = operand  # "current" (the stored value) or "increment"


class NanOrInfinity(ValueError):
    """The sum would be NaN or infinite ("increment would produce NaN or Infinity")."""


class InfiniteIncrement(ValueError):
    """HINCRBYFLOAT's increment is infinite ("value is NaN or Infinity")."""


# --- integers -----------------------------------------------------------------------------


def string2ll(text: bytes) -> int | None:
    """Strict int64 parse: optional ``-``, no ``+``, spaces or leading zeros, and not "-0".

    ``int()`` is lenient (spaces, ``+``, ``_``, leading zeros); printing the value back and
    comparing keeps exactly the canonical spellings, which are what Redis accepts.  This is
    on the INCR path, and twice as fast as checking the characters one rule at a time.
    """
    if len(text) >= _LONG_STR_SIZE:
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    if b"%d" % value != text or not LLONG_MIN <= value <= LLONG_MAX:
        return None
    return value


def string2l(text: bytes) -> int | None:
    """Redis ``string2l``: ``long`` is 64-bit on the platforms it runs on, so as string2ll."""
    return string2ll(text)


def parse_int_arg(text: bytes) -> int | None:
    """An integer command argument (``getLongLongFromObject``); None means "not an integer"."""
    return string2ll(text)


# --- exact binary floating point ----------------------------------------------------------


@dataclass(frozen=True)
class _Format:
    precision: int  # significant bits
    min_exponent: int  # exponent of the smallest normal number
    max_exponent: int  # exponent of the largest finite number


_DOUBLE = _Format(53, -1022, 1023)
_X87 = _Format(64, -16382, 16383)  # x86-64 long double
_RANGE_LIMIT = 5200  # decimal exponents beyond this over/underflow either format


@dataclass(frozen=True)
class LongDouble:
    """An x87 80-bit value: ``mantissa * 2**exponent`` (``mantissa`` signed), or infinity."""

    mantissa: int = 0
    exponent: int = 0
    infinite: int = 0  # +1 or -1 for plus or minus infinity

    @classmethod
    def from_float(cls, value: float) -> LongDouble:
        """Widen a double, as C does when a double meets a long double."""
        if math.isinf(value):
            return cls(infinite=1 if value > 0 else -1)
        numerator, denominator = value.as_integer_ratio()
        return cls(numerator, 1 - denominator.bit_length())


def _round_binary(
    numerator: int, denominator: int, exponent: int, fmt: _Format
) -> tuple[int, int] | None:
    """Round ``numerator / denominator * 2**exponent`` (positive) to ``fmt``, ties to even.

    Returns ``(mantissa, exponent)``; the mantissa is 0 on underflow; None means overflow.
    """
    top = numerator.bit_length() - denominator.bit_length()
    if (numerator << max(-top, 0)) < (denominator << max(top, 0)):
        top -= 1  # now 2**top <= numerator / denominator < 2**(top + 1)
    quantum = max(top + exponent, fmt.min_exponent) - (fmt.precision - 1)
    shift = exponent - quantum
    if shift >= 0:
        mantissa, remainder = divmod(numerator << shift, denominator)
    else:
        mantissa, remainder = divmod(numerator, denominator << -shift)
        denominator <<= -shift
    if 2 * remainder > denominator or (2 * remainder == denominator and mantissa & 1):
        mantissa += 1
    if mantissa >> fmt.precision:  # rounding carried into a new bit
        mantissa >>= 1
        quantum += 1
    if mantissa and quantum + fmt.precision - 1 > fmt.max_exponent:
        return None
    return mantissa, quantum


_SAFE_DIGITS = 600  # below any int<->str digit limit Python can be configured with (>= 640)


def _digits_to_int(digits: bytes) -> int:
    """``int(digits)`` without hitting Python's int/str conversion digit limit."""
    if len(digits) <= _SAFE_DIGITS:
        return int(digits or b"0")
    half = len(digits) // 2
    scale: int = 10**half
    return _digits_to_int(digits[:-half]) * scale + _digits_to_int(digits[-half:])


def _int_to_digits(value: int) -> str:
    """``str(value)`` (value >= 0) without hitting Python's int/str conversion digit limit."""
    if value.bit_length() < _SAFE_DIGITS * 3:  # fewer than ~900 digits
        return str(value)
    half = (value.bit_length() * 3 // 10) // 2  # about half the decimal digits
    high, low = divmod(value, 10**half)
    return _int_to_digits(high) + _int_to_digits(low).rjust(half, "0")


# --- text to floating point -----------------------------------------------------------------

# What glibc strtod/strtold accept, whole (Redis rejects any text they do not consume fully,
# and any leading space).  NaN texts are left out: Redis rejects NaN anyway.
_FLOAT_TEXT = re.compile(
    rb"""(?P<sign>[+-]?)(?:
        (?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?(?:[eE](?P<exp>[+-]?[0-9]+))?
      | 0[xX](?P<hexint>[0-9a-fA-F]*)(?:\.(?P<hexfrac>[0-9a-fA-F]*))?(?:[pP](?P<bexp>[+-]?[0-9]+))?
      | (?P<inf>[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)
    )""",
    re.VERBOSE,
)


def _exponent(text: bytes | None) -> int:
    """An exponent field, saturated: anything this large over- or underflows anyway."""
    if not text:
        return 0
    sign = -1 if text[:1] == b"-" else 1
    digits = text.lstrip(b"+-").lstrip(b"0")
    return sign * (int(digits or b"0") if len(digits) < 9 else 10**9)


def _parse_float(text: bytes, fmt: _Format) -> tuple[int, int, int] | None:
    """``(sign, mantissa, exponent)`` as ``fmt`` rounds the text; mantissa -1 = infinity.

    None when Redis rejects the text: not a number, NaN, or out of range (strtod's ERANGE
    with a zero or infinite result; tiny numbers that round to a subnormal are accepted).
    """
    parsed = _FLOAT_TEXT.fullmatch(text)
    if parsed is None:
        return None
    sign = -1 if parsed["sign"] == b"-" else 1
    if parsed["inf"]:
        return sign, -1, 0
    exact = _hex_value(parsed) if parsed["hexint"] is not None else _decimal_value(parsed)
    if exact is None:
        return None
    numerator, denominator, exponent = exact
    if numerator == 0:
        return sign, 0, 0
    rounded = _round_binary(numerator, denominator, exponent, fmt)
    if rounded is None or rounded[0] == 0:
        return None
    return sign, rounded[0], rounded[1]


def _hex_value(parsed: re.Match[bytes]) -> tuple[int, int, int] | None:
    """``(numerator, 1, binary exponent)`` of a hex float; None if malformed or out of range."""
    whole, fraction = parsed["hexint"], parsed["hexfrac"] or b""
    if not whole and not fraction:
        return None  # "0x" alone: strtod stops after the "0"
    mantissa = int(whole + fraction, 16)
    exponent = _exponent(parsed["bexp"]) - 4 * len(fraction)
    if mantissa and abs(mantissa.bit_length() + exponent) > 4 * _RANGE_LIMIT:
        return None
    return mantissa, 1, exponent


def _decimal_value(parsed: re.Match[bytes]) -> tuple[int, int, int] | None:
    """``(numerator, denominator, 0)`` of a decimal float; None if malformed or out of range."""
    whole, fraction = parsed["int"], parsed["frac"] or b""
    if not whole and not fraction:
        return None
    digits = (whole + fraction).lstrip(b"0")
    significant = digits.rstrip(b"0")
    if not significant:
        return 0, 1, 0
    power = _exponent(parsed["exp"]) - len(fraction) + len(digits) - len(significant)
    if abs(len(significant) + power) > _RANGE_LIMIT:
        return None
    mantissa = _digits_to_int(significant)
    return mantissa * 10 ** max(power, 0), 10 ** max(-power, 0), 0


def string2d(text: bytes) -> float | None:
    """A double argument as Redis parses it (``string2d``), or None: "not a valid float".

    Accepts what strtod accepts in full: ``1``, ``+1.5``, ``.5``, ``5.``, ``1e10``, hex
    floats (``0x1p3``), ``inf``/``+inf``/``-inf``/``infinity`` in any case.  Rejects leading
    or trailing spaces, NaN, the empty text, overflow (``1e400``) and underflow to zero.
    """
    parsed = _FLOAT_TEXT.fullmatch(text)
    if parsed is None:
        return None
    if parsed["int"] is None:  # hex or infinity: round exactly
        rounded = _parse_float(text, _DOUBLE)
        if rounded is None:
            return None
        sign, mantissa, exponent = rounded
        magnitude = math.inf if mantissa < 0 else math.ldexp(mantissa, exponent)
        return math.copysign(magnitude, sign)
    digits = parsed["int"] + (parsed["frac"] or b"")
    if not digits:
        return None
    value = float(text)  # correctly rounded, as glibc's strtod
    if math.isinf(value):
        return None  # overflow
    if value == 0 and digits.strip(b"0"):
        return None  # a nonzero number that underflowed to zero
    return value


def string2ld(text: bytes) -> LongDouble | None:
    """A long double as Redis parses it (``string2ld``), or None: "not a valid float"."""
    if len(text) >= _MAX_LONG_DOUBLE_CHARS:
        return None
    parsed = _parse_float(text, _X87)
    if parsed is None:
        return None
    sign, mantissa, exponent = parsed
    if mantissa < 0:
        return LongDouble(infinite=sign)
    return LongDouble(sign * mantissa, exponent)


# --- long double arithmetic and INCRBYFLOAT -------------------------------------------------


def ld_add(left: LongDouble, right: LongDouble) -> LongDouble | None:
    """``left + right`` rounded once to 64 bits, as the x87 FPU does; None stands for NaN."""
    if left.infinite or right.infinite:
        if left.infinite and right.infinite and left.infinite != right.infinite:
            return None
        return left if left.infinite else right
    low = min(left.exponent, right.exponent)
    total = (left.mantissa << (left.exponent - low)) + (right.mantissa << (right.exponent - low))
    if total == 0:
        return LongDouble()
    rounded = _round_binary(abs(total), 1, low, _X87)
    sign = 1 if total > 0 else -1
    if rounded is None:
        return LongDouble(infinite=sign)
    return LongDouble(sign * rounded[0], rounded[1])


def incrbyfloat(current: bytes | None, increment: bytes) -> bytes:
    """INCRBYFLOAT's new value for a string (``current`` None: the key is absent, so 0).

    Raises NotAFloat (either text) or NanOrInfinity (an infinite or NaN sum, which also
    covers an ``inf`` increment or stored value); the stored value is checked first.
    """
    value = LongDouble() if current is None else string2ld(current)
    if value is None:
        raise NotAFloat("current")
    step = string2ld(increment)
    if step is None:
        raise NotAFloat("increment")
    return _finite_sum_text(value, step)


def hincrbyfloat(current: bytes | None, increment: bytes) -> bytes:
    """HINCRBYFLOAT's new field value, with the checks in Redis' order.

    The increment first: NotAFloat("increment") ("value is not a valid float"), then
    InfiniteIncrement ("value is NaN or Infinity"); the handler checks the key's type after
    those.  Then the field: NotAFloat("current") ("hash value is not a float"); finally
    NanOrInfinity for an infinite sum.
    """
    step = string2ld(increment)
    if step is None:
        raise NotAFloat("increment")
    if step.infinite:
        raise InfiniteIncrement("value is NaN or Infinity")
    value = LongDouble() if current is None else string2ld(current)
    if value is None:
        raise NotAFloat("current")
    return _finite_sum_text(value, step)


def _finite_sum_text(value: LongDouble, step: LongDouble) -> bytes:
    total = ld_add(value, step)
    if total is None or total.infinite:
        raise NanOrInfinity("increment would produce NaN or Infinity")
    return ld2string_human(total)


# --- formatting -------------------------------------------------------------------------------


def ld2string_human(value: LongDouble) -> bytes:
    """Redis' human long double text: ``%.17Lf``, trailing zeros and "." trimmed, "-0" -> "0"."""
    if value.infinite:
        return b"inf" if value.infinite > 0 else b"-inf"
    text = _fixed_17(abs(value.mantissa), value.exponent)
    text = text.rstrip("0").rstrip(".")
    if value.mantissa < 0 and text != "0":
        text = "-" + text
    return text.encode()


def _fixed_17(mantissa: int, exponent: int) -> str:
    """``%.17f`` of ``mantissa * 2**exponent`` (non-negative), rounded half to even."""
    scaled = mantissa * 10**17
    if exponent >= 0:
        units = scaled << exponent
    else:
        units, remainder = divmod(scaled, 1 << -exponent)
        half = 1 << (-exponent - 1)
        if remainder > half or (remainder == half and units & 1):
            units += 1
    digits = _int_to_digits(units).rjust(18, "0")
    return digits[:-17] + "." + digits[-17:]


def format_human_double(value: float) -> bytes:
    """A double replied as a human long double (``addReplyHumanLongDouble``: GEOPOS)."""
    return ld2string_human(LongDouble.from_float(value))


def format_double(value: float, resp3: bool = False) -> bytes:
    """The text of a double reply (``addReplyDouble``), without RESP framing.

    ``%.17g`` for finite values, ``inf``/``-inf`` spelt out, NaN as glibc prints it
    (``nan``/``-nan``).  Redis 7.0 writes the same text in RESP2 (``$``) and RESP3 (``,``).
    """
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if math.isnan(value):
        return b"-nan" if math.copysign(1.0, value) < 0 else b"nan"
    return b"%.17g" % value


def format_long_double_auto(value: float) -> bytes:
    """``ld2string`` auto mode (``%.17Lg``) of a double widened to long double (ZSCAN)."""
    return format_double(value)


def d2string(value: float) -> bytes:
    """A score as a listpack sorted set stores it: integers plainly, else ``%.17g``."""
    if math.isnan(value):
        return b"nan"
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if value == 0:
        return b"-0" if math.copysign(1.0, value) < 0 else b"0"
    if -(2.0**62) <= value <= 2.0**62 and value.is_integer():
        return b"%d" % int(value)  # Redis' double2ll: safely representable as long long
    return b"%.17g" % value


def fixedpoint_d2string(value: float, fractional_digits: int) -> bytes:
    """``value`` with exactly ``fractional_digits`` decimals (1..17), as GEODIST prints it.

    Redis scales in double arithmetic and rounds with ``llrint`` (half to even), so the
    product is rounded twice; Python floats reproduce both steps.
    """
    if not 1 <= fractional_digits <= 17:
        raise ValueError("fractional_digits must be between 1 and 17")
    if value == 0:
        return b"0." + b"0" * fractional_digits
    scaled = round(value * float(10**fractional_digits))
    units, fraction = divmod(abs(scaled), 10**fractional_digits)
    sign = b"-" if scaled < 0 else b""
    return b"%s%d.%0*d" % (sign, units, fractional_digits, fraction)


# --- sorted set score ranges ------------------------------------------------------------------

_C_SPACE = b" \t\n\v\f\r"


def parse_score_bound(text: bytes) -> tuple[float, bool] | None:
    """A ZRANGEBYSCORE / ZCOUNT / ZREMRANGEBYSCORE bound: ``(value, exclusive)`` or None.

    None is "min or max is not a float".  ``(`` makes the bound exclusive.  Redis parses
    these with a bare strtod (``zslParseRange``), looser than ``string2d``: leading
    whitespace is skipped, overflow gives ±inf and underflow 0, the empty text is 0, and
    the text ends at a NUL byte; only leftover text and NaN are rejected.
    """
    exclusive = text[:1] == b"("
    value = _strtod_to_end(text[1:] if exclusive else text)
    return None if value is None else (value, exclusive)


def _strtod_to_end(text: bytes) -> float | None:
    text = text.split(b"\0", 1)[0]  # C sees the string end there
    if not text:
        return 0.0  # no conversion, but the end pointer already sits on the terminator
    body = text.lstrip(_C_SPACE)
    parsed = _FLOAT_TEXT.fullmatch(body)
    if not body or parsed is None:
        return None
    if parsed["inf"]:
        return -math.inf if parsed["sign"] == b"-" else math.inf
    if parsed["int"] is not None:
        return None if not parsed["int"] and not parsed["frac"] else float(body)
    if not parsed["hexint"] and not parsed["hexfrac"]:
        return None
    try:
        return float.fromhex(body.decode())
    except OverflowError:
        return -math.inf if parsed["sign"] == b"-" else math.inf
