"""Atoll's configuration: redis.conf files, redis-server's command line, CONFIG GET and SET.

Every directive is declared once in ``DIRECTIVES`` (name, codec, default, mutability, aliases);
everything else reads that table.  Behaviour follows redis-server 7.0.15 as observed:

* A file holds one directive per line; lines are trimmed, ``#`` starts a comment only at the
  start of a line, arguments are split like Redis' ``sdssplitargs`` (``split_args`` here).
  ``include PATH`` (relative to the working directory, glob patterns allowed) loads another
  file in place, with its own line numbers in error messages.
* The command line ``[config-file] [--directive value ...]`` becomes extra lines appended to
  the file's text, exactly as redis-server builds them, so line numbers and error texts match.
* Later lines win, except ``save``: the first ``save`` line replaces the default points and
  later ones (the command line included) add to them; ``save ""`` clears them.
* CONFIG SET checks every name first (unknown, immutable, protected, duplicate), then parses
  every value, and only then stores them all: a failing call changes nothing.

Values are text in which each character stands for one byte (latin-1), as the gateway decodes
client arguments, so whatever bytes a file or client gave come back unchanged from CONFIG GET.
"""

from __future__ import annotations

import copy
import errno
import glob
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shard.glob import stringmatch

REDIS_VERSION = "7.0.15"
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
UINT_MAX = 2**32 - 1
LLONG_MIN, LLONG_MAX = -(2**63), 2**63 - 1
ULLONG_MAX = 2**64 - 1
KB, MB, GB = 1024, 1024**2, 1024**3

# --- error texts, worded exactly as redis-server 7.0.15 prints them ------------------------

BAD_DIRECTIVE = "Bad directive or wrong number of arguments"
WRONG_ARGS = "wrong number of arguments"
UNBALANCED = "Unbalanced quotes in configuration line"
NOT_BOOL = "argument must be 'yes' or 'no'"
NOT_INTEGER = "argument couldn't be parsed into an integer"
NOT_OCTAL = "argument couldn't be parsed as an octal number"
NOT_MEMORY = "argument must be a memory value"
NOT_MEMORY_OR_PERCENT = "argument must be a memory or percent value"
PERCENT_TOO_BIG = "percentage argument must be less or equal to 100"
ENUM_CHOICES = "argument(s) must be one of the following: "
BAD_SAVE = "Invalid save parameters"
TOO_MANY_BINDS = "Too many bind addresses specified."
BAD_BUFFER_CLASS = "Invalid client class specified in buffer limit configuration."
BAD_BUFFER_ARGS = "Wrong number of arguments in buffer limit configuration."
BAD_BUFFER_VALUE = "Error in hard, soft or soft_seconds setting in buffer limit configuration."
BAD_OOM_VALUES = "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
BAD_PERCENTILES = "Invalid latency-tracking-info-percentiles parameters"
PERCENTILES_RANGE = "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
BAD_EVENTS = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
BAD_MASTER_PORT = "Invalid master port"
SAVE_AND_NOSAVE = "shutdown options SAVE and NOSAVE can't be used simultaneously"
BAD_TITLE = "template format is invalid or contains unknown variables"
BAD_HOSTNAME = "Hostnames may only contain alphanumeric characters, hyphens or dots"
NOT_IN_SENTINEL = "sentinel directive while not in sentinel mode"
IMMUTABLE = "can't set immutable config"
PROTECTED = "can't set protected config"
DUPLICATE = "duplicate parameter"
UNKNOWN_OPTION = "ERR Unknown option or number of arguments for CONFIG SET - '{}'"
SET_FAILED = "ERR CONFIG SET failed (possibly related to argument '{}') - {}"
INCLUDE_TOO_DEEP = "Too many nested include directives"  # Atoll only: Redis recurses until it dies
CANT_OPEN = "Fatal error, can't open config file '{}': {}"
FATAL = (
    f"*** FATAL CONFIG FILE ERROR (Atoll {REDIS_VERSION}) ***\n"
    "Reading the configuration file, at line {}\n>>> '{}'\n{}"
)


class ConfigError(Exception):
    """A configuration error; ``str(e)`` is the whole message (multi-line at start-up)."""


class Invalid(Exception):
    """A value a codec rejects; ``reason`` is Redis' wording."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- argument splitting and quoting -----------------------------------------------------------

_SPACE = " \t\n\r\v\f"
_TOKEN_END = " \n\r\t\0"
_HEX = "0123456789abcdefABCDEF"
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a"}
_REPR = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a", "\b": "\\b"}


def split_args(line: str) -> list[str]:
    """Split a line into arguments as Redis' sdssplitargs; ValueError on unbalanced quotes."""
    args: list[str] = []
    pos = 0
    while True:
        while pos < len(line) and line[pos] in _SPACE:
            pos += 1
        if pos >= len(line):
            return args
        arg, pos = _read_arg(line, pos)
        args.append(arg)


def _read_arg(line: str, pos: int) -> tuple[str, int]:
    out: list[str] = []
    while pos < len(line) and line[pos] not in _TOKEN_END:
        if line[pos] == '"':
            return _read_quoted(line, pos + 1, out, _double_quoted_char)
        if line[pos] == "'":
            return _read_quoted(line, pos + 1, out, _single_quoted_char)
        out.append(line[pos])
        pos += 1
    return "".join(out), pos


def _read_quoted(
    line: str, pos: int, out: list[str], read_char: Callable[[str, int], tuple[str, int]]
) -> tuple[str, int]:
    quote = line[pos - 1]
    while pos < len(line):
        if line[pos] == quote:
            # A closing quote must end the argument: `"a"b` is an error, not `ab`.
            if pos + 1 < len(line) and line[pos + 1] not in _SPACE:
                raise ValueError(UNBALANCED)
            return "".join(out), pos + 1
        char, pos = read_char(line, pos)
        out.append(char)
    raise ValueError(UNBALANCED)


def _double_quoted_char(line: str, pos: int) -> tuple[str, int]:
    if line[pos] != "\\" or pos + 1 >= len(line):
        return line[pos], pos + 1
    code = line[pos + 2 : pos + 4]
    if line[pos + 1] == "x" and len(code) == 2 and all(c in _HEX for c in code):
        return chr(int(code, 16)), pos + 4
    return _ESCAPES.get(line[pos + 1], line[pos + 1]), pos + 2


