"""Every error line Atoll sends, byte for byte as Redis 7.0 words it.

A handler raises ``RedisError(TEXT)``; the text is the whole error line without the leading
``-`` and trailing CRLF.  Keeping the texts here makes them easy to compare with Redis.
"""

from __future__ import annotations


class RedisError(Exception):
    """An error reply.  ``str(e)`` is the full line, e.g. ``WRONGTYPE Operation against ...``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def line(self) -> bytes:
        # latin-1 round-trips the raw bytes of keys quoted in a message.
        return b"-" + self.message.encode("latin-1", "replace") + b"\r\n"

    @property
    def code(self) -> str:
        """The first word (``ERR``, ``WRONGTYPE`` ...), as INFO errorstats counts it."""
        return self.message.split(" ", 1)[0]


WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
OVERFLOW = "ERR increment or decrement would overflow"
NAN_OR_INF = "ERR increment would produce NaN or Infinity"
NO_SUCH_KEY = "ERR no such key"
DB_INDEX = "ERR DB index is out of range"
INVALID_DB_INDEX = "ERR invalid DB index"
SAME_OBJECT = "ERR source and destination objects are the same"
STRING_TOO_LONG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
OFFSET_RANGE = "ERR offset is out of range"
INVALID_EXPIRE = "ERR invalid expire time in '{cmd}' command"
NX_XX_GT_LT = "ERR NX and XX, GT or LT options at the same time are not compatible"
GT_LT_NX = "ERR GT, LT, and/or NX options at the same time are not compatible"
UNSUPPORTED_OPTION = "ERR Unsupported option {opt}"
INVALID_CURSOR = "ERR invalid cursor"
UNKNOWN_COMMAND = "ERR unknown command '{name}', with args beginning with: {args}"
UNKNOWN_SUBCOMMAND = "ERR unknown subcommand '{sub}'. Try {cmd} HELP."
SUBCOMMAND_SYNTAX = "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {cmd} HELP."
DENY_BLOCKING = "ERR {cmd} isn't allowed for a DENY BLOCKING client"
SUBSCRIBED_CONTEXT = ("ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                      "QUIT / RESET are allowed in this context")
PUBSUB_ACTOR_DOWN = "LOADING Atoll pub/sub actor restarting: the command may not have run, retry it"
WRONG_ARITY = "ERR wrong number of arguments for '{name}' command"
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
NOPROTO = "NOPROTO unsupported protocol version"
PROTOCOL_MULTIBULK = "ERR Protocol error: invalid multibulk length"
PROTOCOL_BULK = "ERR Protocol error: invalid bulk length"
PROTOCOL_UNAUTH_MULTIBULK = "ERR Protocol error: unauthenticated multibulk length"
PROTOCOL_UNAUTH_BULK = "ERR Protocol error: unauthenticated bulk length"
PROTOCOL_EXPECTED = "ERR Protocol error: expected '$', got '{got}'"
PROTOCOL_BIG_MBULK = "ERR Protocol error: too big mbulk count string"
PROTOCOL_BIG_BULK = "ERR Protocol error: too big bulk count string"
PROTOCOL_BIG_INLINE = "ERR Protocol error: too big inline request"
PROTOCOL_QUOTES = "ERR Protocol error: unbalanced quotes in request"
SHARD_DOWN = "LOADING Atoll is restarting a shard; try again in a moment"
OOM = "OOM command not allowed when used memory > 'maxmemory'."


def wrong_arity(name: str) -> RedisError:
    return RedisError(WRONG_ARITY.format(name=name))


def unknown_command(name: bytes, args: list[bytes]) -> RedisError:
    """Redis echoes the name (128 bytes) and arguments until 128 bytes of them are shown."""
    shown = b""
    for arg in args:
        if len(shown) >= 128:
            break
        shown += b"'" + _cstr(arg)[: 128 - len(shown)] + b"' "
    return RedisError(UNKNOWN_COMMAND.format(name=_text(_cstr(name)[:128]), args=_text(shown)))


def unknown_subcommand(cmd: str, sub: bytes) -> RedisError:
    return RedisError(UNKNOWN_SUBCOMMAND.format(sub=_text(_cstr(sub)[:128]), cmd=cmd.upper()))


def _cstr(raw: bytes) -> bytes:
    # Redis formats these with %s, which stops at the first NUL byte.
    return raw.split(b"\0", 1)[0]


def _text(raw: bytes) -> str:
    # CR and LF would break the error line; Redis turns them into spaces.
    return raw.replace(b"\r", b" ").replace(b"\n", b" ").decode("latin-1")


# --- lists (and other commands that take a positive count) ----------------------------------
INDEX_OUT_OF_RANGE = "ERR index out of range"
MUST_BE_POSITIVE = "ERR value is out of range, must be positive"
LPOS_RANK_ZERO = (
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use "
    "negative to start from the end of the list"
)
LPOS_COUNT_NEGATIVE = "ERR COUNT can't be negative"
LPOS_MAXLEN_NEGATIVE = "ERR MAXLEN can't be negative"
NUMKEYS_NOT_POSITIVE = "ERR numkeys should be greater than 0"
COUNT_NOT_POSITIVE = "ERR count should be greater than 0"

# --- sets and hashes --------------------------------------------------------------------------
NUMKEYS_TOO_MANY = "ERR Number of keys can't be greater than number of args"
LIMIT_NEGATIVE = "ERR LIMIT can't be negative"
COUNT_RANGE = (
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
)
VALUE_OUT_OF_RANGE = "ERR value is out of range"
HASH_NOT_INTEGER = "ERR hash value is not an integer"
HASH_NOT_FLOAT = "ERR hash value is not a float"
VALUE_NAN_OR_INF = "ERR value is NaN or Infinity"

# --- bitmaps (SETBIT, BITPOS, BITOP, BITFIELD) ------------------------------------------------
BIT_OFFSET = "ERR bit offset is not an integer or out of range"
BIT_VALUE = "ERR bit is not an integer or out of range"
BITPOS_BIT = "ERR The bit argument must be 1 or 0."
BITOP_NOT_ONE_KEY = "ERR BITOP NOT must be called with a single source key."
BITFIELD_TYPE = (
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but "
    "i64 is."
)
BITFIELD_OVERFLOW = "ERR Invalid OVERFLOW type specified"
BITFIELD_RO_GET_ONLY = "ERR BITFIELD_RO only supports the GET subcommand"

# --- sorted sets (and SORT) -------------------------------------------------------------------
ZADD_NX_XX = "ERR XX and NX options at the same time are not compatible"
ZADD_INCR_PAIRS = "ERR INCR option supports a single increment-element pair"
SCORE_NAN = "ERR resulting score is not a number (NaN)"
MIN_MAX_NOT_FLOAT = "ERR min or max is not a float"
MIN_MAX_NOT_LEX = "ERR min or max not valid string range item"
ZRANGE_LIMIT_RANK = (
    "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
)
ZRANGE_WITHSCORES_LEX = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
WEIGHT_NOT_FLOAT = "ERR weight value is not a float"
SETOP_NO_KEYS = "ERR at least 1 input key is needed for '{cmd}' command"
SORT_NOT_DOUBLE = "ERR One or more scores can't be converted into double"


# --- blocking commands ---------------------------------------------------------------------
CROSSSHARD_BLOCKING = "CROSSSLOT Keys in request don't hash to the same slot"

# DUMP / RESTORE
BUSYKEY = "BUSYKEY Target key name already exists."
BAD_TTL = "ERR Invalid TTL value, must be >= 0"
BAD_IDLETIME = "ERR Invalid IDLETIME value, must be >= 0"
BAD_FREQ = "ERR Invalid FREQ value, must be >= 0 and <= 255"
DUMP_PAYLOAD = "ERR DUMP payload version or checksum are wrong"
BAD_DATA_FORMAT = "ERR Bad data format"

# --- scripting (EVAL, SCRIPT) -----------------------------------------------------------------
NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
BUSY_SCRIPT = ("BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
               "SHUTDOWN NOSAVE.")
BUSY_FUNCTION = ("BUSY Redis is busy running a script. You can only call FUNCTION KILL or "
                 "SHUTDOWN NOSAVE.")
NOTBUSY = "NOTBUSY No scripts in execution right now."
UNKILLABLE = ("UNKILLABLE Sorry the script already executed write commands against the dataset. "
              "You can either wait the script termination or kill the server in a hard way using "
              "the SHUTDOWN NOSAVE command.")
EXECABORT_BECAUSE = "EXECABORT Transaction discarded because of: {error}"
SCRIPT_NON_LOCAL_KEY = "Script attempted to access a non local key in a cluster node"
# Atoll's own: commands a script cannot run here (answered by the gateway for clients, or
# whole-keyspace commands when the keyspace is split over several shards).
SCRIPT_UNSUPPORTED = "This Redis command is not supported from scripts by Atoll"
SCRIPT_TOO_LONG = ("Atoll stopped a script over keys of several shards: it ran longer than "
                   "busy-reply-threshold")
FUNCTION_BAD_NAME = ("ERR Library names can only contain letters, numbers, or underscores(_) and "
                     "must be at least one character long")
SCRIPT_DEBUGGER = "ERR Atoll does not have the Lua debugger (SCRIPT DEBUG YES|SYNC)"

# A multi-key entry caught by an online slot move with its keys now on several shards
# (Redis Cluster's answer during a migration).
TRYAGAIN_MOVING = "TRYAGAIN Multiple keys request during rehashing of slot"

# Replication (replication/master.py, replication/replica.py), as replication.c words them.
NOMASTERLINK = "NOMASTERLINK Can't SYNC while not connected with my master"
SYNC_PENDING_OUTPUT = "ERR SYNC and PSYNC are invalid with pending output"
REPLCONF_UNKNOWN = "ERR Unrecognized REPLCONF option: {option}"
WAIT_ON_REPLICA = ("ERR WAIT cannot be used with replica instances. Please also note that since "
                   "Redis 4.0 if a replica is configured to be writable (which is not the "
                   "default) writes to replicas are just local and are not propagated.")
TIMEOUT_NOT_INTEGER = "ERR timeout is not an integer or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"
INVALID_MASTER_PORT = "ERR Invalid master port"
REPLICAOF_FROM_REPLICA = "ERR Command is not valid when client is a replica."
READONLY_REPLICA = "READONLY You can't write against a read only replica."
NOREPLICAS = "NOREPLICAS Not enough good replicas to write."
MASTERDOWN = ("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to "
              "'no'.")

# --- geo (GEOADD, GEOSEARCH, GEORADIUS ...) ---------------------------------------------------
GEO_INVALID_PAIR = "ERR invalid longitude,latitude pair {longitude:f},{latitude:f}"
GEO_UNIT = "ERR unsupported unit provided. please use M, KM, FT, MI"
GEO_NEED_RADIUS = "ERR need numeric radius"
GEO_RADIUS_NEGATIVE = "ERR radius cannot be negative"
GEO_NEED_WIDTH = "ERR need numeric width"
GEO_NEED_HEIGHT = "ERR need numeric height"
GEO_BOX_NEGATIVE = "ERR height or width cannot be negative"
GEO_NO_MEMBER = "ERR could not decode requested zset member"
GEO_COUNT = "ERR COUNT must be > 0"
GEO_STORE_WITH = "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
GEO_FROM = "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {cmd}"
GEO_BY = "ERR exactly one of BYRADIUS and BYBOX can be specified for {cmd}"
GEO_ANY = "ERR the ANY argument requires COUNT argument"

# HyperLogLog (hyperloglog.c)
HLL_CORRUPT = "INVALIDOBJ Corrupted HLL object detected"
HLL_WRONGTYPE = "WRONGTYPE Key is not a valid HyperLogLog string value."
HLL_NO_KEY = "ERR The specified key does not exist"
HLL_NOT_SPARSE = "ERR HLL encoding is not sparse"
HLL_UNKNOWN_DEBUG = "ERR Unknown PFDEBUG subcommand '{sub}'"
HLL_TEST_REGISTER = "TESTFAILED Register {index} should be {expected} but is {found}"
HLL_TEST_SPARSE = "TESTFAILED sparse encoding not used"
HLL_TEST_DISAGREE = "TESTFAILED dense/sparse disagree"
HLL_TEST_ERROR = "TESTFAILED Too big error. card:{card} abserr:{error}"
