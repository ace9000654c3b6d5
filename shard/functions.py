"""Redis 7 Functions: FUNCTION LOAD/DELETE/FLUSH/LIST/STATS/DUMP/RESTORE, FCALL, FCALL_RO.

Every shard keeps every library (FUNCTION LOAD and the other writes fan out to all shards),
so an FCALL runs in the shard that owns its keys exactly like EVAL (``shard/scripting.py``:
same runtime, same ``redis.*`` API, same busy-script handling).  A library's code runs once at
load time with only ``redis.register_function`` and ``redis.log`` in reach; the functions it
registers are kept as Lua functions, called with ``(keys, args)``.

Persistence: a library is saved as its code (RDB opcode FUNCTION2, as Redis does), in the
RDB written by shard 0 only (``library_records``) and in FUNCTION DUMP payloads.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.protocol import split_inline
from persistence import rdb
from persistence.crc64 import crc64
from persistence.rdb_reader import Reader
from shard import errors
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.glob import compile_glob
from shard.lua_env import ScriptError, lua_type
from shard.reply import OK, SetReply, Simple
from shard.scripting import ScriptEngine, engine
from shard.table import FANOUT, INTERNAL, command, container, numkeys_at

OP_FUNCTION2 = 245
LOAD_TIMEOUT = 0.5  # seconds a library's code may run at FUNCTION LOAD
# Redis' script flags, in the order FUNCTION LIST shows them.
FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")


class Function:
    __slots__ = ("name", "callback", "flags", "description", "library")

    def __init__(self, name: bytes, callback: Any, flags: tuple[str, ...],
                 description: bytes | None, library: Library) -> None:
        self.name = name
        self.callback = callback
        self.flags = flags
        self.description = description
        self.library = library


class Library:
    __slots__ = ("name", "code", "functions")

    def __init__(self, name: bytes, code: bytes) -> None:
        self.name = name
        self.code = code
        self.functions: dict[bytes, Function] = {}  # by name as registered


class Registry:
    """The libraries of one shard, and every function by name."""

    def __init__(self, scripts: ScriptEngine) -> None:
        self.scripts = scripts
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, Function] = {}  # by lowercased name, as Redis finds them

    def link(self, library: Library) -> None:
        self.libraries[library.name] = library
        self.functions.update((name.lower(), f) for name, f in library.functions.items())

    def unlink(self, library: Library) -> None:
        del self.libraries[library.name]
        for name in library.functions:
            del self.functions[name.lower()]

    def create(self, code: bytes, replace: bool, timeout: float) -> bytes:
        """Compile and register the library in ``code``; its name, or RedisError."""
        name, engine_name = _metadata(code)
        if not _valid_name(name):
            raise RedisError(errors.FUNCTION_BAD_NAME)
        if engine_name.upper() != b"LUA":
            raise RedisError(f"ERR Engine '{engine_name.decode('latin-1')}' not found")
        old = self.libraries.get(name)
        if old is not None and not replace:
            raise RedisError(f"ERR Library '{name.decode('latin-1')}' already exists")
        if old is not None:
            self.unlink(old)
        try:
            library = self._compile(name, code, timeout)
            if not library.functions:
                raise RedisError("ERR No functions registered")
            for fname in library.functions:
                if fname.lower() in self.functions:
                    raise RedisError(f"ERR Function {fname.decode('latin-1')} already exists")
        except RedisError:
            if old is not None:
                self.link(old)
            raise
        self.link(library)
        return name

    def _compile(self, name: bytes, code: bytes, timeout: float) -> Library:
        scripts = self.scripts
        library = Library(name, code)
        newline = code.find(b"\n")
        ok, result = scripts.load_library(code[newline:], library, timeout)
        if ok:
            return library
        if isinstance(result, bytes):  # a syntax error, from the compiler
            raise RedisError("ERR Error compiling function: " + result.decode("latin-1"))
        err = result[b"err"] if lua_type(result) == "table" else None
        text = err.decode("latin-1") if isinstance(err, bytes) else "ERR unknown error"
        raise RedisError("ERR Error registering functions: " + text)

    def register(self, library: Library, args: tuple[Any, ...]) -> None:
        """redis.register_function(name, callback) or redis.register_function{...}."""
        try:
            self._register(library, args)
        except _RegisterError as exc:
            raise ScriptError(self.scripts.convert.error_table(exc.text)) from None

    def _register(self, library: Library, args: tuple[Any, ...]) -> None:
        if len(args) == 2:
            name, callback = args
            if not _is_string(name):
                raise _lua_error("first argument to redis.register_function must be a string")
            if lua_type(callback) != "function":
                raise _lua_error("second argument to redis.register_function must be a function")
            self._add(library, _as_bytes(name), callback, (), None)
            return
        if len(args) != 1:
            raise _lua_error("wrong number of arguments to redis.register_function")
        self._add(library, *_named_arguments(args[0]))

    def _add(self, library: Library, name: bytes, callback: Any, flags: tuple[str, ...],
             description: bytes | None) -> None:
        if not _valid_name(name):
            raise _lua_error(errors.FUNCTION_BAD_NAME[4:])
        if name in library.functions:
            raise _lua_error("Function already exists in the library")
        library.functions[name] = Function(name, callback, flags, description, library)

    def restore(self, payload: bytes, policy: bytes) -> None:
        """FUNCTION RESTORE: every library of ``payload`` or none."""
        if not rdb.payload_ok(payload):
            raise RedisError("ERR DUMP payload version or checksum are wrong")
        codes = _payload_codes(payload)
        staged = Registry(self.scripts)
        for code in codes:
            staged.create(code, False, 0)
        if policy == b"FLUSH":
            self.libraries, self.functions = staged.libraries, staged.functions
            return
        replaced: list[Library] = []
        for name in staged.libraries:
            old = self.libraries.get(name)
            if old is None:
                continue
            if policy != b"REPLACE":
                self._relink(replaced)
                raise RedisError(f"ERR Library {name.decode('latin-1')} already exists")
            self.unlink(old)
            replaced.append(old)
        for function in staged.functions.values():
            if function.name.lower() in self.functions:
                self._relink(replaced)
                raise RedisError(f"ERR Function {function.name.decode('latin-1')} already exists")
        for library in staged.libraries.values():
            self.link(library)

    def _relink(self, libraries: list[Library]) -> None:
        for library in libraries:
            self.link(library)

    def dump(self) -> bytes:
        body = b"".join(record for record in library_records(self))
        body += rdb.RDB_VERSION.to_bytes(2, "little")
        return body + crc64(body, 0).to_bytes(8, "little")


def library_records(registry: Registry | None) -> list[bytes]:
    """One RDB record (opcode FUNCTION2 and the code) per library."""
    if registry is None:
        return []
    return [bytes((OP_FUNCTION2,)) + rdb.string(lib.code) for lib in registry.libraries.values()]


def library_preamble(shard: Any) -> bytes:
    """The RDB records of ``shard``'s libraries (for its snapshot part or log base)."""
    scripts = shard.scripts
    return b"".join(library_records(scripts.functions if scripts is not None else None))