def _single_quoted_char(line: str, pos: int) -> tuple[str, int]:
    if line.startswith("\\'", pos):
        return "'", pos + 2
    return line[pos], pos + 1


def quote_arg(arg: str) -> str:
    """Quote an argument as Redis' sdscatrepr does; ``split_args`` reads it back unchanged."""
    parts = ['"']
    for char in arg:
        if char in _REPR:
            parts.append(_REPR[char])
        elif " " <= char <= "~":
            parts.append(char)
        else:
            parts.append(f"\\x{ord(char) & 0xFF:02x}")
    parts.append('"')
    return "".join(parts)


# --- numbers as Redis reads them -------------------------------------------------------------

_STRICT_INT = re.compile(r"0|-?[1-9][0-9]*")
_C_INT = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")
_MEMORY = re.compile(r"([0-9]*)(b|k|kb|m|mb|g|gb)?", re.IGNORECASE | re.ASCII)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": KB, "m": 1000**2, "mb": MB, "g": 1000**3, "gb": GB}


def parse_strict_int(text: str) -> int | None:
    """A signed 64-bit integer with no sign, space or leading zero tricks (string2ll)."""
    if len(text) > 20 or not _STRICT_INT.fullmatch(text):
        return None
    value = int(text)
    return value if LLONG_MIN <= value <= LLONG_MAX else None


def parse_c_int(text: str, saturate: bool = True) -> int | None:
    """An integer as C's strtoll reads a whole string: blanks and a sign allowed.

    Out of range it saturates as strtoll does, or is rejected when the caller checks errno.
    """
    if not _C_INT.fullmatch(text):
        return None
    digits = text.strip(_SPACE).lstrip("+-").lstrip("0")
    value = int(text) if len(digits) <= 19 else (-1 if "-" in text else 1) * 2**64
    if LLONG_MIN <= value <= LLONG_MAX:
        return value
    return None if not saturate else LLONG_MIN if value < 0 else LLONG_MAX


def _c_ints(args: list[str], reason: str) -> list[int]:
    values: list[int] = []
    for arg in args:
        value = parse_c_int(arg)
        if value is None:
            raise Invalid(reason)
        values.append(value)
    return values


def parse_memory(text: str) -> int | None:
    """A byte count with an optional unit (1k=1000, 1kb=1024 ...), wrapping at 2**64 as Redis."""
    match = _MEMORY.fullmatch(text)
    if match is None:
        return None
    digits = match.group(1).lstrip("0")
    number = ULLONG_MAX if len(digits) > 20 else min(int(digits or "0"), ULLONG_MAX)
    return number * _UNITS[(match.group(2) or "").lower()] % 2**64


def _c_double(text: str) -> float | None:
    """A number as C's strtod reads a whole string (decimal, hex, inf); None if not one."""
    body = text.lstrip(_SPACE)
    unsigned = body.lstrip("+-")
    if len(body) - len(unsigned) > 1:
        return None
    if unsigned.lower() in ("inf", "infinity"):
        return float("-inf") if body.startswith("-") else float("inf")
    try:
        if unsigned[:2].lower() == "0x":
            return float.fromhex(body)
        if re.fullmatch(r"([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", unsigned):
            return float(body)
    except (ValueError, OverflowError):
        return None
    return None


# --- codecs: parse arguments into a value, format a value as CONFIG GET shows it -------------


class Codec:
    """How one kind of directive reads its arguments and shows its value."""

    multi_arg = False  # takes several arguments; one argument holding spaces is split

    def parse(self, args: list[str], current: Any) -> Any:
        if len(args) != 1:
            raise Invalid(WRONG_ARGS)
        return self.parse_one(args[0])

    def parse_one(self, text: str) -> Any:
        raise NotImplementedError

    def format(self, value: Any) -> str:
        return str(value)

    def restore(self, plain: Any) -> Any:
        """Undo ``_plain`` (tuples sent as lists) for a value coming from ``to_dict``."""
        return plain


class BoolCodec(Codec):
    def parse_one(self, text: str) -> bool:
        lowered = text.lower()
        if lowered not in ("yes", "no"):
            raise Invalid(NOT_BOOL)
        return lowered == "yes"

    def format(self, value: Any) -> str:
        return "yes" if value else "no"


@dataclass(frozen=True)
class IntCodec(Codec):
    low: int
    high: int
    memory: bool = False  # accepts units (1k, 1mb ...)
    percent: bool = False  # also accepts "N%", stored as -N (Redis' own convention)
    clamp: tuple[int, int] | None = None  # accepted, then silently brought into this range

    def parse_one(self, text: str) -> int:
        if self.percent:
            return self._memory_or_percent(text)
        value = parse_memory(text) if self.memory else parse_strict_int(text)
        if value is None:
            raise Invalid(NOT_MEMORY if self.memory else NOT_INTEGER)
        if not self.low <= value <= self.high:
            raise Invalid(f"argument must be between {self.low} and {self.high} inclusive")
        return value if self.clamp is None else max(self.clamp[0], min(self.clamp[1], value))

    def _memory_or_percent(self, text: str) -> int:
        if text.endswith("%"):
            number = parse_strict_int(text[:-1])
            if number is None or number < 0:
                raise Invalid(NOT_MEMORY_OR_PERCENT)
            value = -number
        else:
            unsigned = parse_memory(text)
            if unsigned is None:
                raise Invalid(NOT_MEMORY_OR_PERCENT)
            value = unsigned - 2**64 if unsigned > LLONG_MAX else unsigned
        if value < -100:
            raise Invalid(PERCENT_TOO_BIG)
        return value

    def format(self, value: Any) -> str:
        return f"{-value}%" if self.percent and value < 0 else str(value)


