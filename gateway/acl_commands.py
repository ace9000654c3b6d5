"""ACL, AUTH and HELLO AUTH: the gateway's user registry and the commands that change it.

Every gateway process holds the same users: a change (SETUSER, DELUSER, LOAD, a
``requirepass`` change) is applied here and relayed through the supervisor to the other
gateways, which apply the same change (``Gateway._from_supervisor``); the supervisor keeps the
list so a restarted gateway replays it.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.acl import (
    CATEGORIES,
    RuleError,
    User,
    all_commands,
    categories_of,
    check,
    default_user,
    merge_selector_args,
    password_hash,
)
from shard import errors
from shard.errors import RedisError
from shard.numbers import string2ll
from shard.reply import OK
from shard.table import GATEWAY, Handler, command, container, lookup

if TYPE_CHECKING:
    from gateway.connection import ClientConnection

G = GATEWAY
LOG_MAX = 128  # acllog-max-len's default
NOPERM_COMMAND = "NOPERM this user has no permissions to run the '{}' command"
NOPERM_KEY = "NOPERM this user has no permissions to access one of the keys used as arguments"
NOPERM_CHANNEL = ("NOPERM this user has no permissions to access one of the channels used as "
                  "arguments")


class AclState:
    """The users of this gateway process and its ACL LOG."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.users: dict[bytes, User] = {b"default": default_user()}
        self.log: list[dict[str, Any]] = []
        self.apply_requirepass(str(config.get("requirepass") or ""))

    def apply_requirepass(self, password: str) -> None:
        user = self.users[b"default"]
        user.apply(b"resetpass")
        user.apply(b">" + password.encode("latin-1") if password else b"nopass")

    def setuser(self, name: bytes, rules: list[bytes]) -> None:
        """Apply every rule to a copy, so a bad rule changes nothing (as in Redis)."""
        current = self.users.get(name)
        staged = current.copy() if current is not None else User(name)
        try:
            merged = merge_selector_args(rules)
        except RuleError as exc:
            raise RedisError(f"ERR {exc}") from None
        for rule in merged:
            try:
                staged.apply(rule)
            except RuleError as exc:
                raise RedisError(f"ERR Error in ACL SETUSER modifier '{rule.decode('latin-1')}': "
                                 f"{exc}") from None
        self.users[name] = staged

    def add_log(self, reason: str, conn: ClientConnection, obj: bytes, username: bytes,
                context: str = "toplevel") -> None:
        from gateway.commands import client_line

        for entry in self.log:
            if (entry["reason"], entry["context"], entry["object"], entry["username"]) == (
                    reason, context, obj, username):
                entry["count"] += 1
                entry["time"] = time.time()
                entry["cinfo"] = client_line(conn, conn)
                self.log.remove(entry)
                self.log.insert(0, entry)
                return
        self.log.insert(0, {"count": 1, "reason": reason, "context": context, "object": obj,
                            "username": username, "time": time.time(),
                            "cinfo": client_line(conn, conn)})
        del self.log[int(self.config.get("acllog-max-len") or LOG_MAX):]


def refresh_connections(gateway: Any) -> None:
    """After a user changed: who may take the fast path, and who must go (deleted users)."""
    users = gateway.acl.users
    for conn in list(gateway.clients.values()):
        user = users.get(conn.user)
        if user is None or (not user.enabled and conn.authenticated):
            conn.close_after_reply = True
            conn.close() if not conn.replies else None
            continue
        conn.fast_path = conn.authenticated and user.unrestricted


def permission_error(conn: ClientConnection, spec: Any, argv: list[bytes]) -> RedisError | None:
    """The NOPERM error for a restricted user's command (logged in ACL LOG), or None."""
    acl = conn.gateway.acl
    user = acl.users.get(conn.user)
    if user is None:
        return RedisError(NOPERM_COMMAND.format(spec.fullname))
    denial = check(user, spec, argv)
    if denial is None:
        return None
    why, position = denial
    context = "multi" if conn.multi is not None else "toplevel"
    obj = spec.fullname.encode() if why == "command" else argv[position]
    acl.add_log(why, conn, obj, conn.user, context)
    if why == "command":
        return RedisError(NOPERM_COMMAND.format(spec.fullname))
    return RedisError(NOPERM_KEY if why == "key" else NOPERM_CHANNEL)


def authenticate(conn: ClientConnection, name: bytes, password: bytes) -> None:
    acl = conn.gateway.acl
    user = acl.users.get(name)
    if user is None or not user.check_password(password):
        acl.add_log("auth", conn, b"AUTH", name)
        raise RedisError(errors.WRONGPASS)
    conn.user = name
    conn.authenticated = True
    conn.parser.authenticated = True
    conn.fast_path = user.unrestricted