def load_libraries(shard: Any, codes: list[bytes]) -> None:
    """Libraries read from an RDB image (start-up, full sync, DEBUG RELOAD) into ``shard``."""
    scripts = shard.scripts
    if scripts is None:
        scripts = shard.scripts = ScriptEngine(shard)
    if scripts.functions is None:
        scripts.functions = Registry(scripts)
    for code in codes:
        scripts.functions.create(code, True, 0)


def _payload_codes(payload: bytes) -> list[bytes]:
    reader = Reader(payload[:-10])
    codes = []
    while reader.pos < len(payload) - 10:
        try:
            kind = reader.byte()
        except Exception:
            raise RedisError("ERR can not read data type") from None
        if kind != OP_FUNCTION2:
            raise RedisError("ERR given type is not a function")
        try:
            codes.append(reader.string())
        except Exception:
            raise RedisError("ERR Failed loading library payload") from None
    return codes


def _metadata(code: bytes) -> tuple[bytes, bytes]:
    """(library name, engine name) from the ``#!<engine> name=<library>`` first line."""
    if not code.startswith(b"#!"):
        raise RedisError("ERR Missing library metadata")
    end = code.find(b"\n")
    if end < 0:
        raise RedisError("ERR Invalid library metadata")
    # Split as Redis does (sdssplitargs): quotes group, a backslash outside them is literal.
    parts = split_inline(code[:end]) or []
    if not parts:
        raise RedisError("ERR Invalid library metadata")
    name = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                raise RedisError("ERR Invalid metadata value, name argument was given "
                                 "multiple times")
            name = part[5:]
            continue
        raise RedisError("ERR Invalid metadata value given: " + part.decode("latin-1"))
    if name is None:
        raise RedisError("ERR Library name was not given")
    return name, parts[0][2:]