@dataclass(frozen=True)
class OctalCodec(Codec):
    high: int

    def parse_one(self, text: str) -> int:
        if not re.fullmatch(r"[ \t\n\v\f\r]*([+-]?[0-7]+)?", text):
            raise Invalid(NOT_OCTAL)
        value = int(text, 8) if text.strip(_SPACE) else 0
        if not 0 <= value <= self.high:
            raise Invalid(f"argument must be between 0 and {self.high:o} inclusive")
        return value

    def format(self, value: Any) -> str:
        return f"{value:o}"


@dataclass(frozen=True)
class EnumCodec(Codec):
    choices: tuple[str, ...]
    synonyms: tuple[tuple[str, str], ...] = ()  # (accepted word, word shown instead)

    def parse_one(self, text: str) -> str:
        lowered = text.lower()
        if lowered not in self.choices:
            raise Invalid(ENUM_CHOICES + ", ".join(self.choices))
        return dict(self.synonyms).get(lowered, lowered)


class ShutdownFlagsCodec(Codec):
    """shutdown-on-sigint / -sigterm: any of save, nosave, now, force; "default" is none."""

    multi_arg = True
    choices = ("default", "save", "nosave", "now", "force")

    def parse(self, args: list[str], current: Any) -> str:
        words = {arg.lower() for arg in args}
        if not args or not words <= set(self.choices):
            raise Invalid(ENUM_CHOICES + ", ".join(self.choices))
        if {"save", "nosave"} <= words:
            raise Invalid(SAVE_AND_NOSAVE)
        return " ".join(w for w in self.choices[1:] if w in words) or "default"


@dataclass(frozen=True)
class StringCodec(Codec):
    check: Callable[[str], str | None] | None = None  # returns Redis' complaint, if any

    def parse_one(self, text: str) -> str:
        reason = self.check(text) if self.check else None
        if reason:
            raise Invalid(reason)
        return text


class DirCodec(Codec):
    """Kept absolute, as Redis shows its working directory; the server creates it later."""

    def parse_one(self, text: str) -> str:
        if not text:
            raise Invalid(os.strerror(errno.ENOENT))
        return os.path.abspath(text)


class SaveCodec(Codec):
    """Snapshot points "seconds changes ...", a list of (seconds, changes)."""

    multi_arg = True

    def parse(self, args: list[str], current: Any) -> list[tuple[int, int]]:
        if args == [""]:
            return []
        numbers = _c_ints(args, BAD_SAVE)
        points = list(zip(numbers[::2], numbers[1::2], strict=False))
        if len(args) % 2 or any(seconds < 1 or changes < 0 for seconds, changes in points):
            raise Invalid(BAD_SAVE)
        # Redis keeps the change count in a C int.
        return [(seconds, (changes + 2**31) % 2**32 - 2**31) for seconds, changes in points]

    def format(self, value: Any) -> str:
        return " ".join(f"{seconds} {changes}" for seconds, changes in value)

    def restore(self, plain: Any) -> Any:
        return [tuple(point) for point in plain]


class BindCodec(Codec):
    multi_arg = True

    def parse(self, args: list[str], current: Any) -> list[str]:
        if len(args) > 16:
            raise Invalid(TOO_MANY_BINDS)
        return list(args)

    def format(self, value: Any) -> str:
        return " ".join(value)


class BufferLimitCodec(Codec):
    """client-output-buffer-limit: {class: (hard, soft, soft_seconds)}; lines update classes."""

    multi_arg = True
    classes = {"normal": "normal", "slave": "slave", "replica": "slave", "pubsub": "pubsub"}

    def parse(self, args: list[str], current: Any) -> dict[str, tuple[int, int, int]]:
        if len(args) % 4:
            raise Invalid(BAD_BUFFER_ARGS)
        limits = dict(current)
        for at in range(0, len(args), 4):
            name = self.classes.get(args[at].lower())
            if name is None:
                raise Invalid(BAD_BUFFER_CLASS)
            limits[name] = self._limit(args[at + 1 : at + 4])
        return limits

    @staticmethod
    def _limit(args: list[str]) -> tuple[int, int, int]:
        hard, soft = parse_memory(args[0]), parse_memory(args[1])
        seconds = parse_c_int(args[2], saturate=False)
        if hard is None or soft is None or seconds is None or seconds < 0:
            raise Invalid(BAD_BUFFER_VALUE)
        return hard, soft, seconds

    def format(self, value: Any) -> str:
        return " ".join(f"{name} {' '.join(map(str, value[name]))}" for name in value)

    def restore(self, plain: Any) -> Any:
        return {name: tuple(limit) for name, limit in plain.items()}


class OomValuesCodec(Codec):
    multi_arg = True

    def parse(self, args: list[str], current: Any) -> list[int]:
        if len(args) != 3:
            raise Invalid(WRONG_ARGS)
        values = _c_ints(args, BAD_OOM_VALUES)
        if any(not -2000 <= value <= 2000 for value in values):
            raise Invalid(BAD_OOM_VALUES)
        return values

    def format(self, value: Any) -> str:
        return " ".join(map(str, value))


class PercentilesCodec(Codec):
    multi_arg = True

    def parse(self, args: list[str], current: Any) -> list[float]:
        values: list[float] = []
        for arg in args:
            value = _c_double(arg)
            if value is None or value != value:  # value != value: NaN
                raise Invalid(BAD_PERCENTILES)
            values.append(value)
        if any(not 0.0 <= value <= 100.0 for value in values):
            raise Invalid(PERCENTILES_RANGE)
        return values

    def format(self, value: Any) -> str:
        return " ".join(f"{v:f}".rstrip("0").rstrip(".") for v in value)


class NotifyCodec(Codec):
    """notify-keyspace-events, stored as its class letters in ``LETTERS`` order, "A" expanded."""

    ALL = "g$lshzxetd"  # what "A" stands for
    LETTERS = ALL + "nKEm"

    def parse_one(self, text: str) -> str:
        if any(char not in self.LETTERS + "A" for char in text):
            raise Invalid(BAD_EVENTS)
        chosen = set(text.replace("A", self.ALL))
        return "".join(char for char in self.LETTERS if char in chosen)

    def format(self, value: Any) -> str:
        # Redis writes "A" for the whole set and then, oddly, never shows "n" beside it.
        if set(self.ALL) <= set(value):
            return "A" + "".join(char for char in "KEm" if char in value)
        return "".join(char for char in self.LETTERS if char in value)


