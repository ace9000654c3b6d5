"""EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT: Lua scripts run inside the shard.

A script runs in the shard that owns its keys (the gateway routes it by its declared KEYS),
atomically: the shard's loop does nothing else until it ends.  ``redis.call`` runs commands
synchronously through the shard's own executor, so a script sees and makes exactly the
effects a client would.  A key owned by another shard cannot be reached from here: touching
one fails with Redis Cluster's error instead of reading or writing the wrong shard.

Busy scripts: a Lua count hook fires every 100000 instructions.  Once the script has run
longer than ``busy-reply-threshold`` ms the shard is *busy*: from the hook it answers every
batch that arrives with BUSY (SCRIPT KILL excepted, see ``shard/busy.py``) and tells the
gateways, which then refuse commands the way Redis does while a script runs.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from shard import busy, errors, lua_libs, wire
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.lua_env import PRELUDE, Converter, ScriptError, lua_type, new_runtime, raising, to_resp
from shard.reply import OK, PONG, Raw
from shard.slots import default_owner, key_slot
from shard.table import FANOUT, SHARD, command, container, lookup, numkeys_at

log = logging.getLogger("atoll.shard")

HOOK_INSTRUCTIONS = 100_000
# Commands a script may run although they are answered by the gateway for clients.
_SCRIPT_LOCAL = {"ping", "echo", "select"}


def sha1hex(body: bytes) -> str:
    return hashlib.sha1(body).hexdigest()


class Script:
    __slots__ = ("body", "function", "read_only", "shebang")

    def __init__(self, body: bytes, function: Any, read_only: bool, shebang: bool) -> None:
        self.body = body
        self.function = function
        self.read_only = read_only  # ``#!lua flags=no-writes``
        self.shebang = shebang


class Run:
    """The state of the script being run."""

    __slots__ = ("sha", "db", "resp3", "read_only", "wrote", "started", "busy", "killed",
                 "caller", "is_function", "command")

    def __init__(self, sha: str, db: int, read_only: bool) -> None:
        self.sha = sha
        self.db = db
        self.resp3 = False  # redis.setresp(3)
        self.read_only = read_only
        self.wrote = False
        self.started = time.monotonic()
        self.busy = False
        self.killed = False
        self.caller = b""  # the gateway whose entry runs the script
        self.is_function = False  # FCALL (FUNCTION KILL stops it) rather than EVAL
        self.command: list[bytes] = []  # the FCALL as run (FUNCTION STATS shows it)


class ScriptEngine:
    """The Lua runtime of one shard, its script cache and the running script."""

    def __init__(self, shard: Any) -> None:
        _load_whole_table()
        self.shard = shard
        self.scripts: dict[str, Script] = {}
        self.run: Run | None = None
        self.gateways: set[bytes] = set()  # told when the shard becomes busy and free again
        self.rand = lua_libs.Lrand48()
        self.lua = new_runtime()
        self.convert = Converter(self.lua)
        libs = {b"cjson": lua_libs.cjson_library(self.lua), b"bit": lua_libs.bit_library(),
                b"cmsgpack": lua_libs.cmsgpack_library(self.lua),
                b"struct": lua_libs.struct_library()}
        api = self.lua.table_from({
            b"call": self._call, b"pcall": self._pcall, b"sha1hex": self._sha1hex,
            b"error_table": self.convert.error_table, b"unwrap": self.convert.unwrap,
            b"log": self._log, b"setresp": self._setresp, b"set_repl": self._set_repl,
            b"acl_check_cmd": self._acl_check_cmd, b"rand": self.rand.random,
            b"seed": self.rand.seed, b"hook": self._hook, b"json_null": lua_libs.JSON_NULL,
            b"register_function": self._register_function,
            b"libs": self.lua.table_from({
                name: self.lua.table_from({k: raising(f) if callable(f) else f
                                           for k, f in lib.items()})
                for name, lib in libs.items()}),
        })
        self._compile, self._run, self._load_library, self._run_function = self.lua.execute(
            PRELUDE, api)
        self.functions: Any = None  # the FUNCTION libraries (shard/functions.py), made on use
        self.loading: Any = None  # the library whose code FUNCTION LOAD runs
        self.load_deadline = 0.0
        # Where keys live: the shard owns the slots the gateway's links assign it.
        self.nshards = int(shard.config.get("shards", 1) or 1) if shard is not None else 1
        self.index = shard.index if shard is not None else 0
        self.local_keys: set[bytes] | None = None  # the scratch keyspace owns only these

    # --- the cache ------------------------------------------------------------------------

    def load(self, body: bytes) -> str:
        """Compile ``body`` into the cache (once) and return its SHA1."""
        sha = sha1hex(body)
        if sha in self.scripts:
            return sha
        read_only, shebang, skip = _shebang(body)
        ok, result = self._compile(body[skip:])
        if not ok:
            raise RedisError("ERR Error compiling script (new function): "
                             + result.decode("latin-1"))
        self.scripts[sha] = Script(body, result, read_only, shebang)
        return sha

    def flush(self) -> None:
        self.scripts.clear()

    # --- running ------------------------------------------------------------------------

    def evaluate(self, ctx: Ctx, args: list[bytes], by_sha: bool, ro_command: bool) -> Any:
        numkeys = int_arg(args[1])
        if numkeys > len(args) - 2:
            raise RedisError("ERR Number of keys can't be greater than number of args")
        if numkeys < 0:
            raise RedisError("ERR Number of keys can't be negative")
        if by_sha:
            sha = args[0].decode("latin-1").lower()
            script = self.scripts.get(sha) if len(sha) == 40 else None
            if script is None:
                raise RedisError(errors.NOSCRIPT)
        else:
            sha = self.load(args[0])
            script = self.scripts[sha]
        if ro_command and script.shebang and not script.read_only:
            raise RedisError("ERR Can not execute a script with write flag using *_ro command.")
        if self.run is not None:  # redis.call('eval') is refused before getting here
            raise RedisError("ERR This Redis command is not allowed from script")
        return self.invoke(ctx, sha, script.function, ro_command or script.read_only,
                           args[2:2 + numkeys], args[2 + numkeys:])

    def invoke(self, ctx: Ctx, name: str, function: Any, read_only: bool, keys: list[bytes],
               argv: list[bytes], as_function: bool = False,
               command: list[bytes] | None = None) -> Any:
        """Run a compiled script (KEYS/ARGV globals) or a library function (called with
        the keys and args tables) under the busy-script machinery."""
        if self.run is not None:  # redis.call('eval') is refused before getting here
            raise RedisError("ERR This Redis command is not allowed from script")
        if self.index < 0:  # the gateway's scratch keyspace holds only the declared keys
            self.local_keys = set(keys)
        lua_keys = self.lua.table_from(keys)
        lua_argv = self.lua.table_from(argv)
        run = self.run = Run(name, ctx.db.index, read_only)
        run.is_function = as_function
        run.command = command or []
        shard = self.shard
        if shard is not None:
            run.caller = shard.current_identity
            self.gateways.add(run.caller)
        resp3, db, spec = ctx.resp3, ctx.db, ctx.spec
        threshold = int(ctx.config.get("busy-reply-threshold", 5000) or 0)
        runner = self._run_function if as_function else self._run
        try:
            ok, result = runner(function, lua_keys, lua_argv,
                                HOOK_INSTRUCTIONS if threshold > 0 else 0)
        finally:
            self.run = None
            ctx.resp3, ctx.db, ctx.spec = resp3, db, spec
            if run.busy and shard is not None:
                busy.left(shard)
        if not ok:
            return RedisError(_failure(result, name))
        reply = to_resp(result, run.resp3, resp3)
        if reply[:1] == b"-":
            return RedisError(reply[1:-2].decode("latin-1"))
        return Raw(reply)

    def load_library(self, body: bytes, library: Any, timeout: float) -> tuple[bool, Any]:
        """Run a library's code (FUNCTION LOAD) so it registers its functions."""
        self.loading = library
        self.load_deadline = time.monotonic() + timeout if timeout > 0 else 0.0
        try:
            ok, result = self._load_library(body, HOOK_INSTRUCTIONS if timeout > 0 else 0)
        finally:
            self.loading = None
        return ok, result

    def _register_function(self, *args: Any) -> None:
        if self.loading is None:
            raise self._fail("redis.register_function can only be called on FUNCTION LOAD "
                             "command")
        self.functions.register(self.loading, args)

    def kill(self, function_kill: bool = False) -> Any:
        """SCRIPT KILL (or FUNCTION KILL), asked while the shard is busy."""
        run = self.run
        if run is None or not run.busy:
            return RedisError(errors.NOTBUSY)
        if run.wrote:
            return RedisError(errors.UNKILLABLE)
        if run.is_function != function_kill:  # each KILL stops only its own kind
            return RedisError(errors.BUSY_SCRIPT if function_kill else errors.BUSY_FUNCTION)
        run.killed = True
        return OK

    def _hook(self) -> Any:
        """Every HOOK_INSTRUCTIONS instructions: become busy past the threshold, answer
        what arrives meanwhile, and stop the script when SCRIPT KILL asked to."""
        run = self.run
        if run is None:
            if self.loading is not None and 0 < self.load_deadline < time.monotonic():
                return self._error("FUNCTION LOAD timeout")
            return None
        shard = self.shard
        if not run.busy:
            threshold = int(shard.config.get("busy-reply-threshold", 5000) or 0) if shard else 0
            elapsed = (time.monotonic() - run.started) * 1000
            if threshold <= 0 or elapsed < threshold:
                return None
            run.busy = True
            log.warning("Slow script detected: still in execution after %d milliseconds. You can "
                        "try killing the script using the SCRIPT KILL command. Script name is: "
                        "%s.", elapsed, run.sha)
            if shard is not None:
                busy.entered(shard)
        if shard is not None:
            busy.poll(shard)
            if self.index < 0:  # in a gateway: nobody could SCRIPT KILL it, so it stops here
                return self._error(errors.SCRIPT_TOO_LONG)
        if run.killed:
            log.warning("Lua script killed by user with SCRIPT KILL.")
            return self.convert.error_table("Script killed by user with SCRIPT KILL...")
        return None

    # --- the redis.* API ----------------------------------------------------------------

    def _call(self, *args: Any) -> Any:
        """redis.call: the reply, or Redis' error table raised."""
        failed, reply = self._pcall_reply(args)
        if failed:
            raise ScriptError(reply)
        return reply

    def _pcall(self, *args: Any) -> Any:
        """redis.pcall: the reply, errors as tables."""
        return self._pcall_reply(args)[1]

    def _pcall_reply(self, args: tuple[Any, ...]) -> tuple[bool, Any]:
        run = self.run
        if run is None:
            return True, self._error("redis.call/pcall can only be called inside a script invocation")
        try:
            value = self._command(run, _arguments(args))
        except RedisError as exc:
            return True, self._error(exc.message)
        if isinstance(value, RedisError):
            return True, self._error("-" + value.message)
        return False, self.convert.to_lua(value, run.resp3)

    def _error(self, text: str) -> Any:
        return self.convert.error_table(text)

    def _fail(self, text: str) -> ScriptError:
        return ScriptError(self._error(text))

    def _command(self, run: Run, argv: list[bytes]) -> Any:
        spec = lookup(argv)
        if spec is None or (spec.subcommands and spec.handler is None):
            if spec is None:
                raise RedisError("Unknown Redis command called from script")
            raise RedisError("Wrong number of args calling Redis command from script")
        if not spec.arity_ok(len(argv)):
            raise RedisError("Wrong number of args calling Redis command from script")
        if "noscript" in spec.flags:
            raise RedisError("This Redis command is not allowed from script")
        writes = "write" in spec.flags or "may_replicate" in spec.flags
        if run.read_only and writes:
            raise RedisError("Write commands are not allowed from read-only scripts.")
        name = spec.fullname
        if name in _SCRIPT_LOCAL:
            return self._local(run, name, argv)
        if spec.route not in (SHARD, FANOUT) or spec.handler is None:
            raise RedisError(errors.SCRIPT_UNSUPPORTED)
        if spec.route == FANOUT and self.nshards > 1:
            raise RedisError(errors.SCRIPT_UNSUPPORTED)
        for pos in spec.key_positions(argv):
            if not self.owns(argv[pos]):
                raise RedisError(errors.SCRIPT_NON_LOCAL_KEY)
        if "write" in spec.flags:
            run.wrote = True
        meta = wire.meta(run.db, run.resp3, structured=True) | wire.NOBLOCK
        if self.shard.monitoring:  # MONITOR shows script calls as [db lua] (gateway/monitor.py)
            from shard.stats_part import monitor_line

            self.shard.ctx.notes.append(monitor_line(run.db, argv))
        return self.shard.execute(meta, [name.encode(), *argv[1:]])

    def _local(self, run: Run, name: str, argv: list[bytes]) -> Any:
        if name == "ping":
            if len(argv) > 2:
                return RedisError("ERR wrong number of arguments for 'ping' command")
            return argv[1] if len(argv) == 2 else PONG
        if name == "echo":
            return argv[1]
        db = int_arg(argv[1], errors.NOT_INTEGER)
        if not 0 <= db < len(self.shard.ks.dbs):
            return RedisError(errors.DB_INDEX)
        run.db = db
        return OK

    def owns(self, key: bytes) -> bool:
        if self.local_keys is not None:
            return key in self.local_keys
        if self.nshards <= 1:
            return True
        return default_owner(key_slot(key), self.nshards) == self.index

    def _setresp(self, *args: Any) -> None:
        if self.run is None:
            raise self._fail("redis.setresp can only be called inside a script invocation")
        if len(args) != 1:
            raise self._fail("redis.setresp() requires one argument.")
        version = args[0]
        if type(version) not in (int, float) or version not in (2, 3):
            raise self._fail("RESP version must be 2 or 3.")
        self.run.resp3 = version == 3

    def _acl_check_cmd(self, *args: Any) -> bool:
        if self.run is None:
            raise self._fail("redis.acl_check_cmd can only be called inside a script invocation")
        try:
            argv = _arguments(args)
        except RedisError as exc:
            raise self._fail(exc.message) from None
        spec = lookup(argv)
        if spec is None:
            raise self._fail("Invalid command passed to redis.acl_check_cmd()")
        return True  # ACLs are not enforced yet: the default user may run everything

    def _sha1hex(self, *args: Any) -> bytes:
        if len(args) != 1:
            raise self._fail("wrong number of arguments")
        value = args[0]
        raw = value if type(value) is bytes else (b"%.14g" % value if type(value) in (int, float) else b"")
        return sha1hex(raw).encode()

    def _log(self, *args: Any) -> None:
        if len(args) < 2:
            raise self._fail("redis.log() requires two arguments or more.")
        level = args[0]
        if type(level) not in (int, float):
            raise self._fail("First argument must be a number (log level).")
        if not 0 <= level <= 3:
            raise self._fail("Invalid debug level.")
        text = " ".join(a.decode("latin-1") if type(a) is bytes else f"{a:.14g}"
                        for a in args[1:] if type(a) in (bytes, int, float))
        log.log(_LOG_LEVELS[int(level)], "%s", text)

    def _set_repl(self, *args: Any) -> None:
        if self.run is None:
            raise self._fail("redis.set_repl can only be called inside a script invocation")
        if len(args) != 1:
            raise self._fail("redis.set_repl() requires two arguments.")
        if type(args[0]) not in (int, float) or not 0 <= args[0] <= 3:
            raise self._fail("Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or "
                             "REPL_NONE.")