def relay(conn: ClientConnection, argv: list[bytes]) -> None:
    """Send a user change to the other gateways (see the module doc)."""
    gateway = conn.gateway
    refresh_connections(gateway)
    if gateway.supervisor is not None:
        gateway.supervisor.send(("acl", [bytes(a) for a in argv]))


def apply_relayed(gateway: Any, argv: list[bytes]) -> None:
    """Apply a change another gateway made (ACL SETUSER/DELUSER/LOAD)."""
    acl = gateway.acl
    sub = argv[1].lower()
    try:
        if sub == b"setuser":
            acl.setuser(argv[2], argv[3:])
        elif sub == b"deluser":
            for name in argv[2:]:
                acl.users.pop(name, None)
        elif sub == b"load":
            acl.users = load_file(acl, str(gateway.config.get("aclfile")))
    except RedisError:
        pass  # it failed where it was made too, and changed nothing there
    refresh_connections(gateway)


# --- the aclfile ---------------------------------------------------------------------------

def load_file(acl: AclState, path: str) -> dict[bytes, User]:
    staged = AclState(acl.config)
    seen: set[bytes] = set()
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        words = line.split()
        if words[0] != b"user" or len(words) < 2:
            raise RedisError(f"ERR /{path}:{number}: line should start with user keyword")
        if words[1] in seen:
            raise RedisError(f"ERR {path}:{number}: Duplicate user '{words[1].decode('latin-1')}' found")
        seen.add(words[1])
        staged.users.pop(words[1], None) if words[1] == b"default" else None
        try:
            staged.setuser(words[1], words[2:])
        except RedisError as exc:
            raise RedisError(f"ERR {path}:{number}: {str(exc)[4:]}") from None
    if b"default" not in seen:
        staged.users[b"default"] = default_user()
    return staged.users


def save_file(acl: AclState, path: str) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="latin-1") as f:
        for name in sorted(acl.users):
            f.write(f"user {name.decode('latin-1')} {acl.users[name].describe()}\n")
    os.replace(temporary, path)


# --- commands ------------------------------------------------------------------------------

container("acl", acl="@slow", group="server", since="6.0.0",
          summary="A container for Access List Control commands")


def _acl_command(syntax: str, arity: int, summary: str, flags: str = "admin noscript loading stale",
                 acl: str = "@admin @slow @dangerous") -> Callable[[Handler], Handler]:
    return command(syntax, arity, flags, acl=acl, route=G, parent="acl", since="6.0.0",
                   summary=summary)


@_acl_command("ACL SETUSER username [rule [rule ...]]", -3, "Modify or create the rules for a specific ACL user")
def acl_setuser(conn: ClientConnection, argv: list[bytes]) -> Any:
    conn.gateway.acl.setuser(argv[2], argv[3:])
    relay(conn, argv)
    return OK


@_acl_command("ACL DELUSER username [username ...]", -3, "Remove the specified ACL users and the associated rules")
def acl_deluser(conn: ClientConnection, argv: list[bytes]) -> Any:
    users = conn.gateway.acl.users
    if b"default" in argv[2:]:
        raise RedisError("ERR The 'default' user cannot be removed")
    removed = sum(users.pop(name, None) is not None for name in dict.fromkeys(argv[2:]))
    relay(conn, argv)
    return removed


@_acl_command("ACL GETUSER username", 3, "Get the rules for a specific ACL user")
def acl_getuser(conn: ClientConnection, argv: list[bytes]) -> Any:
    user = conn.gateway.acl.users.get(argv[2])
    if user is None:
        return None

    def selector_fields(selector: Any) -> dict[bytes, Any]:
        keys = "~*" if selector.all_keys else " ".join(
            s for s in selector.describe().split() if s[:1] in ("~", "%"))
        channels = "&*" if selector.all_channels else " ".join(
            "&" + c.decode("latin-1") for c in selector.channels)
        return {b"commands": selector.describe_commands().encode(), b"keys": keys.encode(),
                b"channels": channels.encode()}

    flags = [b"on" if user.enabled else b"off"] + ([b"nopass"] if user.nopass else [])
    return {b"flags": flags, b"passwords": [p.encode() for p in user.passwords],
            **selector_fields(user.root),
            b"selectors": [selector_fields(s) for s in user.selectors]}


@_acl_command("ACL LIST", 2, "List the current ACL rules in ACL config file format")
def acl_list(conn: ClientConnection, argv: list[bytes]) -> Any:
    users = conn.gateway.acl.users
    return [b"user " + name + b" " + users[name].describe().encode("latin-1")
            for name in sorted(users)]


@_acl_command("ACL USERS", 2, "List the username of all the configured ACL rules")
def acl_users(conn: ClientConnection, argv: list[bytes]) -> Any:
    return sorted(conn.gateway.acl.users)


@_acl_command("ACL WHOAMI", 2, "Return the name of the user associated to the current connection",
              flags="noscript loading stale", acl="@slow")
