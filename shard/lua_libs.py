"""The libraries Redis preloads for scripts, backed by Python: ``bit``, ``cjson``,
``cmsgpack`` and ``struct`` (the common formats), plus Redis' ``lrand48`` for math.random.

Each function answers ``(True, values...)`` or ``(False, message)``; the Lua prelude
(``shard/lua_env.py``) turns the second form into a Lua error at the script's line, so a
Python exception never reaches Lua.
"""

from __future__ import annotations

import json
import math
import struct as pystruct
from collections.abc import Callable
from typing import Any

import msgpack

from shard.lua_env import LuaRuntime, lua_type

Result = tuple[Any, ...]


class Lrand48:
    """Redis' rand.c: the 48-bit linear congruential generator of lrand48(), so that
    math.random gives the same sequence as Redis for the same seed."""

    A = 0x5DEECE66D
    C = 0xB
    MASK = (1 << 48) - 1
    MAX = 2**31 - 1  # REDIS_LRAND48_MAX

    def __init__(self) -> None:
        self.x = 0x1234ABCD330E

    def seed(self, value: int) -> None:
        value &= 0xFFFFFFFF
        self.x = ((value >> 16) << 32) | ((value & 0xFFFF) << 16) | 0x330E

    def next(self) -> int:
        self.x = (self.A * self.x + self.C) & self.MASK
        return self.x >> 17

    def random(self) -> float:
        return (self.next() % self.MAX) / self.MAX


# --- bit (LuaBitOp semantics: 32-bit, signed results) ------------------------------------

def _tobit(value: Any) -> int:
    if type(value) is float:
        if math.isnan(value) or math.isinf(value):
            return 0
        value = int(math.floor(value + 0.5)) if value != int(value) else int(value)
    number = int(value) & 0xFFFFFFFF
    return number - (1 << 32) if number & 0x80000000 else number


def _numbers(args: tuple[Any, ...], name: str) -> list[int] | str:
    for i, arg in enumerate(args):
        if type(arg) not in (int, float):
            return f"bad argument #{i + 1} to '{name}' (number expected, got {_lua_type_name(arg)})"
    return [_tobit(a) for a in args]


def _lua_type_name(value: Any) -> str:
    if value is None:
        return "no value"
    if type(value) is bytes:
        return "string"
    if type(value) is bool:
        return "boolean"
    return lua_type(value) or "userdata"


def _bitop(name: str, fold: Callable[[int, int], int], minimum: int = 1) -> Callable[..., Result]:
    def op(*args: Any) -> Result:
        nums = _numbers(args if args else (None,), name)
        if isinstance(nums, str):
            return False, nums
        result = nums[0]
        for n in nums[1:]:
            result = fold(result, n)
        return True, _tobit(result)
    return op


def _shift(name: str, fn: Callable[[int, int], int]) -> Callable[..., Result]:
    def op(x: Any = None, n: Any = None) -> Result:
        nums = _numbers((x, n), name)
        if isinstance(nums, str):
            return False, nums
        return True, _tobit(fn(nums[0] & 0xFFFFFFFF, nums[1] & 31))
    return op


def _tohex(x: Any = None, n: Any = 8) -> Result:
    nums = _numbers((x, n), "tohex")
    if isinstance(nums, str):
        return False, nums
    value, digits = nums[0] & 0xFFFFFFFF, nums[1]
    upper = digits < 0
    digits = min(abs(digits), 8)
    text = f"{value:08x}"[-digits:] if digits else ""
    return True, (text.upper() if upper else text).encode()