def _valid_name(name: bytes) -> bool:
    return bool(name) and all(c == 95 or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122
                              for c in name)


def _is_string(value: Any) -> bool:
    return type(value) in (bytes, int, float)


def _as_bytes(value: Any) -> bytes:
    if type(value) is bytes:
        return value
    return b"%.14g" % value


class _RegisterError(Exception):
    """redis.register_function's error; ``Registry.register`` raises it into Lua."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _lua_error(text: str) -> _RegisterError:
    return _RegisterError(text)


def _named_arguments(table: Any) -> tuple[bytes, Any, tuple[str, ...], bytes | None]:
    if lua_type(table) != "table":
        raise _lua_error("calling redis.register_function with a single argument is only "
                         "applicable to Lua table (representing named arguments).")
    name = description = callback = None
    flags: tuple[str, ...] = ()
    for key, value in table.items():
        if not _is_string(key):
            raise _lua_error("named argument key given to redis.register_function is not a string")
        field = _as_bytes(key).lower()
        if field == b"function_name":
            if not _is_string(value):
                raise _lua_error("function_name argument given to redis.register_function must "
                                 "be a string")
            name = _as_bytes(value)
        elif field == b"description":
            if not _is_string(value):
                raise _lua_error("description argument given to redis.register_function must "
                                 "be a string")
            description = _as_bytes(value)
        elif field == b"callback":
            if lua_type(value) != "function":
                raise _lua_error("callback argument given to redis.register_function must be "
                                 "a function")
            callback = value
        elif field == b"flags":
            if lua_type(value) != "table":
                raise _lua_error("flags argument to redis.register_function must be a table "
                                 "representing function flags")
            flags = _flags(value)
        else:
            raise _lua_error("unknown argument given to redis.register_function")
    if name is None:
        raise _lua_error("redis.register_function must get a function name argument")
    if callback is None:
        raise _lua_error("redis.register_function must get a callback argument")
    return name, callback, flags, description


def _flags(table: Any) -> tuple[str, ...]:
    found = set()
    index = 1
    while (value := table[index]) is not None:
        if not _is_string(value):
            raise _lua_error("unknown flag given")
        flag = _as_bytes(value).decode("latin-1").lower()
        if flag not in FLAGS:
            raise _lua_error("unknown flag given")
        found.add(flag)
        index += 1
    return tuple(flag for flag in FLAGS if flag in found)


def registry(ctx: Ctx) -> Registry:
    scripts = engine(ctx)
    if scripts.functions is None:
        scripts.functions = Registry(scripts)
    reg: Registry = scripts.functions
    return reg


# --- commands -------------------------------------------------------------------------------

container("function", acl="@slow", group="scripting", since="7.0.0",
          summary="A container for function commands")


@command("FUNCTION LOAD [REPLACE] function-code", -3, "write denyoom noscript",
         acl="@write @slow @scripting", route=FANOUT, parent="function", group="scripting",
         since="7.0.0", summary="Create a function with the given arguments (name, code, description)")
def function_load(ctx: Ctx, args: list[bytes]) -> Any:
    replace = False
    for option in args[1:-1]:
        if option.upper() != b"REPLACE":
            raise RedisError("ERR Unknown option given: " + option.decode("latin-1"))
        replace = True
    name = registry(ctx).create(args[-1], replace, LOAD_TIMEOUT)
    ctx.ks.dirty += 1  # recorded in the log and the replication stream
    return name


@command("FUNCTION DELETE library-name", 3, "write noscript", acl="@write @slow @scripting",
         route=FANOUT, parent="function", group="scripting", since="7.0.0",
         summary="Delete a function by name")
def function_delete(ctx: Ctx, args: list[bytes]) -> Any:
    reg = registry(ctx)
    library = reg.libraries.get(args[1])
    if library is None:
        raise RedisError("ERR Library not found")
    reg.unlink(library)
    ctx.ks.dirty += 1
    return OK


@command("FUNCTION FLUSH [ASYNC | SYNC]", -2, "write noscript", acl="@write @slow @scripting",
         route=FANOUT, parent="function", group="scripting", since="7.0.0",
         summary="Deleting all functions")
def function_flush(ctx: Ctx, args: list[bytes]) -> Any:
    if len(args) > 2:
        raise _syntax(args[0])
    if len(args) == 2 and args[1].upper() not in (b"ASYNC", b"SYNC"):
        raise RedisError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    reg = registry(ctx)
    reg.libraries, reg.functions = {}, {}
    ctx.ks.dirty += 1
    return OK


@command("FUNCTION RESTORE serialized-value [FLUSH | APPEND | REPLACE]", -3,
         "write denyoom noscript", acl="@write @slow @scripting", route=FANOUT,
         parent="function", group="scripting", since="7.0.0",
         summary="Restore all the functions on the given payload")
def function_restore(ctx: Ctx, args: list[bytes]) -> Any:
    if len(args) > 3:
        raise _syntax(args[0])
    policy = args[2].upper() if len(args) == 3 else b"APPEND"
    if policy not in (b"FLUSH", b"APPEND", b"REPLACE"):
        raise RedisError("ERR Wrong restore policy given, value should be either FLUSH, APPEND "
                         "or REPLACE.")
    registry(ctx).restore(args[1], policy)
    ctx.ks.dirty += 1
    return OK


@command("FUNCTION DUMP", 2, "noscript", acl="@slow @scripting", parent="function",
         group="scripting", since="7.0.0",
         summary="Dump all functions into a serialized binary payload")
def function_dump(ctx: Ctx, args: list[bytes]) -> Any:
    return registry(ctx).dump()


@command("FUNCTION LIST [LIBRARYNAME library-name-pattern] [WITHCODE]", -2, "noscript",
         acl="@slow @scripting", parent="function", group="scripting", since="7.0.0",
         summary="List information about all the functions")
def function_list(ctx: Ctx, args: list[bytes]) -> Any:
    with_code = False
    pattern = None
    index = 1
    while index < len(args):
        arg = args[index]
        if not with_code and arg.lower() == b"withcode":
            with_code = True
        elif pattern is None and arg.lower() == b"libraryname":
            if index >= len(args) - 1:
                raise RedisError("ERR library name argument was not given")
            index += 1
            pattern = args[index]
        else:
            raise RedisError("ERR Unknown argument " + arg.decode("latin-1"))
        index += 1
    matches = compile_glob(pattern, nocase=True) if pattern is not None else None
    out = []
    for library in registry(ctx).libraries.values():
        if matches is not None and not matches(library.name):
            continue
        entry: dict[bytes, Any] = {b"library_name": library.name, b"engine": b"LUA",
                                   b"functions": [_describe(f) for f in library.functions.values()]}
        if with_code:
            entry[b"library_code"] = library.code
        out.append(entry)
    return out


def _syntax(sub: bytes) -> RedisError:
    return RedisError(errors.SUBCOMMAND_SYNTAX.format(sub=sub.decode("latin-1"), cmd="FUNCTION"))


def _describe(function: Function) -> dict[bytes, Any]:
    return {b"name": function.name, b"description": function.description,
            b"flags": SetReply(Simple(flag.encode()) for flag in function.flags)}


@command("__FUNCTION_STATS", 1, "admin", route=INTERNAL)
def function_stats_part(ctx: Ctx, args: list[bytes]) -> Any:
    """This shard's part of FUNCTION STATS (a busy shard answers from its hook)."""
    return stats_part(ctx.shard)