class ReplicaofCodec(Codec):
    """replicaof: "host port", or "" for none (``replicaof no one``)."""

    multi_arg = True

    def parse(self, args: list[str], current: Any) -> str:
        if len(args) != 2:
            raise Invalid(WRONG_ARGS)
        if [arg.lower() for arg in args] == ["no", "one"]:
            return ""
        port = 0 if not args[1].strip(_SPACE) else parse_c_int(args[1])
        if port is None or not 0 <= port <= 65535:
            raise Invalid(BAD_MASTER_PORT)
        return f"{args[0]} {port}"


# --- string checks -----------------------------------------------------------------------------


def _base_name(what: str, kind: str, allow_empty: bool = True) -> Callable[[str], str | None]:
    def check(text: str) -> str | None:
        if not text and not allow_empty:
            return f"{what} can't be empty"
        if "/" in text or "\\" in text:
            return f"{what} can't be a path, just a {kind}"
        return None

    return check


_TITLE_SAMPLES = {  # what each variable may expand to; empty ones can leave a blank title
    "title": "",
    "listen-addr": "*:6379",
    "server-mode": "",
    "port": "6379",
    "tls-port": "0",
    "unixsocket": "",
    "config-file": "atoll.conf",
}


def _check_proc_title(template: str) -> str | None:
    out: list[str] = []
    pos = 0
    while pos < len(template):
        if template[pos] != "{" or template.startswith("{{", pos):
            out.append(template[pos])
            pos += 2 if template.startswith("{{", pos) else 1
            continue
        end = template.find("}", pos)
        if end < 0 or template[pos + 1 : end] not in _TITLE_SAMPLES:
            return BAD_TITLE
        out.append(_TITLE_SAMPLES[template[pos + 1 : end]])
        pos = end + 1
    return None if "".join(out).strip(" ") else BAD_TITLE


def _check_hostname(text: str) -> str | None:
    ok = all(char.isascii() and (char.isalnum() or char in "-.") for char in text)
    return None if ok else BAD_HOSTNAME


# --- the directive table -----------------------------------------------------------------------


@dataclass(frozen=True)
class Directive:
    name: str
    codec: Codec
    default: str  # as CONFIG GET shows it
    mutable: bool = True
    aliases: tuple[str, ...] = ()
    hidden: bool = False  # answered by exact name only, never by a glob (debug knobs)
    protected: bool = False  # CONFIG SET needs enable-protected-configs


BOOL = BoolCodec()
STRING = StringCodec()
Flags = dict[str, Any]
Check = Callable[[str], str | None]  # a string directive's complaint about a value, if any


def _make(name: str, codec: Codec, default: str, aka: str = "", **flags: Any) -> Directive:
    return Directive(name, codec, default, aliases=(aka,) if aka else (), **flags)


def _bool(name: str, default: bool, **flags: Any) -> Directive:
    return _make(name, BOOL, "yes" if default else "no", **flags)


def _int(name: str, default: int, low: int, high: int, **flags: Any) -> Directive:
    return _make(name, IntCodec(low, high), str(default), **flags)


def _mem(name: str, default: int, low: int, high: int, **flags: Any) -> Directive:
    return _make(name, IntCodec(low, high, memory=True), str(default), **flags)


def _enum(name: str, default: str, choices: str, **flags: Any) -> Directive:
    return _make(name, EnumCodec(tuple(choices.split())), default, **flags)


def _str(name: str, default: str = "", check: Check | None = None, **flags: Any) -> Directive:
    return _make(name, StringCodec(check) if check else STRING, default, **flags)


FIXED: Flags = {"mutable": False}  # only a file or the command line may set these
EVICTION = (
    "volatile-lru volatile-lfu volatile-random volatile-ttl"
    " allkeys-lru allkeys-lfu allkeys-random noeviction"
)
SHUTDOWN = ShutdownFlagsCodec()
AOF_NAME_CHECK = _base_name("appendfilename", "filename", allow_empty=False)
AOF_DIR_CHECK = _base_name("appenddirname", "dirname", allow_empty=False)
BUFFER_LIMITS = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
OOM_ADJ = ("no", "yes", "relative", "absolute")  # "relative" is shown as "yes"