def _load_whole_table() -> None:
    """Scripts check every command against the whole table (``redis.call('ping')``, and
    Redis' errors for MULTI or SUBSCRIBE), also for commands the gateway answers."""
    import gateway.commands  # noqa: F401
    import gateway.introspection  # noqa: F401
    import gateway.scripting  # noqa: F401
    import gateway.transactions  # noqa: F401




def _arguments(args: tuple[Any, ...]) -> list[bytes]:
    if not args:
        raise RedisError("Please specify at least one argument for this redis lib call")
    out = []
    for arg in args:
        kind = type(arg)
        if kind is bytes:
            out.append(arg)
        elif kind is int or kind is float:
            out.append(b"%.17g" % arg)
        else:
            raise RedisError("Lua redis lib command arguments must be strings or integers")
    return out


def _failure(result: Any, sha: str) -> str:
    """The error line of a failed script, from the error table the handler built."""
    if lua_type(result) != "table":
        text = result.decode("latin-1") if isinstance(result, bytes) else "execution failure"
        return f"ERR Error running script {sha}, {text[:100]}"
    err = result[b"err"]
    message = err.decode("latin-1") if isinstance(err, bytes) else "ERR unknown error"
    source, line = result[b"source"], result[b"line"]
    if source is not None and line is not None:
        message += f" script: {sha}, on {source.decode('latin-1')}:{int(line)}."
    return message.replace("\r", " ").replace("\n", " ")