def stats_part(shard: Any) -> list[Any]:
    """[running, libraries, functions]: running is None, b"eval" for a script, or
    [name, command, duration ms] for a function."""
    scripts = shard.scripts
    reg = scripts.functions if scripts is not None else None
    counts = [len(reg.libraries), len(reg.functions)] if reg is not None else [0, 0]
    run = scripts.run if scripts is not None else None
    if run is None:
        return [None, *counts]
    if not run.is_function:
        return [b"eval", *counts]
    elapsed = int((time.monotonic() - run.started) * 1000)
    return [[run.sha.encode("latin-1"), run.command, elapsed], *counts]


# FCALL's flags follow EVAL's; the function's own flags (no-writes ...) are checked at run.
_FCALL_FLAGS = "noscript skip_monitor may_replicate no_mandatory_keys stale"
_FCALL_RO_FLAGS = "noscript skip_monitor no_mandatory_keys stale readonly"


@command("FCALL function numkeys [key [key ...]] [arg [arg ...]]", -3, _FCALL_FLAGS,
         acl="@slow @scripting", group="scripting", since="7.0.0", keys_fn=numkeys_at(2),
         cross="script", summary="Invoke a function")
def fcall(ctx: Ctx, args: list[bytes]) -> Any:
    return call(ctx, args, read_only_command=False)


