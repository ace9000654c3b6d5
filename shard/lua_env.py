"""The Lua 5.1 world EVAL scripts run in, and the conversions between it and Redis replies.

One runtime per shard (``lupa.lua51``, the Lua version Redis embeds).  Scripts are compiled
once into functions kept by SHA1; they share the runtime, so its globals are locked as in
Redis: reading an undefined global or assigning one raises an error, and KEYS/ARGV are set
with ``rawset`` before each run.  The Redis API (``redis.call`` ...) is thin Lua over Python
callables that return ``(failed, value)`` pairs: a Python exception must never cross into
Lua, where it would surface as an opaque userdata instead of Redis' error table.

Conversions follow Redis 7.0 (script_lua.c), from reply *values* rather than RESP bytes:
a command's reply becomes the Lua value a RESP2 (or, after ``redis.setresp(3)``, RESP3)
parse would give, and the script's result becomes RESP bytes for the caller's protocol.
"""

from __future__ import annotations

from typing import Any

from lupa import lua51

from shard.errors import RedisError
from shard.numbers import format_double
from shard.reply import NULL_ARRAY, Raw, SetReply, Simple, Verbatim

# lupa ships no type stubs: to mypy the runtime is Any.
LuaRuntime = Any
lua_type = lua51.lua_type

