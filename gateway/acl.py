"""ACL users and their permissions: the model, the rule parser and the describer.

A user has flags (on/off, nopass), SHA-256 password hashes, and selectors: the root one and
any number of ``(...)`` ones; a command is allowed when one selector allows the command,
all its keys and all its channels.  A selector's commands are a set of full names
(``get``, ``config|get``) plus a flag saying that ``+@all`` was applied last, so commands
added later are allowed too.  Descriptions (ACL LIST, GETUSER, the aclfile) are rebuilt from
that set with Redis' best-fit-categories method, so equal permissions print the same way.

The gateway checks permissions before routing, only for connections whose user is
restricted (``ClientConnection.fast_path`` is False): the default unrestricted user pays
nothing on the hot path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from shard.glob import stringmatch
from shard.table import TABLE, CommandSpec

CATEGORIES = ["keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
              "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
              "blocking", "dangerous", "connection", "transaction", "scripting"]
READ, WRITE = 1, 2

ERR_UNKNOWN = "Unknown command or category name in ACL"
ERR_SYNTAX = "Syntax error"
ERR_KEYS_AFTER_ALL = ("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid "
                      "and does not have any effect. Try 'resetkeys' to start with an empty list "
                      "of patterns")
ERR_CHANNELS_AFTER_ALL = ("Adding a pattern after the * pattern (or the 'allchannels' flag) is not "
                          "valid and does not have any effect. Try 'resetchannels' to start with "
                          "an empty list of channels")
ERR_NO_SUCH_PASS = "The password you are trying to remove from the user does not exist"
ERR_BAD_HASH = ("The password hash must be exactly 64 characters and contain only lowercase "
                "hexadecimal characters")
ERR_SUBCOMMAND_FIRSTARG = "Allowing first-arg of a subcommand is not supported"


class RuleError(Exception):
    """A rule that cannot be applied; the message is Redis' explanation."""


def all_commands() -> dict[str, CommandSpec]:
    """Every client-visible command and subcommand by full name."""
    out: dict[str, CommandSpec] = {}
    for name, spec in TABLE.items():
        if spec.route == "internal":
            continue
        out[name] = spec
        for sub, sub_spec in spec.subcommands.items():
            out[f"{name}|{sub}"] = sub_spec
    return out


def categories_of(spec: CommandSpec) -> set[str]:
    own = {c[1:] for c in spec.acl if c.startswith("@")}
    if spec.parent is not None and not own:
        own = {c[1:] for c in spec.parent.acl if c.startswith("@")}
    return own


def commands_in(category: str) -> set[str]:
    return {name for name, spec in all_commands().items() if category in categories_of(spec)}


