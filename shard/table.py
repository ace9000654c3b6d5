"""The one command table.

Every command is declared once, with the :func:`command` decorator, next to its handler:
name, arity (Redis rule: positive = exact, negative = at least, the name counts), flags, key
positions, ACL categories and how the gateway routes it.  The gateway checks names, arity and
keys from this table alone; ``COMMAND``/``COMMAND INFO``/``DOCS``/``GETKEYS`` are generated
from it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# How the gateway routes a command:
SHARD = "shard"  # to the shard that owns its key(s); cross-shard cases use ``cross``
GATEWAY = "gateway"  # answered by the gateway itself (connection state, COMMAND, CONFIG ...)
FANOUT = "fanout"  # sent to every shard, the parts combined by ``cross``
INTERNAL = "internal"  # gateway-to-shard only; clients never see it

Handler = Callable[..., Any]


@dataclass(slots=True)
class CommandSpec:
    name: str
    arity: int
    flags: tuple[str, ...]
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    acl: tuple[str, ...] = ()
    route: str = SHARD
    cross: str | None = None  # gateway strategy when keys span shards / for fan-outs
    group: str = "generic"
    since: str = "1.0.0"
    summary: str = ""
    syntax: str = ""
    handler: Handler | None = None
    keys_fn: Callable[[list[bytes]], list[int]] | None = None  # positions, for movable keys
    subcommands: dict[str, CommandSpec] = field(default_factory=dict)
    parent: CommandSpec | None = None
    # Filled in by the gateway's router: the name shards know it by (``object|encoding``) and
    # whether argv[1] is its only key (the hot path: GET, SET, INCR ...).
    wire_name: bytes = b""
    single_key: bool = False
    min_argc: int = 0
    max_argc: int = 0
    # This process' counters for the command (shard/cmdstats.py), made on its first call.
    stats: list[Any] | None = None

    @property
    def fullname(self) -> str:
        return f"{self.parent.name}|{self.name}" if self.parent else self.name

    def arity_ok(self, argc: int) -> bool:
        return argc == self.arity if self.arity > 0 else argc >= -self.arity

    def key_positions(self, argv: list[bytes]) -> list[int]:
        """Indexes in ``argv`` that hold keys (an empty list for keyless commands)."""
        if self.keys_fn is not None:
            return self.keys_fn(argv)
        if self.first_key <= 0:
            return []
        last = self.last_key if self.last_key >= 0 else len(argv) + self.last_key
        return list(range(self.first_key, min(last, len(argv) - 1) + 1, self.step))

    def is_write(self) -> bool:
        return "write" in self.flags


TABLE: dict[str, CommandSpec] = {}


def command(
    syntax: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (0, 0, 0),
    *,
    acl: str = "",
    route: str = SHARD,
    cross: str | None = None,
    group: str = "generic",
    since: str = "1.0.0",
    summary: str = "",
    keys_fn: Callable[[list[bytes]], list[int]] | None = None,
    parent: str | None = None,
) -> Callable[[Handler], Handler]:
    """Declare a command (or, with ``parent``, a subcommand) and register its handler.

    ``syntax`` is the usage line; its first word (or the first two, for subcommands) names
    the command.
    """

    words = syntax.split()
    name = (words[1] if parent else words[0]).lower()

    def register(handler: Handler) -> Handler:
        spec = CommandSpec(
            name=name,
            arity=arity,
            flags=tuple(flags.split()),
            first_key=keys[0],
            last_key=keys[1],
            step=keys[2],
            acl=tuple(acl.split()),
            route=route,
            cross=cross,
            group=group,
            since=since,
            summary=summary,
            syntax=syntax,
            handler=handler,
            keys_fn=keys_fn,
        )
        if parent:
            container = TABLE[parent]
            spec.parent = container
            container.subcommands[name] = spec
        else:
            TABLE[name] = spec
        return handler

    return register


def container(name: str, *, acl: str = "", group: str = "server", since: str = "1.0.0",
              summary: str = "", route: str = GATEWAY) -> None:
    """Declare a command that only has subcommands (``CONFIG``, ``CLIENT``, ``OBJECT`` ...)."""
    TABLE[name] = CommandSpec(
        name=name, arity=-2, flags=(), acl=tuple(acl.split()), route=route,
        group=group, since=since, summary=summary, syntax=name.upper() + " <subcommand>",
    )


def numkeys_at(index: int, first: int | None = None, after: int = 0) -> Callable[[list[bytes]], list[int]]:
    """Key positions for commands with a ``numkeys`` argument at ``index``.

    Keys follow it (``first`` overrides where they start); ``after`` extra fixed keys precede it
    (``ZUNIONSTORE dest numkeys k1 k2`` has the destination at 1).
    """

    def positions(argv: list[bytes]) -> list[int]:
        try:
            count = int(argv[index])
        except (ValueError, IndexError):
            return list(range(1, after + 1))
        start = first if first is not None else index + 1
        if count < 0 or start + count > len(argv):
            return list(range(1, after + 1))
        return list(range(1, after + 1)) + list(range(start, start + count))

    return positions


# Modules of the shard package that declare no commands.
NOT_FAMILIES = {"actor", "table", "context", "errors", "keyspace", "reply", "wire", "values",
                "numbers", "glob", "lcs", "eviction"}


def load_shard_commands() -> dict[str, CommandSpec]:
    """Import every command module of ``shard/`` so their commands register themselves.

    A new data-type module only has to exist: it is found here, and its ``@command``
    declarations join the table.
    """
    import pkgutil

    import shard

    for info in pkgutil.iter_modules(shard.__path__):
        if info.name not in NOT_FAMILIES and not info.name.startswith("_"):
            importlib.import_module(f"shard.{info.name}")
    return TABLE


def lookup(argv: list[bytes]) -> CommandSpec | None:
    """The spec for a command line, resolving a container's subcommand (None: unknown)."""
    spec = TABLE.get(argv[0].lower().decode("latin-1"))
    if spec is None or not spec.subcommands or len(argv) < 2:
        return spec
    return spec.subcommands.get(argv[1].lower().decode("latin-1"))