def bit_library() -> dict[bytes, Any]:
    def one(name: str, fn: Callable[[int], int]) -> Callable[..., Result]:
        def op(x: Any = None) -> Result:
            nums = _numbers((x,), name)
            return (False, nums) if isinstance(nums, str) else (True, _tobit(fn(nums[0])))
        return op

    return {
        b"tobit": one("tobit", lambda x: x),
        b"bnot": one("bnot", lambda x: ~x),
        b"bswap": one("bswap", lambda x: int.from_bytes((x & 0xFFFFFFFF).to_bytes(4, "little"), "big")),
        b"band": _bitop("band", lambda a, b: a & b),
        b"bor": _bitop("bor", lambda a, b: a | b),
        b"bxor": _bitop("bxor", lambda a, b: a ^ b),
        b"lshift": _shift("lshift", lambda x, n: x << n),
        b"rshift": _shift("rshift", lambda x, n: x >> n),
        b"arshift": _shift("arshift", lambda x, n: _tobit(x) >> n),
        b"rol": _shift("rol", lambda x, n: (x << n) | (x >> (32 - n))),
        b"ror": _shift("ror", lambda x, n: (x >> n) | (x << (32 - n))),
        b"tohex": _tohex,
    }


# --- cjson ----------------------------------------------------------------------------------

class JsonNull:
    """cjson.null: what JSON null decodes to (a Lua userdata, distinct from nil)."""


JSON_NULL = JsonNull()
_MAX_DEPTH = 1000


def _number_text(value: int | float) -> bytes:
    if type(value) is float and (math.isnan(value) or math.isinf(value)):
        raise ValueError("Cannot serialise number: must not be NaN or Inf")
    return b"%.14g" % value


_ESCAPES = {i: b"\\u%04x" % i for i in range(32)}
_ESCAPES.update({8: b"\\b", 9: b"\\t", 10: b"\\n", 12: b"\\f", 13: b"\\r", 34: b'\\"',
                 92: b"\\\\", 47: b"\\/"})


def _json_string(raw: bytes) -> bytes:
    return b'"' + b"".join(_ESCAPES.get(c, bytes((c,))) for c in raw) + b'"'


def _json_encode(value: Any, depth: int, out: list[bytes]) -> None:
    kind = type(value)
    if value is None or value is JSON_NULL:
        out.append(b"null")
    elif kind is bool:
        out.append(b"true" if value else b"false")
    elif kind is int or kind is float:
        out.append(_number_text(value))
    elif kind is bytes:
        out.append(_json_string(value))
    elif lua_type(value) == "table":
        if depth >= _MAX_DEPTH:
            raise ValueError(f"Cannot serialise, excessive nesting ({depth + 1})")
        items = list(value.items())
        keys = [k for k, _ in items]
        if items and all(type(k) in (int, float) and k >= 1 and k == int(k) for k in keys):
            size = int(max(keys))
            if size > len(items) * 2 and size > 10:
                raise ValueError("Cannot serialise table: excessively sparse array")
            out.append(b"[")
            for i in range(1, size + 1):
                if i > 1:
                    out.append(b",")
                _json_encode(value[i], depth + 1, out)
            out.append(b"]")
            return
        out.append(b"{")
        for n, (k, v) in enumerate(items):
            if type(k) in (int, float):
                k = _number_text(k)
            elif type(k) is not bytes:
                raise ValueError("Cannot serialise table: table key must be a number or string")
            out.append((b"," if n else b"") + _json_string(k) + b":")
            _json_encode(v, depth + 1, out)
        out.append(b"}")
    else:
        raise ValueError(f"Cannot serialise {_lua_type_name(value)}: type not supported")