def password_hash(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


@dataclass
class Selector:
    commands: set[str] = field(default_factory=set)
    future: bool = False  # +@all (allcommands) is in effect: new commands are allowed
    first_args: dict[str, set[bytes]] = field(default_factory=dict)
    all_keys: bool = False
    keys: list[tuple[bytes, int]] = field(default_factory=list)
    all_channels: bool = False
    channels: list[bytes] = field(default_factory=list)

    def copy(self) -> Selector:
        return Selector(set(self.commands), self.future,
                        {k: set(v) for k, v in self.first_args.items()}, self.all_keys,
                        list(self.keys), self.all_channels, list(self.channels))

    # --- rules ---------------------------------------------------------------------------

    def apply(self, rule: bytes) -> None:
        op = rule.decode("latin-1")
        low = op.lower()
        if low in ("allkeys", "~*"):
            self.all_keys, self.keys = True, []
        elif low == "resetkeys":
            self.all_keys, self.keys = False, []
        elif low in ("allchannels", "&*"):
            self.all_channels, self.channels = True, []
        elif low == "resetchannels":
            self.all_channels, self.channels = False, []
        elif low in ("allcommands", "+@all"):
            self.commands, self.future, self.first_args = set(all_commands()), True, {}
        elif low in ("nocommands", "-@all"):
            self.commands, self.future, self.first_args = set(), False, {}
        elif op[:1] in ("~", "%"):
            self._add_key_pattern(rule)
        elif op[:1] == "&":
            if self.all_channels:
                raise RuleError(ERR_CHANNELS_AFTER_ALL)
            if b" " in rule:
                raise RuleError(ERR_SYNTAX)
            if rule[1:] not in self.channels:
                self.channels.append(rule[1:])
        elif op[:2] in ("+@", "-@"):
            if low[2:] not in CATEGORIES:
                raise RuleError(ERR_UNKNOWN)
            names = commands_in(low[2:])
            if op[0] == "+":
                self.commands |= names
            else:
                self.commands -= names
            for name in names:
                self.first_args.pop(name, None)
        elif op[:1] in ("+", "-"):
            self._command_rule(op[0] == "+", low[1:])
        else:
            raise RuleError(ERR_SYNTAX)

    def _add_key_pattern(self, rule: bytes) -> None:
        if self.all_keys:
            raise RuleError(ERR_KEYS_AFTER_ALL)
        flags, offset = READ | WRITE, 1
        if rule[:1] == b"%":
            flags = 0
            for offset in range(1, len(rule) + 1):
                ch = rule[offset:offset + 1].upper()
                if ch == b"R" and not flags & READ:
                    flags |= READ
                elif ch == b"W" and not flags & WRITE:
                    flags |= WRITE
                elif ch == b"~":
                    offset += 1
                    break
                else:
                    raise RuleError(ERR_SYNTAX)
            else:
                raise RuleError(ERR_SYNTAX)
        pattern = rule[offset:]
        if b" " in pattern:
            raise RuleError(ERR_SYNTAX)
        for i, (existing, existing_flags) in enumerate(self.keys):
            if existing == pattern:
                self.keys[i] = (pattern, existing_flags | flags)
                return
        self.keys.append((pattern, flags))

    def _command_rule(self, allow: bool, name: str) -> None:
        known = all_commands()
        if "|" in name:
            parent, _, sub = name.rpartition("|")
            if parent not in known:
                raise RuleError(ERR_UNKNOWN)
            if "|" in parent:
                raise RuleError(ERR_SUBCOMMAND_FIRSTARG)
            if not sub:
                raise RuleError(ERR_SYNTAX)
            if name not in known:
                if not allow or known[parent].subcommands:
                    raise RuleError(ERR_UNKNOWN if known[parent].subcommands else ERR_SYNTAX)
                self.first_args.setdefault(parent, set()).add(sub.encode("latin-1"))
                return
        elif name not in known:
            raise RuleError(ERR_UNKNOWN)
        spec = known[name]
        names = {name} | {f"{name}|{s}" for s in spec.subcommands}
        if allow:
            self.commands |= names
        else:
            self.commands -= names
        self.first_args.pop(name, None)

    # --- checks --------------------------------------------------------------------------

    def allows_command(self, spec: CommandSpec, argv: list[bytes]) -> bool:
        name = spec.fullname
        if name in self.commands:
            return True
        allowed = self.first_args.get(name)
        return bool(allowed and len(argv) > 1 and argv[1].lower() in allowed)

    def allows_key(self, key: bytes, needed: int) -> bool:
        if self.all_keys:
            return True
        return any(flags & needed == needed and stringmatch(pattern, key)
                   for pattern, flags in self.keys)

    def allows_channel(self, channel: bytes, literal: bool) -> bool:
        if self.all_channels:
            return True
        if literal:  # PSUBSCRIBE patterns must equal an allowed pattern
            return channel in self.channels
        return any(stringmatch(pattern, channel) for pattern in self.channels)

    # --- description ---------------------------------------------------------------------

    def describe(self) -> str:
        parts = []
        if self.all_keys:
            parts.append("~*")
        else:
            parts += [_key_pattern_text(p, f) for p, f in self.keys]
        if self.all_channels:
            parts.append("&*")
        else:
            parts.append("resetchannels")
            parts += ["&" + c.decode("latin-1") for c in self.channels]
        parts.append(self.describe_commands())
        return " ".join(parts)

    def describe_commands(self) -> str:
        """Rules that rebuild exactly this command set (Redis' best-fit categories)."""
        universe = all_commands()
        additive = not self.future
        rules = ["-@all" if additive else "+@all"]
        fake = set() if additive else set(universe)
        remaining = set(self.commands)  # the temp selector of Redis' method
        applied: set[str] = set()
        members = {cat: commands_in(cat) for cat in CATEGORIES}
        while True:
            best, mindiff, maxsame = None, 1 << 30, 0
            for cat in CATEGORIES:
                if cat in applied:
                    continue
                on = len(members[cat] & remaining)
                off = len(members[cat]) - on
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (diff < mindiff or (diff == mindiff and same > maxsame)):
                    best, mindiff, maxsame = cat, diff, same
            if best is None:
                break
            if additive:
                fake |= members[best]
                remaining -= members[best]
                rules.append("+@" + best)
            else:
                fake -= members[best]
                remaining |= members[best]
                rules.append("-@" + best)
            applied.add(best)
        for name in sorted(universe, key=_table_order(universe)):
            mine, theirs = name in self.commands, name in fake
            if mine != theirs:
                rules.append(("+" if mine else "-") + name)
                if mine:
                    fake.add(name)
                else:
                    fake.discard(name)
            if not mine:
                for arg in sorted(self.first_args.get(name, ())):
                    rules.append(f"+{name}|{arg.decode('latin-1')}")
        return " ".join(rules)


def _table_order(universe: dict[str, CommandSpec]) -> Any:
    order = {name: i for i, name in enumerate(universe)}
    return lambda name: order[name]


def _key_pattern_text(pattern: bytes, flags: int) -> str:
    text = pattern.decode("latin-1")
    if flags == READ | WRITE:
        return "~" + text
    return ("%R~" if flags == READ else "%W~") + text


@dataclass
class User:
    name: bytes
    enabled: bool = False
    nopass: bool = False
    passwords: list[str] = field(default_factory=list)
    root: Selector = field(default_factory=Selector)
    selectors: list[Selector] = field(default_factory=list)

    def copy(self) -> User:
        return User(self.name, self.enabled, self.nopass, list(self.passwords), self.root.copy(),
                    [s.copy() for s in self.selectors])

    @property
    def unrestricted(self) -> bool:
        root = self.root
        return (self.enabled and root.future and root.all_keys and root.all_channels
                and root.commands >= set(all_commands()))

    def check_password(self, password: bytes) -> bool:
        if not self.enabled:
            return False
        return self.nopass or password_hash(password) in self.passwords

    def describe(self) -> str:
        flags = ["on" if self.enabled else "off"] + (["nopass"] if self.nopass else [])
        text = " ".join(flags + ["#" + p for p in self.passwords] + [self.root.describe()])
        for selector in self.selectors:
            text += f" ({selector.describe()})"
        return text

    def apply(self, rule: bytes) -> None:
        low = rule.lower()
        if low == b"on":
            self.enabled = True
        elif low == b"off":
            self.enabled = False
        elif low in (b"skip-sanitize-payload", b"sanitize-payload"):
            pass
        elif low == b"nopass":
            self.nopass, self.passwords = True, []
        elif low == b"resetpass":
            self.nopass, self.passwords = False, []
        elif rule[:1] in (b">", b"<", b"#", b"!"):
            self._password_rule(rule)
        elif low == b"clearselectors":
            self.selectors = []
        elif low == b"reset":
            self.enabled, self.nopass, self.passwords = False, False, []
            self.root, self.selectors = Selector(), []
        elif rule[:1] == b"(" and rule[-1:] == b")":
            selector = Selector()
            for part in rule[1:-1].split():
                selector.apply(part)
            self.selectors.append(selector)
        else:
            self.root.apply(rule)

    def _password_rule(self, rule: bytes) -> None:
        kind, rest = rule[:1], rule[1:]
        if kind in (b">", b"<"):
            digest = password_hash(rest)
        else:
            digest = rest.decode("latin-1")
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise RuleError(ERR_BAD_HASH)
        if kind in (b">", b"#"):
            if digest not in self.passwords:
                self.passwords.append(digest)
            self.nopass = False
        elif digest in self.passwords:
            self.passwords.remove(digest)
        else:
            raise RuleError(ERR_NO_SUCH_PASS)


def default_user() -> User:
    user = User(b"default", enabled=True, nopass=True)
    for rule in (b"~*", b"&*", b"+@all"):
        user.apply(rule)
    return user


def merge_selector_args(args: list[bytes]) -> list[bytes]:
    """Join ``(`` ... ``)`` arguments split by the client into one rule, as Redis does."""
    out: list[bytes] = []
    pending: list[bytes] | None = None
    for arg in args:
        if pending is not None:
            pending.append(arg)
            if arg.endswith(b")"):
                out.append(b" ".join(pending))
                pending = None
        elif arg.startswith(b"(") and not arg.endswith(b")"):
            pending = [arg]
        else:
            out.append(arg)
    if pending is not None:
        raise RuleError(f"Unmatched parenthesis in acl selector starting at "
                        f"'{pending[0].decode('latin-1')}'.")
    return out


# --- permission checks -----------------------------------------------------------------

DENIED_COMMAND, DENIED_KEY, DENIED_CHANNEL = "command", "key", "channel"
_CHANNEL_COMMANDS = {"publish": (1, 2, False), "spublish": (1, 2, False),
                     "subscribe": (1, 0, False), "ssubscribe": (1, 0, False),
                     "psubscribe": (1, 0, True)}


def check(user: User, spec: CommandSpec, argv: list[bytes]) -> tuple[str, int] | None:
    """None if ``user`` may run ``argv``; else (why, index of the refused argument)."""
    denial: tuple[str, int] | None = None
    for selector in [user.root, *user.selectors]:
        why = _check_selector(selector, spec, argv)
        if why is None:
            return None
        if denial is None or (why[0] != DENIED_COMMAND and denial[0] == DENIED_COMMAND):
            denial = why
    return denial


def _check_selector(selector: Selector, spec: CommandSpec,
                    argv: list[bytes]) -> tuple[str, int] | None:
    if not selector.allows_command(spec, argv):
        return DENIED_COMMAND, 0
    if not selector.all_keys:
        needed = WRITE if spec.is_write() else READ
        if spec.name in _READ_WRITE:
            needed = READ | WRITE
        for position in spec.key_positions(argv):
            if not selector.allows_key(argv[position], needed):
                return DENIED_KEY, position
    channel_rule = _CHANNEL_COMMANDS.get(spec.name)
    if channel_rule is not None and not selector.all_channels:
        first, end, literal = channel_rule
        last = end if end else len(argv)
        for position in range(first, last):
            if not selector.allows_channel(argv[position], literal):
                return DENIED_CHANNEL, position
    return None


# Writes that return their key's data (Redis' ACCESS key flag): %W~ alone is not enough.
_READ_WRITE = {"incr", "incrby", "decr", "decrby", "incrbyfloat", "getset", "getdel", "getex",
               "lpop", "rpop", "spop", "zpopmin", "zpopmax", "hincrby", "hincrbyfloat", "zincrby",
               "rpoplpush", "lmove", "blpop", "brpop", "blmove", "brpoplpush", "bzpopmin",
               "bzpopmax", "lmpop", "zmpop", "blmpop", "bzmpop"}