DIRECTIVES: tuple[Directive, ...] = (
    # network
    _int("port", 6379, 0, 65535),
    Directive("bind", BindCodec(), "127.0.0.1 -::1"),
    _str("bind-source-addr"),
    _bool("protected-mode", True),
    _int("tcp-backlog", 511, 0, INT_MAX, **FIXED),
    _int("tcp-keepalive", 300, 0, INT_MAX),
    _int("timeout", 0, 0, INT_MAX),
    _int("socket-mark-id", 0, 0, UINT_MAX, **FIXED),
    _str("unixsocket", **FIXED),
    Directive("unixsocketperm", OctalCodec(0o777), "0", **FIXED),
    _int("maxclients", 10000, 1, UINT_MAX),
    _int("io-threads", 1, 1, 128, **FIXED),
    _bool("io-threads-do-reads", False, **FIXED),
    # Atoll's own process layout (0 shards: one per CPU, decided by the server)
    # (hidden from CONFIG GET patterns, so CONFIG GET * lists what Redis lists)
    _int("shards", 0, 0, 1024, hidden=True, **FIXED),
    _int("gateways", 1, 1, 64, hidden=True, **FIXED),
    # the control protocol on tcp:// with CURVE (server/control_tcp.py, docs/CONTROL.md)
    _str("control-bind", hidden=True, **FIXED),
    _str("control-curve-secret-key-file", hidden=True, **FIXED),
    _str("control-curve-authorized-keys", hidden=True, **FIXED),
    # process and logging
    _bool("daemonize", False, **FIXED),
    _enum("supervised", "no", "upstart systemd auto no", **FIXED),
    _str("pidfile", **FIXED),
    _enum("loglevel", "notice", "debug verbose notice warning"),
    _str("logfile", **FIXED),
    _bool("syslog-enabled", False, **FIXED),
    _str("syslog-ident", "redis", **FIXED),
    _enum("syslog-facility", "local0", "user " + " ".join(f"local{i}" for i in range(8)), **FIXED),
    _bool("crash-log-enabled", True),
    _bool("crash-memcheck-enabled", True),
    _bool("always-show-logo", False, **FIXED),
    _bool("set-proc-title", True, **FIXED),
    _str("proc-title-template", "{title} {listen-addr} {server-mode}", _check_proc_title),
    _str("ignore-warnings"),
    _int("databases", 16, 1, INT_MAX, **FIXED),
    Directive("hz", IntCodec(0, INT_MAX, clamp=(1, 500)), "10"),  # Redis keeps hz in 1..500
    _bool("dynamic-hz", True),
    _bool("disable-thp", True, **FIXED),
    _bool("jemalloc-bg-thread", True),
    _str("server_cpulist", **FIXED),
    _str("bio_cpulist", **FIXED),
    _str("aof_rewrite_cpulist", **FIXED),
    _str("bgsave_cpulist", **FIXED),
    Directive("oom-score-adj", EnumCodec(OOM_ADJ, (("relative", "yes"),)), "no"),
    Directive("oom-score-adj-values", OomValuesCodec(), "0 200 800"),
    _enum("enable-protected-configs", "no", "no yes local", **FIXED),
    _enum("enable-debug-command", "no", "no yes local", **FIXED),
    _enum("enable-module-command", "no", "no yes local", **FIXED),
    Directive("shutdown-on-sigint", SHUTDOWN, "default"),
    Directive("shutdown-on-sigterm", SHUTDOWN, "default"),
    _int("shutdown-timeout", 10, 0, INT_MAX),
    # snapshots
    Directive("save", SaveCodec(), "3600 1 300 100 60 10000"),
    _bool("stop-writes-on-bgsave-error", True),
    _bool("rdbcompression", True),
    _bool("rdbchecksum", True, **FIXED),
    _str("dbfilename", "dump.rdb", _base_name("dbfilename", "filename"), protected=True),
    _bool("rdb-del-sync-files", False),
    _bool("rdb-save-incremental-fsync", True),
    _enum("sanitize-dump-payload", "no", "no yes clients"),
    Directive("dir", DirCodec(), "./data", protected=True),
    # append only file
    _bool("appendonly", False),
    _str("appendfilename", "appendonly.aof", AOF_NAME_CHECK, **FIXED),
    _str("appenddirname", "appendonlydir", AOF_DIR_CHECK, **FIXED),
    _enum("appendfsync", "everysec", "everysec always no"),
    _bool("no-appendfsync-on-rewrite", False),
    _int("auto-aof-rewrite-percentage", 100, 0, INT_MAX),
    _mem("auto-aof-rewrite-min-size", 64 * MB, 0, LLONG_MAX),
    _bool("aof-load-truncated", True),
    _bool("aof-use-rdb-preamble", True),
    _bool("aof-rewrite-incremental-fsync", True),
    _bool("aof-timestamp-enabled", False),
    _bool("aof-disable-auto-gc", False),
    # security
    _str("requirepass"),
    _str("aclfile", **FIXED),
    _int("acllog-max-len", 128, 0, LLONG_MAX),
    _enum("acl-pubsub-default", "resetchannels", "allchannels resetchannels"),
    # memory
    _mem("maxmemory", 0, 0, ULLONG_MAX),
    _enum("maxmemory-policy", "noeviction", EVICTION),
    _int("maxmemory-samples", 5, 1, INT_MAX),
    _int("maxmemory-eviction-tenacity", 10, 0, 100),
    Directive("maxmemory-clients", IntCodec(LLONG_MIN, LLONG_MAX, percent=True), "0"),
    _bool("lazyfree-lazy-eviction", False),
    _bool("lazyfree-lazy-expire", False),
    _bool("lazyfree-lazy-server-del", False),
    _bool("lazyfree-lazy-user-del", False),
    _bool("lazyfree-lazy-user-flush", False),
    _bool("activerehashing", True),
    _bool("activedefrag", False),
    _mem("active-defrag-ignore-bytes", 100 * MB, 1, LLONG_MAX),
    _int("active-defrag-threshold-lower", 10, 0, 1000),
    _int("active-defrag-threshold-upper", 100, 0, 1000),
    _int("active-defrag-cycle-min", 1, 1, 99),
    _int("active-defrag-cycle-max", 25, 1, 99),
    _int("active-defrag-max-scan-fields", 1000, 1, LLONG_MAX),
    _int("active-expire-effort", 1, 1, 10),
    _int("lfu-log-factor", 10, 0, INT_MAX),
    _int("lfu-decay-time", 1, 0, INT_MAX),
    # clients and protocol
    Directive("client-output-buffer-limit", BufferLimitCodec(), BUFFER_LIMITS),
    _mem("client-query-buffer-limit", GB, MB, LLONG_MAX),
    _mem("proto-max-bulk-len", 512 * MB, MB, LLONG_MAX),
    _int("tracking-table-max-keys", 1000000, 0, LLONG_MAX),
    _int("busy-reply-threshold", 5000, 0, LLONG_MAX, aka="lua-time-limit"),
    # encodings
    _int("hash-max-listpack-entries", 512, 0, LLONG_MAX, aka="hash-max-ziplist-entries"),
    _mem("hash-max-listpack-value", 64, 0, LLONG_MAX, aka="hash-max-ziplist-value"),
    _int("list-max-listpack-size", -2, INT_MIN, INT_MAX, aka="list-max-ziplist-size"),
    _int("list-compress-depth", 0, 0, INT_MAX),
    _int("set-max-intset-entries", 512, 0, LLONG_MAX),
    _int("zset-max-listpack-entries", 128, 0, LLONG_MAX, aka="zset-max-ziplist-entries"),
    _mem("zset-max-listpack-value", 64, 0, LLONG_MAX, aka="zset-max-ziplist-value"),
    _mem("hll-sparse-max-bytes", 3000, 0, LLONG_MAX),
    _mem("stream-node-max-bytes", 4096, 0, LLONG_MAX),
    _int("stream-node-max-entries", 100, 0, LLONG_MAX),
    # monitoring
    _int("slowlog-log-slower-than", 10000, -1, LLONG_MAX),
    _int("slowlog-max-len", 128, 0, LLONG_MAX),
    _int("latency-monitor-threshold", 0, 0, LLONG_MAX),
    _bool("latency-tracking", True),
    Directive("latency-tracking-info-percentiles", PercentilesCodec(), "50 99 99.9"),
    Directive("notify-keyspace-events", NotifyCodec(), ""),
    # replication
    _make("replicaof", ReplicaofCodec(), "", aka="slaveof", **FIXED),
    _str("masterauth"),
    _str("masteruser"),
    _bool("replica-serve-stale-data", True, aka="slave-serve-stale-data"),
    _bool("replica-read-only", True, aka="slave-read-only"),
    _bool("replica-ignore-maxmemory", True, aka="slave-ignore-maxmemory"),
    _bool("replica-lazy-flush", False, aka="slave-lazy-flush"),
    _int("replica-priority", 100, 0, INT_MAX, aka="slave-priority"),
    _str("replica-announce-ip", aka="slave-announce-ip"),
    _int("replica-announce-port", 0, 0, 65535, aka="slave-announce-port"),
    _bool("replica-announced", True),
    _bool("replica-ignore-disk-write-errors", False),
    _int("repl-ping-replica-period", 10, 1, INT_MAX, aka="repl-ping-slave-period"),
    _int("repl-timeout", 60, 1, INT_MAX),
    _bool("repl-disable-tcp-nodelay", False),
    _mem("repl-backlog-size", MB, 1, LLONG_MAX),
    _int("repl-backlog-ttl", 3600, 0, LLONG_MAX),
    _bool("repl-diskless-sync", True),
    _int("repl-diskless-sync-delay", 5, 0, INT_MAX),
    _int("repl-diskless-sync-max-replicas", 0, 0, INT_MAX),
    _enum("repl-diskless-load", "disabled", "disabled on-empty-db swapdb"),
    _int("min-replicas-to-write", 0, 0, INT_MAX, aka="min-slaves-to-write"),
    _int("min-replicas-max-lag", 10, 0, INT_MAX, aka="min-slaves-max-lag"),
    _enum("propagation-error-behavior", "ignore", "ignore panic panic-on-replicas"),
    # cluster
    _bool("cluster-enabled", False, **FIXED),
    _str("cluster-config-file", "nodes.conf", **FIXED),
    _int("cluster-node-timeout", 15000, 0, LLONG_MAX),
    _int("cluster-port", 0, 0, 65535, **FIXED),
    _str("cluster-announce-ip"),
    _str("cluster-announce-hostname", check=_check_hostname),
    _int("cluster-announce-port", 0, 0, 65535),
    _int("cluster-announce-bus-port", 0, 0, 65535),
    _int("cluster-announce-tls-port", 0, 0, 65535),
    _enum("cluster-preferred-endpoint-type", "ip", "ip hostname unknown-endpoint"),
    _int("cluster-replica-validity-factor", 10, 0, INT_MAX, aka="cluster-slave-validity-factor"),
    _int("cluster-migration-barrier", 1, 0, INT_MAX),
    _bool("cluster-allow-replica-migration", True),
    _bool("cluster-require-full-coverage", True),
    _bool("cluster-replica-no-failover", False, aka="cluster-slave-no-failover"),
    _bool("cluster-allow-reads-when-down", False),
    _bool("cluster-allow-pubsubshard-when-down", True),
    _mem("cluster-link-sendbuf-limit", 0, 0, ULLONG_MAX),
    # TLS
    _int("tls-port", 0, 0, 65535),
    _str("tls-cert-file"),
    _str("tls-key-file"),
    _str("tls-key-file-pass"),
    _str("tls-client-cert-file"),
    _str("tls-client-key-file"),
    _str("tls-client-key-file-pass"),
    _str("tls-dh-params-file"),
    _str("tls-ca-cert-file"),
    _str("tls-ca-cert-dir"),
    _str("tls-protocols"),
    _str("tls-ciphers"),
    _str("tls-ciphersuites"),
    _enum("tls-auth-clients", "yes", "no yes optional"),
    _bool("tls-replication", False),
    _bool("tls-cluster", False),
    _bool("tls-prefer-server-ciphers", False),
    _bool("tls-session-caching", True),
    _int("tls-session-cache-size", 20480, 0, INT_MAX),
    _int("tls-session-cache-timeout", 300, 0, INT_MAX),
    # debugging knobs Redis answers by name but leaves out of CONFIG GET *
    _bool("use-exit-on-panic", False, hidden=True),
    _int("key-load-delay", 0, INT_MIN, INT_MAX, hidden=True),
    _int("rdb-key-save-delay", 0, INT_MIN, INT_MAX, hidden=True),
    _int("watchdog-period", 0, 0, INT_MAX, hidden=True),
    _int("loading-process-events-interval-bytes", 2 * MB, 1024, INT_MAX, hidden=True),
)