def cjson_library(lua: LuaRuntime) -> dict[bytes, Any]:
    def encode(*args: Any) -> Result:
        if len(args) != 1:
            return False, "bad argument #1 to 'encode' (expected 1 argument)"
        out: list[bytes] = []
        try:
            _json_encode(args[0], 0, out)
        except ValueError as exc:
            return False, str(exc)
        return True, b"".join(out)

    def to_lua(value: Any) -> Any:
        if value is None:
            return JSON_NULL
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        if isinstance(value, list):
            return lua.table_from([to_lua(v) for v in value])
        if isinstance(value, dict):
            return lua.table_from({to_lua(k): to_lua(v) for k, v in value.items()})
        return value

    def decode(*args: Any) -> Result:
        if len(args) != 1 or type(args[0]) not in (bytes, int, float):
            return False, "bad argument #1 to 'decode' (string expected)"
        text = args[0] if type(args[0]) is bytes else _number_text(args[0])
        try:
            value = json.loads(text.decode("utf-8", "surrogateescape"),
                               parse_constant=lambda c: None)
        except (ValueError, RecursionError) as exc:
            position = getattr(exc, "pos", 0) + 1
            return False, f"Expected value but found invalid token at character {position}"
        return True, to_lua(value)

    return {b"encode": encode, b"decode": decode,
            b"encode_keep_buffer": lambda *a: (True, None),
            b"encode_max_depth": lambda *a: (True, _MAX_DEPTH),
            b"decode_max_depth": lambda *a: (True, _MAX_DEPTH),
            b"encode_number_precision": lambda *a: (True, 14),
            b"encode_sparse_array": lambda *a: (True, False, 2, 10),
            b"encode_invalid_numbers": lambda *a: (True, False),
            b"decode_invalid_numbers": lambda *a: (True, True)}


# --- cmsgpack -------------------------------------------------------------------------------

def _to_msgpack(value: Any, depth: int = 0) -> Any:
    if type(value) is float and value == int(value) and abs(value) < 2**63:
        return int(value)
    if lua_type(value) == "table":
        if depth >= 16:  # cmsgpack's LUACMSGPACK_MAX_NESTING: deeper tables become nil
            return None
        items = list(value.items())
        keys = [k for k, _ in items]
        if items and sorted(keys) == list(range(1, len(keys) + 1)):
            return [_to_msgpack(value[i], depth + 1) for i in range(1, len(keys) + 1)]
        return {_to_msgpack(k, depth + 1): _to_msgpack(v, depth + 1) for k, v in items}
    if value is JSON_NULL:
        return None
    return value


def cmsgpack_library(lua: LuaRuntime) -> dict[bytes, Any]:
    def pack(*args: Any) -> Result:
        if not args:
            return False, "MessagePack pack needs input."
        try:
            out = b"".join(msgpack.packb(_to_msgpack(a), use_bin_type=False) for a in args)
        except (TypeError, ValueError, OverflowError) as exc:
            return False, f"MessagePack pack failed: {exc}"
        return True, out

    def to_lua(value: Any) -> Any:
        if isinstance(value, list):
            return lua.table_from([to_lua(v) for v in value])
        if isinstance(value, dict):
            return lua.table_from({to_lua(k): to_lua(v) for k, v in value.items()})
        return value

    def unpack(data: Any = None, *rest: Any) -> Result:
        if type(data) is not bytes:
            return False, "MessagePack unpack needs a string."
        unpacker = msgpack.Unpacker(raw=True, strict_map_key=False)
        unpacker.feed(data)
        try:
            values = [to_lua(v) for v in unpacker]
        except (ValueError, msgpack.UnpackException) as exc:
            return False, f"Bad data format in input: {exc}"
        return (True, *values)

    return {b"pack": pack, b"unpack": unpack}


# --- struct (lua-struct's common formats) ------------------------------------------------

_STRUCT_CODES = {ord("b"): "b", ord("B"): "B", ord("h"): "h", ord("H"): "H", ord("l"): "q",
                 ord("L"): "Q", ord("T"): "Q", ord("f"): "f", ord("d"): "d"}
_INT_BY_SIZE = {1: "b", 2: "h", 4: "i", 8: "q"}