def _shebang(body: bytes) -> tuple[bool, bool, int]:
    """(read only, has a shebang, bytes to skip) of ``#!lua flags=...`` headers."""
    if not body.startswith(b"#!"):
        return False, False, 0
    end = body.find(b"\n")
    if end < 0:
        raise RedisError("ERR Invalid script shebang")
    parts = body[:end].split()
    if not parts:
        raise RedisError("ERR Invalid engine in script shebang")
    if parts[0] != b"#!lua":
        raise RedisError("ERR Unexpected engine in script shebang: " + parts[0].decode("latin-1"))
    read_only = False
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            raise RedisError("ERR Unknown lua shebang option: " + part.decode("latin-1"))
        for flag in part[6:].split(b","):
            if flag not in _SCRIPT_FLAGS:
                raise RedisError("ERR Unexpected flag in script shebang: " + flag.decode("latin-1"))
            read_only = read_only or flag == b"no-writes"
    return read_only, True, end  # the newline stays, so line numbers match the body


_SCRIPT_FLAGS = {b"no-writes", b"allow-oom", b"allow-stale", b"no-cluster", b"allow-cross-slot-keys"}


_LOG_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING}


def engine(ctx: Ctx) -> ScriptEngine:
    shard = ctx.shard
    scripts: ScriptEngine | None = shard.scripts
    if scripts is None:
        scripts = shard.scripts = ScriptEngine(shard)
    return scripts