def _index() -> tuple[dict[str, Directive], list[tuple[str, Directive]]]:
    lookup: dict[str, Directive] = {}
    globbed: list[tuple[str, Directive]] = []
    for directive in DIRECTIVES:
        for name in (directive.name, *directive.aliases):
            lookup[name] = directive
            if not directive.hidden:
                globbed.append((name, directive))
    return lookup, globbed


LOOKUP, GLOB_NAMES = _index()  # every name and alias; the names CONFIG GET patterns can reach


def _set_args(codec: Codec, text: str) -> list[str]:
    """CONFIG SET's reading of one value: multi-argument directives split on single spaces."""
    if not codec.multi_arg:
        return [text]
    return text.split(" ") if text else []


def _resplit(text: str) -> list[str]:
    """A file's reading of a lone argument to a multi-argument directive (`save "60 1"`)."""
    try:
        return split_args(text)
    except ValueError:
        return []  # Redis drops an argument it cannot split


def _initial(directive: Directive) -> Any:
    if isinstance(directive.codec, (ReplicaofCodec, DirCodec)):
        return directive.default  # "" means none; dir is made absolute when a Config loads
    return directive.codec.parse(_set_args(directive.codec, directive.default), {})


DEFAULTS: dict[str, Any] = {directive.name: _initial(directive) for directive in DIRECTIVES}