def _struct_format(fmt: bytes) -> list[tuple[str, int]]:
    """lua-struct's format as (kind, size) items: kinds are Python struct codes, ``<``/``>``
    for endianness, ``c`` (chars), ``z`` (zero-terminated), ``s`` (length-prefixed)."""
    items: list[tuple[str, int]] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        i += 1
        count = 0
        start = i
        while i < len(fmt) and 48 <= fmt[i] <= 57:
            i += 1
        if i > start:
            count = int(fmt[start:i])
        if c in (ord("<"), ord(">"), ord("=")):
            items.append(("<" if c != ord(">") else ">", 0))
        elif c == ord("!") or c == ord(" "):
            continue
        elif c in (ord("i"), ord("I")):
            code = _INT_BY_SIZE.get(count or 4)
            if code is None:
                raise ValueError(f"integral size {count} is larger than limit")
            items.append((code.upper() if c == ord("I") else code, 0))
        elif c in _STRUCT_CODES:
            items.append((_STRUCT_CODES[c], 0))
        elif c == ord("c"):
            items.append(("c", count or 1))
        elif c in (ord("z"), ord("x")):
            items.append((chr(c), 0))
        elif c == ord("s"):
            items.append(("s", count or 8))
        else:
            raise ValueError(f"invalid format option '{chr(c)}'")
    return items


def struct_library() -> dict[bytes, Any]:
    def pack(fmt: Any = None, *args: Any) -> Result:
        if type(fmt) is not bytes:
            return False, "bad argument #1 to 'pack' (string expected)"
        try:
            order, out, values = "<", [], list(args)
            for kind, size in _struct_format(fmt):
                if kind in "<>":
                    order = kind
                elif kind == "x":
                    out.append(b"\0")
                elif kind == "c":
                    out.append(bytes(values.pop(0))[:size].ljust(size, b"\0"))
                elif kind == "z":
                    out.append(bytes(values.pop(0)) + b"\0")
                elif kind == "s":
                    data = bytes(values.pop(0))
                    out.append(pystruct.pack(order + _INT_BY_SIZE[size].upper(), len(data)) + data)
                else:
                    value = values.pop(0)
                    number = value if kind in "fd" else int(value)
                    if kind not in "fd":
                        bits = pystruct.calcsize(kind) * 8
                        number &= (1 << bits) - 1
                        kind = kind.upper()
                    out.append(pystruct.pack(order + kind, number))
        except (ValueError, TypeError, IndexError, pystruct.error) as exc:
            return False, str(exc)
        return True, b"".join(out)

    def unpack(fmt: Any = None, data: Any = None, pos: Any = 1) -> Result:
        if type(fmt) is not bytes or type(data) is not bytes:
            return False, "bad argument to 'unpack' (string expected)"
        try:
            order, offset, out = "<", int(pos) - 1, []
            for kind, size in _struct_format(fmt):
                if kind in "<>":
                    order = kind
                elif kind == "x":
                    offset += 1
                elif kind == "c":
                    out.append(data[offset:offset + size])
                    offset += size
                elif kind == "z":
                    end = data.index(b"\0", offset)
                    out.append(data[offset:end])
                    offset = end + 1
                elif kind == "s":
                    code = order + _INT_BY_SIZE[size].upper()
                    (length,) = pystruct.unpack_from(code, data, offset)
                    offset += size
                    out.append(data[offset:offset + length])
                    offset += length
                else:
                    (value,) = pystruct.unpack_from(order + kind, data, offset)
                    out.append(value)
                    offset += pystruct.calcsize(kind)
        except (ValueError, TypeError, pystruct.error) as exc:
            return False, f"data string too short ({exc})"
        return (True, *out, offset + 1)

    def size(fmt: Any = None) -> Result:
        if type(fmt) is not bytes:
            return False, "bad argument #1 to 'size' (string expected)"
        try:
            total = 0
            for kind, length in _struct_format(fmt):
                if kind in "<>":
                    continue
                if kind in "zs":
                    return False, "options 'z' and 's' have no fixed size"
                total += length if kind == "c" else 1 if kind == "x" else pystruct.calcsize(kind)
        except ValueError as exc:
            return False, str(exc)
        return True, total

    return {b"pack": pack, b"unpack": unpack, b"size": size}