# The Lua side of the environment.  ``api`` holds the Python callables; everything a script
# can reach is built here and then the globals are locked.
PRELUDE = r"""
local api = ...
local dbg = debug
local rawget, rawset, type, tostring, error, select, unpack, setmetatable, pairs, ipairs =
      rawget, rawset, type, tostring, error, select, unpack, setmetatable, pairs, ipairs

local function pack(...) return {n = select('#', ...), ...} end

-- The API is Python callables: C functions to Lua, so a call keeps its caller's frame (even
-- as a tail call) and errors point at the script's line.  They fail by raising; the error
-- handler and pcall turn the Python exception back into Redis' error (api.unwrap).
local redis = {}
redis.call = api.call
redis.pcall = api.pcall
redis.sha1hex = api.sha1hex
redis.log = api.log
redis.setresp = api.setresp
redis.set_repl = api.set_repl
redis.acl_check_cmd = api.acl_check_cmd
redis.error_reply = function(...)
  if select('#', ...) ~= 1 or type((...)) ~= 'string' then
    return api.error_table('wrong number or type of arguments')
  end
  local text = ...
  if text:sub(1, 1) ~= '-' then text = '-' .. text end
  return api.error_table(text)
end
redis.status_reply = function(...)
  if select('#', ...) ~= 1 or type((...)) ~= 'string' then
    return api.error_table('wrong number or type of arguments')
  end
  return {ok = (...)}
end
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.REDIS_VERSION = '7.0.15'
redis.REDIS_VERSION_NUM = 0x0007000f
rawset(_G, 'redis', redis)

-- Redis 7 hands pcall's caller the message of an error table, not the table.
local lua_pcall = pcall
rawset(_G, 'pcall', function(...)
  local r = pack(lua_pcall(...))
  if r[1] then return unpack(r, 1, r.n) end
  local err = r[2]
  if type(err) == 'userdata' then
    local caller = dbg.getinfo(2, 'l')
    err = api.unwrap(err, caller and caller.currentline or -1)
  end
  if type(err) == 'table' and type(rawget(err, 'err')) == 'string' then
    return false, rawget(err, 'err')
  end
  return false, err
end)

-- math.random from Redis' own lrand48, so sequences match Redis on every platform.
local floor = math.floor
math.random = function(...)
  local n = select('#', ...)
  local r = api.rand()
  if n == 0 then return r end
  local l, u = 1, ...
  if n == 2 then l, u = ... elseif n > 2 then error('wrong number of arguments', 2) end
  if type(l) ~= 'number' or type(u) ~= 'number' then
    error("bad argument #" .. n .. " to 'random' (number expected)", 2)
  end
  l, u = floor(l), floor(u)
  if l > u then error("bad argument #" .. n .. " to 'random' (interval is empty)", 2) end
  return floor(r * (u - l + 1)) + l
end
math.randomseed = function(seed)
  if type(seed) ~= 'number' then
    error("bad argument #1 to 'randomseed' (number expected, got " .. type(seed) .. ")", 2)
  end
  api.seed(floor(seed))
end

for name, lib in pairs(api.libs) do
  local t = {}
  for k, f in pairs(lib) do t[k] = f end
  rawset(_G, name, t)
end
cjson.null = api.json_null
for _, name in ipairs({'print', 'dofile', 'loadfile', 'os', 'io', 'package', 'require',
                       'module', 'debug'}) do
  rawset(_G, name, nil)
end

-- The error handler: the error as a table, with the script line it happened on.
local function on_error(err)
  local source, line
  for level = 2, 20 do
    local info = dbg.getinfo(level, 'Sl')
    if not info then break end
    if info.source == '@user_script' or info.source == '@user_function' then
      source, line = info.source, info.currentline
      break
    end
  end
  if type(err) == 'userdata' then err = api.unwrap(err, line or -1) end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  if source then
    rawset(err, 'source', source)
    rawset(err, 'line', line)
  end
  return err
end

local hook_check = api.hook
local function hook()
  local verdict = hook_check()
  -- Only the script itself is stopped, not the error handler or the code around it.
  local where = verdict and dbg.getinfo(2, 'S')
  if where and (where.source == '@user_script' or where.source == '@user_function') then
    dbg.sethook(hook, 'l')  -- from now on at every line: pcall cannot swallow the kill
    error(verdict)
  end
end

-- Read-only library tables and globals, as Redis 7 locks them.
local function readonly(t)
  local proxy = {}
  setmetatable(proxy, {
    __index = t,
    __newindex = function() error('Attempt to modify a readonly table', 2) end,
    __metatable = false,
  })
  return proxy
end
for _, name in ipairs({'redis', 'string', 'math', 'table', 'cjson', 'bit', 'cmsgpack', 'struct',
                       'coroutine'}) do
  rawset(_G, name, readonly(rawget(_G, name)))
end
setmetatable(_G, {
  __index = function(_, key)
    -- lupa looks ``debug`` up from C on every call into Lua; only scripts get the error.
    if key == 'debug' then
      local caller = dbg.getinfo(2, 'S')
      if not caller or caller.what == 'C' then return nil end
    end
    error("Script attempted to access nonexistent global variable '" .. tostring(key) .. "'", 2)
  end,
  __newindex = function() error('Attempt to modify a readonly table', 2) end,
  __metatable = false,
})

local compile = loadstring
local function compile_script(body)
  local fn, err = compile(body, '@user_script')
  if not fn then return false, err end
  return true, fn
end

local xpcall = xpcall
local function run(fn, keys, argv, count)
  rawset(_G, 'KEYS', keys)
  rawset(_G, 'ARGV', argv)
  if count > 0 then dbg.sethook(hook, '', count) end
  local ok, result = xpcall(fn, on_error)
  dbg.sethook()
  return ok, result
end

-- Functions (FUNCTION LOAD): a library's code runs once with only the load API in reach
-- (redis.register_function, redis.log ...); the functions it registers keep the same
-- environment, which shows the whole API once loading is over.
local setfenv = setfenv
local loading = false
local function missing(key)
  error("Script attempted to access nonexistent global variable '" .. tostring(key) .. "'", 3)
end
local load_names = {log = true, LOG_DEBUG = true, LOG_VERBOSE = true, LOG_NOTICE = true,
                    LOG_WARNING = true, REDIS_VERSION = true, REDIS_VERSION_NUM = true}
local load_redis = setmetatable({}, {
  __index = function(_, key)
    if key == 'register_function' then return api.register_function end
    if load_names[key] then return rawget(redis, key) end
    missing(key)
  end,
  __newindex = function() error('Attempt to modify a readonly table', 2) end,
  __metatable = false,
})
local library_env = setmetatable({}, {
  __index = function(_, key)
    local value
    if loading then
      if key == 'redis' then value = load_redis end
    else
      value = rawget(_G, key)
    end
    if value == nil then missing(key) end
    return value
  end,
  __newindex = function() error('Attempt to modify a readonly table', 2) end,
  __metatable = false,
})

local function load_library(body, count)
  local fn, err = compile(body, '@user_function')
  if not fn then return false, err end
  setfenv(fn, library_env)
  loading = true
  if count > 0 then dbg.sethook(hook, '', count) end
  local ok, result = xpcall(fn, on_error)
  dbg.sethook()
  loading = false
  return ok, result
end

local function run_function(fn, keys, argv, count)
  if count > 0 then dbg.sethook(hook, '', count) end
  local ok, result = xpcall(function() return fn(keys, argv) end, on_error)
  dbg.sethook()
  return ok, result
end

return compile_script, run, load_library, run_function
"""