@command("FCALL_RO function numkeys [key [key ...]] [arg [arg ...]]", -3, _FCALL_RO_FLAGS,
         acl="@slow @scripting", group="scripting", since="7.0.0", keys_fn=numkeys_at(2),
         cross="script", summary="Invoke a read-only function")
def fcall_ro(ctx: Ctx, args: list[bytes]) -> Any:
    return call(ctx, args, read_only_command=True)


def call(ctx: Ctx, args: list[bytes], read_only_command: bool) -> Any:
    function = registry(ctx).functions.get(args[0].lower())  # names ignore case here
    if function is None:
        raise RedisError("ERR Function not found")
    numkeys = int_arg(args[1], "ERR Bad number of keys provided")
    if numkeys > len(args) - 2:
        raise RedisError("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise RedisError("ERR Number of keys can't be negative")
    read_only = "no-writes" in function.flags
    if read_only_command and not read_only:
        raise RedisError("ERR Can not execute a script with write flag using *_ro command.")
    scripts = engine(ctx)
    return scripts.invoke(ctx, function.name.decode("latin-1"), function.callback,
                          read_only or read_only_command, args[2:2 + numkeys],
                          args[2 + numkeys:], as_function=True,
                          command=[b"fcall_ro" if read_only_command else b"fcall", *args])


@command("__FUNCTION_FLAGS function", 2, "admin", route=INTERNAL)
def function_flags(ctx: Ctx, args: list[bytes]) -> Any:
    """The flags of ``function`` (or nil): a gateway under CLIENT PAUSE WRITE lets an FCALL
    of a no-writes function through, as Redis does."""
    function = registry(ctx).functions.get(args[0].lower())
    return [flag.encode() for flag in function.flags] if function is not None else None


@command("__FUNCTION_CODE function", 2, "admin", route=INTERNAL)
def function_code(ctx: Ctx, args: list[bytes]) -> Any:
    """The code of the library holding ``function`` (or nil): FCALL over keys of several
    shards runs in the gateway's scratch keyspace, which loads it there."""
    function = registry(ctx).functions.get(args[0].lower())
    return function.library.code if function is not None else None


@command("__FCALL_WITH code ro function numkeys [key ...] [arg ...]", -5, "admin",
         route=INTERNAL, keys_fn=numkeys_at(4))
def fcall_with(ctx: Ctx, args: list[bytes]) -> Any:
    """FCALL in a keyspace that may not hold the library yet (the gateway's scratch one)."""
    reg = registry(ctx)
    function = reg.functions.get(args[2].lower())
    if function is None or function.library.code != args[0]:
        reg.create(args[0], True, 0)
    return call(ctx, args[2:], read_only_command=args[1] == b"1")


@command("__FUNCTION_KILL", 1, "admin", route=INTERNAL)
def function_kill(ctx: Ctx, args: list[bytes]) -> Any:
    """NOTBUSY: a shard running a busy function answers FUNCTION KILL from its hook
    (``shard/busy.py``), so reaching this handler means nothing is running."""
    raise RedisError(errors.NOTBUSY)