def _directive(name: str) -> Directive:
    directive = LOOKUP.get(name.lower())
    if directive is None:
        raise KeyError(name)
    return directive


def _plain(value: Any) -> Any:
    """The value with tuples turned into lists, as msgpack would send it."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


_PLAIN_ARG = re.compile(r"[!#-&(-\[\]-~]+")  # printable, no blank, quote or backslash


def join_args(args: list[str]) -> str:
    """Arguments as one line that ``split_args`` reads back unchanged (quoted only if needed)."""
    return " ".join(arg if _PLAIN_ARG.fullmatch(arg) else quote_arg(arg) for arg in args)


def _as_bytes(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _read_text(path: str, shown: str) -> str:
    try:
        with open(_as_bytes(path), "rb") as handle:
            return handle.read().decode("latin-1")
    except IsADirectoryError:
        return ""  # Redis opens a directory and reads nothing from it
    except OSError as exc:
        raise ConfigError(CANT_OPEN.format(shown, os.strerror(exc.errno or 0))) from None


def _check_dir(path: str) -> None:
    """CONFIG SET dir needs an existing directory (Redis changes into it at once)."""
    raw = _as_bytes(path)
    try:
        mode = os.stat(raw).st_mode
    except OSError as exc:
        raise Invalid(os.strerror(exc.errno or errno.ENOENT)) from None
    if not stat.S_ISDIR(mode):
        raise Invalid(os.strerror(errno.ENOTDIR))
    if not os.access(raw, os.X_OK):
        raise Invalid(os.strerror(errno.EACCES))


# --- loading files and the command line --------------------------------------------------------


class _Loader:
    """Applies configuration text to a Config line by line, as redis-server reads its file."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.save_seen = False  # the first save line replaces the default points
        self.depth = 0  # files being included, to stop an include loop

    def load_text(self, text: str) -> None:
        for number, raw in enumerate(text.split("\n"), start=1):
            line = raw.strip(" \t\r\n")
            if not line or line.startswith("#"):
                continue
            reason = self.apply_line(line)
            if reason is not None:
                raise ConfigError(FATAL.format(number, line, reason))

    def apply_line(self, line: str) -> str | None:
        """Apply one line; the reason it is wrong, or None."""
        try:
            args = split_args(line)
        except ValueError:
            return UNBALANCED
        if not args:
            return None
        name, values = args[0].lower(), args[1:]
        file_only = _FILE_ONLY.get(name)
        if file_only is not None:
            return file_only(self, values)
        directive = LOOKUP.get(name)
        if directive is None:
            return BAD_DIRECTIVE
        if directive.name == "save":
            return self._apply_save(values)
        if directive.codec.multi_arg and len(values) == 1:
            values = _resplit(values[0])
        return self._store(directive, values)

    def _store(self, directive: Directive, values: list[str]) -> str | None:
        current = self.config._values[directive.name]
        try:
            self.config._values[directive.name] = directive.codec.parse(values, current)
        except Invalid as exc:
            return exc.reason
        return None

    def _apply_save(self, values: list[str]) -> str | None:
        clear = values == [""]
        if len(values) == 1 and not clear:
            values = _resplit(values[0])
        try:
            points = DEFAULT_SAVE_CODEC.parse(values, None)
        except Invalid as exc:
            return exc.reason
        kept = self.config._values["save"] if self.save_seen and not clear else []
        self.config._values["save"] = kept + points
        self.save_seen = True
        return None

    def include(self, args: list[str]) -> str | None:
        if len(args) != 1:
            return BAD_DIRECTIVE
        if self.depth >= MAX_INCLUDE_DEPTH:
            return INCLUDE_TOO_DEEP
        pattern = args[0]
        paths = [pattern]
        if any(char in pattern for char in "*?["):
            paths = [path.decode("latin-1") for path in sorted(glob.glob(_as_bytes(pattern)))]
        self.depth += 1
        try:
            for path in paths:
                self.load_text(_read_text(path, path))
        finally:
            self.depth -= 1
        return None

    def rename_command(self, args: list[str]) -> str | None:
        if len(args) != 2:
            return BAD_DIRECTIVE
        self.config.rename_commands.append((args[0], args[1]))
        return None

    def user(self, args: list[str]) -> str | None:
        if not args:
            return BAD_DIRECTIVE
        self.config.users.append(join_args(args))
        return None

    def loadmodule(self, args: list[str]) -> str | None:
        if not args:
            return BAD_DIRECTIVE
        self.config.modules.append(join_args(args))
        return None

    def sentinel(self, args: list[str]) -> str | None:
        return NOT_IN_SENTINEL

    def deprecated(self, args: list[str]) -> str | None:
        """Directives Redis 7.0 still reads and ignores (list-max-ziplist-entries ...)."""
        return None if len(args) == 1 else BAD_DIRECTIVE


DEFAULT_SAVE_CODEC = SaveCodec()
MAX_INCLUDE_DEPTH = 64

# Accepted in files (and on the command line) only: CONFIG GET and SET do not know them.
_FILE_ONLY: dict[str, Callable[[_Loader, list[str]], str | None]] = {
    "include": _Loader.include,
    "rename-command": _Loader.rename_command,
    "user": _Loader.user,
    "loadmodule": _Loader.loadmodule,
    "sentinel": _Loader.sentinel,
    "list-max-ziplist-entries": _Loader.deprecated,
    "list-max-ziplist-value": _Loader.deprecated,
    "lua-replicate-commands": _Loader.deprecated,
}


def command_line_text(options: list[str]) -> str:
    """The lines redis-server appends to its file for ``--name value ...`` options.

    An option's name is written as given and its values quoted.  ``--name`` starts a new line
    only once the previous option has a value, so ``--masterauth --secret`` sets the password
    "--secret"; the exception is a bare ``--save`` followed by an option or nothing, which
    means ``save ""``.
    """
    lines: list[str] = []
    has_value = True
    for index, arg in enumerate(options):
        if arg.startswith("--") and has_value:
            lines.append(arg[2:] + " ")
            has_value = _names_value_inline(arg)
            following = options[index + 1] if index + 1 < len(options) else None
            if not has_value and arg.lower() == "--save":
                if following is None or following.startswith("--"):
                    lines[-1] += '""'
                    has_value = True
        else:
            if not lines:
                lines.append("")
            lines[-1] += quote_arg(arg) + " "
            has_value = True
    return "\n".join(lines)