def new_runtime() -> LuaRuntime:
    return lua51.LuaRuntime(encoding=None, unpack_returned_tuples=True, register_eval=False,
                      register_builtins=False)


class ScriptError(Exception):
    """Raised by an API function: ``table`` is Redis' error table (redis.call's errors and
    the API's own), or ``message`` a library error that Lua reports at the script's line."""

    def __init__(self, table: Any = None, message: str = "") -> None:
        super().__init__(message)
        self.table = table
        self.message = message


def raising(function: Any) -> Any:
    """A library function answering ``(True, values...)`` or ``(False, message)`` as one that
    returns the values or raises :class:`ScriptError`."""

    def call(*args: Any) -> Any:
        result = function(*args)
        if result[0] is False:
            raise ScriptError(message=result[1])
        return result[1:]

    return call


class Converter:
    """Reply values <-> Lua values for one runtime."""

    def __init__(self, lua: LuaRuntime) -> None:
        self.lua = lua
        self.table_from = lua.table_from

    def error_table(self, text: str | bytes) -> Any:
        """Redis' error table: ``-CODE msg`` keeps its code, a bare message gets ``ERR``."""
        raw = text.encode("latin-1", "replace") if isinstance(text, str) else text
        if raw[:1] == b"-":
            code, sep, msg = raw[1:].partition(b" ")
            if not sep:
                code, msg = b"ERR", raw[1:]
        else:
            code, msg = b"ERR", raw
        return self.table_from({b"err": code + b" " + msg.strip(b"\r\n")})

    def unwrap(self, error: Any, line: int) -> Any:
        """The Lua error a Python exception stands for (see :class:`ScriptError`)."""
        if isinstance(error, ScriptError):
            if error.table is not None:
                return error.table
            return f"user_script:{line}: {error.message}".encode("latin-1", "replace")
        if isinstance(error, BaseException):
            return f"internal error: {type(error).__name__}: {error}".encode("latin-1", "replace")
        return error

    def to_lua(self, value: Any, resp3: bool) -> Any:
        """The Lua value of a command's reply, as the script's protocol version sees it."""
        kind = type(value)
        if kind is bytes:
            return value
        if kind is int:
            return value
        if kind is list or kind is tuple:
            if all(type(item) is bytes for item in value):
                return self.table_from(value)
            return self.table_from([self.to_lua(item, resp3) for item in value])
        if value is None or value is NULL_ARRAY:
            return None if resp3 else False
        if kind is Simple:
            return self.table_from({b"ok": bytes(value)})
        if isinstance(value, RedisError):
            return self.error_table("-" + value.message)
        if kind is bool:
            return value if resp3 else int(value)
        if kind is float:
            return self.table_from({b"double": value}) if resp3 else format_double(value)
        if kind is SetReply:
            if resp3:
                return self.table_from({b"set": self.table_from(
                    {self.to_lua(item, resp3): True for item in value})})
            return self.table_from([self.to_lua(item, resp3) for item in value])
        if kind is dict:
            if resp3:
                return self.table_from({b"map": self.table_from(
                    {self.to_lua(k, resp3): self.to_lua(v, resp3) for k, v in value.items()})})
            flat: list[Any] = []
            for k, v in value.items():
                flat += (self.to_lua(k, resp3), self.to_lua(v, resp3))
            return self.table_from(flat)
        if kind is Verbatim:
            if resp3:
                return self.table_from({b"verbatim_string": self.table_from(
                    {b"format": value.kind, b"string": value.text})})
            return value.text
        if isinstance(value, bytes):  # Raw or another bytes subclass: a bulk string
            return bytes(value)
        raise TypeError(f"no Lua form for reply {value!r}")