def acl_whoami(conn: ClientConnection, argv: list[bytes]) -> Any:
    return conn.user


@_acl_command("ACL CAT [categoryname]", -2, "List the ACL categories or the commands inside a category",
              flags="noscript loading stale", acl="@slow")
def acl_cat(conn: ClientConnection, argv: list[bytes]) -> Any:
    if len(argv) == 2:
        return [c.encode() for c in CATEGORIES]
    if len(argv) > 3:
        raise RedisError(errors.SYNTAX)
    category = argv[2].decode("latin-1").lower()
    if category not in CATEGORIES:
        raise RedisError(f"ERR Unknown category '{argv[2].decode('latin-1')[:128]}'")
    return [name.encode() for name, spec in all_commands().items()
            if category in categories_of(spec)]


@_acl_command("ACL GENPASS [bits]", -2, "Generate a pseudorandom secure password to use for ACL users",
              flags="noscript loading stale", acl="@slow")
def acl_genpass(conn: ClientConnection, argv: list[bytes]) -> Any:
    bits = 256
    if len(argv) == 3:
        parsed = string2ll(argv[2])
        if parsed is None:
            raise RedisError(errors.NOT_INTEGER)
        bits = parsed
    elif len(argv) > 3:
        raise RedisError(errors.SYNTAX)
    if bits <= 0 or bits > 4096:
        raise RedisError("ERR ACL GENPASS argument must be the number of bits for the output "
                         "password, a positive number up to 4096")
    return secrets.token_hex(64)[:(bits + 3) // 4].encode() if bits <= 256 else \
        secrets.token_hex(512)[:(bits + 3) // 4].encode()


@_acl_command("ACL LOG [count | RESET]", -2, "List latest events denied because of ACLs in place")
def acl_log(conn: ClientConnection, argv: list[bytes]) -> Any:
    acl = conn.gateway.acl
    count = 10
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            acl.log.clear()
            return OK
        parsed = string2ll(argv[2])
        if parsed is None:
            raise RedisError(errors.NOT_INTEGER)
        count = max(parsed, 0)
    elif len(argv) > 3:
        raise RedisError(errors.SYNTAX)
    now = time.time()
    return [{b"count": e["count"], b"reason": e["reason"].encode(),
             b"context": e["context"].encode(), b"object": e["object"],
             b"username": e["username"], b"age-seconds": round(now - e["time"], 3),
             b"client-info": e["cinfo"]} for e in acl.log[:count]]


@_acl_command("ACL DRYRUN username command [arg [arg ...]]", -4,
              "Returns whether the user can execute the given command without executing the command.")
def acl_dryrun(conn: ClientConnection, argv: list[bytes]) -> Any:
    user = conn.gateway.acl.users.get(argv[2])
    if user is None:
        raise RedisError(f"ERR User '{argv[2].decode('latin-1')}' not found")
    spec = lookup(argv[3:])
    if spec is None or spec.route == "internal":
        raise RedisError(f"ERR Command '{argv[3].decode('latin-1')}' not found")
    if not spec.arity_ok(len(argv) - 3):
        raise RedisError(f"ERR wrong number of arguments for '{spec.fullname}' command")
    denial = check(user, spec, argv[3:])
    if denial is None:
        return OK
    why, position = denial
    if why == "command":
        return f"This user has no permissions to run the '{spec.fullname}' command".encode()
    target = argv[3 + position].decode("latin-1")
    return f"This user has no permissions to access the '{target}' {why}".encode()


def _aclfile(conn: ClientConnection) -> str:
    path = str(conn.gateway.config.get("aclfile") or "")
    if not path:
        raise RedisError(
            "ERR This Redis instance is not configured to use an ACL file. You may want to "
            "specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming "
            "you have a Redis configuration file set) in order to store users in the Redis "
            "configuration.")
    return path


@_acl_command("ACL LOAD", 2, "Reload the ACLs from the configured ACL file")
def acl_load(conn: ClientConnection, argv: list[bytes]) -> Any:
    acl = conn.gateway.acl
    try:
        acl.users = load_file(acl, _aclfile(conn))
    except OSError as exc:
        raise RedisError(f"ERR Error loading ACLs, opening file '{_aclfile(conn)}': "
                         f"{exc.strerror}") from None
    relay(conn, argv)
    return OK


@_acl_command("ACL SAVE", 2, "Save the current ACL rules in the configured ACL file")
def acl_save(conn: ClientConnection, argv: list[bytes]) -> Any:
    try:
        save_file(conn.gateway.acl, _aclfile(conn))
    except OSError:
        raise RedisError("ERR There was an error trying to save the ACLs. Please check the "
                         "server logs for more information") from None
    return OK


def password_digest(password: bytes) -> str:
    return password_hash(password)