def _names_value_inline(arg: str) -> bool:
    """Whether one argv entry holds a value too (``"--port 7000"``)."""
    try:
        return len(split_args(arg)) != 1
    except ValueError:
        return True


# --- the configuration object -------------------------------------------------------------------


class Config:
    """The server's settings, loaded like redis-server and changed by CONFIG SET."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = copy.deepcopy(DEFAULTS)
        self.rename_commands: list[tuple[str, str]] = []
        self.users: list[str] = []  # `user` lines' arguments, quoted where needed
        self.modules: list[str] = []  # `loadmodule` lines' arguments, quoted where needed
        self.config_file: str | None = None

    @classmethod
    def from_args(cls, argv: list[str]) -> Config:
        """``[config-file] [--directive value ...]`` as redis-server takes them (no argv[0])."""
        args = [os.fsencode(arg).decode("latin-1") for arg in argv]
        path = args.pop(0) if args and not args[0].startswith("-") else None
        config = cls()
        text = ""
        if path is not None:
            absolute = os.path.abspath(_as_bytes(path))
            text = _read_text(path, absolute.decode("latin-1"))
            config.config_file = os.fsdecode(absolute)
        options = command_line_text(args)
        if options:
            text += "\n" + options
        _Loader(config).load_text(text)
        config._values["dir"] = os.path.abspath(config._values["dir"])
        return config

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        """Rebuild what ``to_dict`` gave (in a child process)."""
        config = cls()
        for name, plain in data["values"].items():
            directive = LOOKUP[name]
            config._values[directive.name] = directive.codec.restore(copy.deepcopy(plain))
        config.rename_commands = [(old, new) for old, new in data.get("rename_commands", [])]
        config.users = list(data.get("users", []))
        config.modules = list(data.get("modules", []))
        config.config_file = data.get("config_file")
        return config

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str, int, float, bool, list, dict) for pickle or msgpack."""
        return {
            "values": {name: _plain(value) for name, value in self._values.items()},
            "rename_commands": [list(pair) for pair in self.rename_commands],
            "users": list(self.users),
            "modules": list(self.modules),
            "config_file": self.config_file,
        }

    def get(self, name: str) -> str:
        """The value as CONFIG GET shows it; ``name`` may be an alias, in any case."""
        directive = _directive(name)
        return directive.codec.format(self._values[directive.name])

    def value(self, name: str) -> Any:
        """The parsed value: int, bool, str, [(seconds, changes)] for save, [str] for bind."""
        return copy.copy(self._values[_directive(name).name])

    def set(self, pairs: list[tuple[str, str]], *, local: bool = False,
            check: Callable[[str, Any], str | None] | None = None) -> list[str]:
        """CONFIG SET name value [name value ...]: all or nothing.

        Returns the canonical names whose value changed.  ``local`` tells whether the client
        is local, for ``enable-protected-configs local``.  ``check(name, value)`` may refuse a
        value that parsed (Redis' apply step, e.g. a port in use) with a message.  Raises
        ConfigError with the reply line Redis would send.
        """
        targets = self._check_names(pairs, local)
        parsed = self._parse_values(targets)
        if check is not None:
            for key, directive, _ in targets:
                problem = check(directive.name, parsed[directive.name])
                if problem is not None:
                    raise ConfigError(SET_FAILED.format(key, problem))
        changed = [name for name, value in parsed.items() if value != self._values[name]]
        self._values.update(parsed)
        return changed

    def _check_names(
        self, pairs: list[tuple[str, str]], local: bool
    ) -> list[tuple[str, Directive, str]]:
        seen: set[str] = set()
        targets: list[tuple[str, Directive, str]] = []
        for given, text in pairs:
            key = given.lower()
            directive = LOOKUP.get(key)
            if directive is None:
                raise ConfigError(UNKNOWN_OPTION.format(given))
            if not directive.mutable:
                raise ConfigError(SET_FAILED.format(given, IMMUTABLE))
            if directive.protected and not self._protected_allowed(local):
                raise ConfigError(SET_FAILED.format(given, PROTECTED))
            if key in seen:
                raise ConfigError(SET_FAILED.format(given, DUPLICATE))
            seen.add(key)
            targets.append((key, directive, text))
        return targets

    def _parse_values(self, targets: list[tuple[str, Directive, str]]) -> dict[str, Any]:
        parsed: dict[str, Any] = {}
        for key, directive, text in targets:
            current = parsed.get(directive.name, self._values[directive.name])
            try:
                value = directive.codec.parse(_set_args(directive.codec, text), current)
                if directive.name == "dir":
                    _check_dir(value)
            except Invalid as exc:
                raise ConfigError(SET_FAILED.format(key, exc.reason)) from None
            parsed[directive.name] = value
        return parsed

    def _protected_allowed(self, local: bool) -> bool:
        mode = self._values["enable-protected-configs"]
        return bool(mode == "yes" or (mode == "local" and local))

    def match(self, patterns: list[str]) -> list[tuple[str, str]]:
        """CONFIG GET pattern [pattern ...]: (name, value) pairs, each directive once.

        A plain name answers under the spelling asked for; a glob answers every name and
        alias it matches (case-insensitively), debug knobs excepted.
        """
        found: dict[str, tuple[str, Directive]] = {}
        for pattern in patterns:
            key = pattern.lower()
            if any(char in pattern for char in "*?["):
                self._match_glob(_as_bytes(pattern), found)
            elif key in LOOKUP and key not in found:
                found[key] = (pattern, LOOKUP[key])
        return [(shown, self.get(directive.name)) for shown, directive in found.values()]

    @staticmethod
    def _match_glob(pattern: bytes, found: dict[str, tuple[str, Directive]]) -> None:
        for name, directive in GLOB_NAMES:
            if name not in found and stringmatch(pattern, name.encode(), nocase=True):
                found[name] = (name, directive)