# --- commands -------------------------------------------------------------------------------

_EVAL_FLAGS = "noscript skip_monitor may_replicate no_mandatory_keys stale"
_EVAL_RO_FLAGS = "noscript skip_monitor no_mandatory_keys stale readonly"


@command("EVAL script numkeys [key [key ...]] [arg [arg ...]]", -3, _EVAL_FLAGS,
         acl="@slow @scripting", group="scripting", since="2.6.0", keys_fn=numkeys_at(2),
         cross="script",
         summary="Execute a Lua script server side")
def eval_(ctx: Ctx, args: list[bytes]) -> Any:
    return engine(ctx).evaluate(ctx, args, by_sha=False, ro_command=False)


@command("EVALSHA sha1 numkeys [key [key ...]] [arg [arg ...]]", -3, _EVAL_FLAGS,
         acl="@slow @scripting", group="scripting", since="2.6.0", keys_fn=numkeys_at(2),
         cross="script",
         summary="Execute a Lua script server side")
def evalsha(ctx: Ctx, args: list[bytes]) -> Any:
    return engine(ctx).evaluate(ctx, args, by_sha=True, ro_command=False)


@command("EVAL_RO script numkeys [key [key ...]] [arg [arg ...]]", -3, _EVAL_RO_FLAGS,
         acl="@slow @scripting", group="scripting", since="7.0.0", keys_fn=numkeys_at(2),
         cross="script",
         summary="Execute a read-only Lua script server side")