def to_resp(value: Any, script_resp3: bool, client_resp3: bool) -> bytes:
    """RESP bytes of a script's result (Redis' luaReplyToRedisReply)."""
    out: list[bytes] = []
    _encode(value, script_resp3, client_resp3, out)
    return b"".join(out)


def _encode(value: Any, s3: bool, c3: bool, out: list[bytes]) -> None:
    kind = type(value)
    if kind is bytes:
        out.append(b"$%d\r\n%s\r\n" % (len(value), value))
    elif kind is int or kind is float:
        out.append(b":%d\r\n" % int(value))
    elif kind is bool:
        if not s3:
            out.append(b":1\r\n" if value else (b"_\r\n" if c3 else b"$-1\r\n"))
        elif c3:
            out.append(b"#t\r\n" if value else b"#f\r\n")
        else:
            out.append(b":1\r\n" if value else b":0\r\n")
    elif lua_type(value) == "table":
        _encode_table(value, s3, c3, out)
    else:
        out.append(b"_\r\n" if c3 else b"$-1\r\n")


def _encode_table(table: Any, s3: bool, c3: bool, out: list[bytes]) -> None:
    err = table[b"err"]
    if type(err) is bytes:
        out.append(b"-" + _one_line(err) + b"\r\n")
        return
    ok = table[b"ok"]
    if type(ok) is bytes:
        out.append(b"+" + _one_line(ok) + b"\r\n")
        return
    double = table[b"double"]
    if type(double) in (int, float):
        text = format_double(float(double))
        out.append(b",%s\r\n" % text if c3 else b"$%d\r\n%s\r\n" % (len(text), text))
        return
    big = table[b"big_number"]
    if type(big) is bytes:
        big = _one_line(big)
        out.append(b"(%s\r\n" % big if c3 else b"$%d\r\n%s\r\n" % (len(big), big))
        return
    verbatim = table[b"verbatim_string"]
    if lua_type(verbatim) == "table":
        fmt, text = verbatim[b"format"], verbatim[b"string"]
        if type(fmt) is bytes and type(text) is bytes:
            if c3:
                out.append(b"=%d\r\n%s:%s\r\n" % (len(text) + 4, fmt[:3], text))
            else:
                out.append(b"$%d\r\n%s\r\n" % (len(text), text))
            return
    mapping = table[b"map"]
    if lua_type(mapping) == "table":
        items = list(mapping.items())
        out.append((b"%%%d\r\n" if c3 else b"*%d\r\n") % (len(items) * (1 if c3 else 2)))
        for k, v in items:
            _encode(k, s3, c3, out)
            _encode(v, s3, c3, out)
        return
    members = table[b"set"]
    if lua_type(members) == "table":
        keys = list(members.keys())
        out.append((b"~%d\r\n" if c3 else b"*%d\r\n") % len(keys))
        for k in keys:
            _encode(k, s3, c3, out)
        return
    items = []
    index = 1
    while True:
        item = table[index]
        if item is None:
            break
        items.append(item)
        index += 1
    out.append(b"*%d\r\n" % len(items))
    for item in items:
        _encode(item, s3, c3, out)


def _one_line(text: bytes) -> bytes:
    return text.replace(b"\r", b" ").replace(b"\n", b" ")


def raw_reply(data: bytes) -> Raw:
    return Raw(data)