def eval_ro(ctx: Ctx, args: list[bytes]) -> Any:
    return engine(ctx).evaluate(ctx, args, by_sha=False, ro_command=True)


@command("EVALSHA_RO sha1 numkeys [key [key ...]] [arg [arg ...]]", -3, _EVAL_RO_FLAGS,
         acl="@slow @scripting", group="scripting", since="7.0.0", keys_fn=numkeys_at(2),
         cross="script",
         summary="Execute a read-only Lua script server side")
def evalsha_ro(ctx: Ctx, args: list[bytes]) -> Any:
    return engine(ctx).evaluate(ctx, args, by_sha=True, ro_command=True)


container("script", acl="@slow", group="scripting", since="2.6.0",
          summary="A container for Lua scripts management commands")


@command("SCRIPT LOAD script", 3, "noscript stale", acl="@slow @scripting", route=FANOUT,
         parent="script", group="scripting", since="2.6.0",
         summary="Load the specified Lua script into the script cache.")
def script_load(ctx: Ctx, args: list[bytes]) -> Any:
    """Every shard compiles and keeps the script, so EVALSHA works wherever its keys are."""
    return engine(ctx).load(args[1]).encode()


@command("SCRIPT FLUSH [ASYNC | SYNC]", -2, "noscript", acl="@slow @scripting", route=FANOUT,
         parent="script", group="scripting", since="2.6.0",
         summary="Remove all the scripts from the script cache.")
def script_flush(ctx: Ctx, args: list[bytes]) -> Any:
    if len(args) > 2 or (len(args) == 2 and args[1].upper() not in (b"SYNC", b"ASYNC")):
        raise RedisError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    if ctx.shard.scripts is not None:
        ctx.shard.scripts.flush()
    return OK


@command("__SCRIPT_EXISTS sha1 [sha1 ...]", -2, "admin", route="internal")
def script_exists(ctx: Ctx, args: list[bytes]) -> Any:
    """1 or 0 per SHA1 in this shard (SCRIPT EXISTS in the gateway combines the shards)."""
    scripts = ctx.shard.scripts
    known = scripts.scripts if scripts is not None else {}
    return [int(sha.decode("latin-1").lower() in known) for sha in args]


@command("__SCRIPT_KILL", 1, "admin", route="internal")
def script_kill(ctx: Ctx, args: list[bytes]) -> Any:
    """NOTBUSY: a shard running a busy script answers SCRIPT KILL from its hook
    (``shard/busy.py``), so reaching this handler means no script is running."""
    raise RedisError(errors.NOTBUSY)


@command("__SCRIPT_BODY sha1", 2, "admin", route="internal")
def script_body(ctx: Ctx, args: list[bytes]) -> Any:
    """The body of a cached script (or nil): lets the gateway copy a script to the shard
    that an EVALSHA's keys need when only another shard has it."""
    scripts = ctx.shard.scripts
    script = scripts.scripts.get(args[0].decode("latin-1").lower()) if scripts else None
    return script.body if script is not None else None

