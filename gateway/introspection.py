"""INFO and COMMAND, generated from live counters and from the command table."""

from __future__ import annotations

import os
import platform
import resource
import time
from typing import TYPE_CHECKING, Any

from gateway import cross, peers, stats_commands
from shard import errors
from shard.errors import RedisError
from shard.glob import stringmatch
from shard.reply import Verbatim
from shard.table import GATEWAY, TABLE, CommandSpec, command

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.server import Gateway

G = GATEWAY
DEFAULT_SECTIONS = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu",
                    "modules", "errorstats", "cluster", "keyspace"]
ALL_EXTRA = ["commandstats", "latencystats"]


@command("INFO [section [section ...]]", -1, "loading stale", acl="@slow @dangerous",
         route=G, group="server", summary="Get information and statistics about the server")
def info(conn: ClientConnection, argv: list[bytes]) -> Any:
    wanted = [a.decode("latin-1").lower() for a in argv[1:]] or ["default"]
    sections: list[str] = []
    for name in wanted:
        if name == "default":
            sections += DEFAULT_SECTIONS
        elif name in ("all", "everything"):
            sections += DEFAULT_SECTIONS + ALL_EXTRA
        else:
            sections.append(name)
    return _info_text(conn, list(dict.fromkeys(sections)))


async def _info_text(conn: ClientConnection, sections: list[str]) -> Any:
    gw = conn.gateway
    parts = await cross.all_shards(gw, conn, [b"__info"])
    shards = [p for p in parts if isinstance(p, dict)]
    # The other gateways' counters join the shards' parts (gateway/peers.py).
    gw.peer_counters = [a for a in await gw.peers.ask("counters") if isinstance(a, dict)]
    if gw.repl_link is not None and {"replication", "stats"} & set(sections):
        try:  # the replication actor's numbers
            gw.repl_info = await gw.repl_link.request("info")
        except RedisError:
            gw.repl_info = {}  # the actor is restarting: INFO still answers
    if "stats" in sections:  # channels and patterns are counted over every gateway
        counts = await gw.pubsub.query(b"stats", [])
        gw.pubsub_stats = counts if isinstance(counts, list) else [0, 0]
    blocks = []
    for name in sections:
        build = _SECTIONS.get(name)
        if build is not None:
            fields = build(gw, shards)
            body = "".join(f"{k}:{v}\r\n" for k, v in fields)
            blocks.append(f"# {name.capitalize() if name != 'cpu' else 'CPU'}\r\n{body}")
    text = "\r\n".join(blocks).encode()
    return Verbatim(text)


def _server(gw: Gateway, shards: list[dict[bytes, Any]]) -> list[tuple[str, Any]]:
    uptime = int(time.time() - gw.started)
    return [
        ("redis_version", "7.0.15"), ("redis_git_sha1", "00000000"), ("redis_git_dirty", 0),
        ("redis_build_id", "atoll"), ("redis_mode", "standalone"),
        ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("arch_bits", 64), ("monotonic_clock", "POSIX clock_gettime"),
        ("multiplexing_api", "epoll"), ("atomicvar_api", "c11-builtin"),
        ("gcc_version", "0.0.0"), ("process_id", os.getppid()),
        ("process_supervised", "no"), ("run_id", gw.run_id), ("tcp_port", gw.port),
        ("server_time_usec", time.time_ns() // 1000), ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400), ("hz", gw.config.value("hz")),
        ("configured_hz", gw.config.value("hz")), ("lru_clock", int(time.time()) & 0xFFFFFF),
        ("executable", gw.executable), ("config_file", gw.config.config_file or ""),
        ("io_threads_active", 0), ("atoll_version", "0.1.0"), ("atoll_shards", len(gw.links.links)),
        ("atoll_gateways", gw.config.value("gateways")),
    ]


def _clients(gw: Gateway, shards: list[dict[bytes, Any]]) -> list[tuple[str, Any]]:
    return [
        ("connected_clients", gw.limits.total_clients()), ("cluster_connections", 0),
        ("maxclients", gw.config.value("maxclients")), ("client_recent_max_input_buffer", 0),
        ("client_recent_max_output_buffer", 0), ("blocked_clients", gw.blocked_clients()),
        ("tracking_clients", 0), ("clients_in_timeout_table", 0),
    ]


def _human(size: int) -> str:
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.2f}{unit}"
    return f"{size}B"


def _memory(gw: Gateway, shards: list[dict[bytes, Any]]) -> list[tuple[str, Any]]:
    """Shards hold the data, so used_memory is what their allocators hand out (see
    shard/eviction.py); the gateways' own memory is reported apart."""

    def total(name: bytes) -> int:
        return sum(int(s.get(name, 0)) for s in shards)

    used, rss, peak = total(b"used_memory"), total(b"used_memory_rss"), total(b"used_memory_peak")
    startup = total(b"used_memory_startup")
    maxmemory = int(gw.config.value("maxmemory"))
    ratio = f"{rss / used:.2f}" if used else "0.00"
    return [
        ("used_memory", used), ("used_memory_human", _human(used)), ("used_memory_rss", rss),
        ("used_memory_rss_human", _human(rss)), ("used_memory_peak", peak),
        ("used_memory_peak_human", _human(peak)),
        ("used_memory_peak_perc", f"{100 * used / peak:.2f}%" if peak else "0.00%"),
        ("used_memory_overhead", startup), ("used_memory_startup", startup),
        ("used_memory_dataset", max(used - startup, 0)),
        ("used_memory_dataset_perc",
         f"{100 * max(used - startup, 0) / used:.2f}%" if used else "0.00%"),
        ("total_system_memory", _system_memory()),
        ("total_system_memory_human", _human(_system_memory())),
        ("used_memory_lua", 31744), ("used_memory_vm_eval", 31744),
        ("used_memory_lua_human", "31.00K"), ("used_memory_scripts_eval", 0),
        ("number_of_cached_scripts", 0), ("number_of_functions", 0), ("number_of_libraries", 0),
        ("used_memory_vm_functions", 32768), ("used_memory_vm_total", 64512),
        ("used_memory_vm_total_human", "63.00K"), ("used_memory_functions", 184),
        ("used_memory_scripts", 184), ("used_memory_scripts_human", "184B"),
        ("maxmemory", maxmemory), ("maxmemory_human", _human(maxmemory)),
        ("maxmemory_policy", gw.config.get("maxmemory-policy")),
        ("allocator_allocated", used), ("allocator_active", rss), ("allocator_resident", rss),
        ("mem_fragmentation_ratio", ratio), ("mem_fragmentation_bytes", rss - used),
        ("mem_not_counted_for_evict", 0), ("mem_replication_backlog", 0),
        ("mem_total_replication_buffers", 0), ("mem_clients_slaves", 0),
        ("mem_clients_normal", sum(c.output_bytes() for c in gw.clients.values())),
        ("mem_cluster_links", 0), ("mem_aof_buffer", 0), ("mem_allocator", "pymalloc+libc"),
        ("active_defrag_running", 0), ("lazyfree_pending_objects", 0),
        ("lazyfreed_objects", 0), ("atoll_gateway_rss", _rss()),
        ("atoll_shard_used_memory", ",".join(str(int(s.get(b"used_memory", 0))) for s in shards)),
        ("atoll_shard_maxmemory", ",".join(str(int(s.get(b"maxmemory_shard", 0))) for s in shards)),
    ]


def _system_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _persistence(gw: Gateway, shards: list[dict[bytes, Any]]) -> list[tuple[str, Any]]:
    parts = [s[b"persistence"] for s in shards]

    def total(name: bytes) -> int:
        return sum(int(p[name]) for p in parts)

    failed = any(p[b"last_status"] != b"ok" for p in parts)
    return [
        ("loading", 0), ("async_loading", 0), ("rdb_changes_since_last_save", total(b"dirty")),
        ("rdb_bgsave_in_progress", int(any(p[b"in_progress"] for p in parts))),
        ("rdb_last_save_time", max(int(p[b"last_save"]) for p in parts)),
        ("rdb_last_bgsave_status", "err" if failed else "ok"),
        ("rdb_last_bgsave_time_sec", max(int(p[b"last_duration"]) for p in parts)),
        ("rdb_current_bgsave_time_sec", max(int(p[b"current_duration"]) for p in parts)),
        ("rdb_saves", min(int(p[b"saves"]) for p in parts)),
        ("rdb_last_cow_size", 0),
        ("rdb_last_load_keys_expired", total(b"load_expired")),
        ("rdb_last_load_keys_loaded", total(b"loaded")),
        *aof_fields(parts),
    ]


def aof_fields(parts: list[dict[bytes, Any]]) -> list[tuple[str, Any]]:
    """INFO's aof_* fields over every shard's log (sums, or the worst state)."""
    def most(name: bytes) -> int:
        return max(int(p.get(name, 0)) for p in parts)

    def total(name: bytes) -> int:
        return sum(int(p.get(name, 0)) for p in parts)

    def status(name: bytes) -> str:
        return "err" if any(p.get(name, b"ok") != b"ok" for p in parts) else "ok"

    enabled = most(b"aof_enabled")
    fields: list[tuple[str, Any]] = [
        ("aof_enabled", enabled), ("aof_rewrite_in_progress", most(b"aof_rewrite_in_progress")),
        ("aof_rewrite_scheduled", most(b"aof_rewrite_scheduled")),
        ("aof_last_rewrite_time_sec", most(b"aof_last_rewrite_time_sec") if parts else -1),
        ("aof_current_rewrite_time_sec", most(b"aof_current_rewrite_time_sec") if parts else -1),
        ("aof_last_bgrewrite_status", status(b"aof_last_bgrewrite_status")),
        ("aof_rewrites", min(int(p.get(b"aof_rewrites", 0)) for p in parts)),
        ("aof_rewrites_consecutive_failures", most(b"aof_rewrites_consecutive_failures")),
        ("aof_last_write_status", status(b"aof_last_write_status")),
        ("aof_last_cow_size", 0), ("module_fork_in_progress", 0), ("module_fork_last_cow_size", 0),
    ]
    if enabled:
        fields += [("aof_current_size", total(b"aof_current_size")),
                   ("aof_base_size", total(b"aof_base_size")), ("aof_pending_rewrite", 0),
                   ("aof_buffer_length", 0), ("aof_pending_bio_fsync", 0),
                   ("aof_delayed_fsync", total(b"aof_delayed_fsync"))]
    return fields


def gateway_counters(gw: Gateway, args: Any = None) -> dict[str, Any]:
    """This gateway's counters, as the gateway answering INFO asks the others for them."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {**gw.stats, **gw.instantaneous.counters(), "cpu": [usage.ru_stime, usage.ru_utime],
            "processed": gw.router.commands_processed, "cmdstats": gw.cmdstats.export()}


peers.HANDLERS["counters"] = gateway_counters


def _stats(gw: Gateway, shards: list[dict[bytes, Any]]) -> list[tuple[str, Any]]:
    every = [gateway_counters(gw), *gw.peer_counters]

    def total(name: str) -> int:
        return sum(int(c.get(name, 0)) for c in every)

    def rate(name: str) -> float:
        return sum(float(c.get(name, 0.0)) for c in every)

    return [
        ("total_connections_received", total("connections")),
        ("total_commands_processed", total("processed")),
        ("instantaneous_ops_per_sec", int(rate("inst_ops"))),
        ("total_net_input_bytes", total("net_in")),
        ("total_net_output_bytes", total("net_out")),
        ("instantaneous_input_kbps", f"{rate('inst_in') / 1024:.2f}"),
        ("instantaneous_output_kbps", f"{rate('inst_out') / 1024:.2f}"),
        ("rejected_connections", total("rejected")),
        ("expired_keys", sum(int(s[b"expired_keys"]) for s in shards)),
        ("evicted_keys", sum(int(s.get(b"evicted_keys", 0)) for s in shards)),
        # Atoll has no client eviction (maxmemory-clients), no fork, no active defrag, no
        # client tracking and no I/O threads: these counters are truly zero.
        ("evicted_clients", 0),
        ("keyspace_hits", sum(int(s[b"keyspace_hits"]) for s in shards)),
        ("keyspace_misses", sum(int(s[b"keyspace_misses"]) for s in shards)),
        ("pubsub_channels", gw.pubsub_stats[0]), ("pubsub_patterns", gw.pubsub_stats[1]),
        ("latest_fork_usec", 0), ("total_forks", 0),
        ("migrate_cached_sockets", 0),  # no MIGRATE yet, so no cached connections
        *_sync_stats(gw),
        ("tracking_total_keys", 0), ("tracking_total_items", 0), ("tracking_total_prefixes", 0),
        ("total_error_replies", total("errors") + sum(int(s[b"error_replies"]) for s in shards)),
        ("total_reads_processed", total("reads")),
        ("total_writes_processed", total("writes")),
        ("io_threaded_reads_processed", 0), ("io_threaded_writes_processed", 0),
        # Per shard, the numbers atoll-admin shows (shard/control.py ShardStats).
        *[(f"atoll_shard_{name}", ",".join(str(s.get(name.encode(), 0)) for s in shards))
          for name in ("ops_per_sec", "latency_p50_us", "latency_p99_us")],
    ]


def _sync_stats(gw: Gateway) -> list[tuple[str, Any]]:
    if gw.repl_link is not None:
        return [(name, value) for name, value in gw.repl_info.get("sync", [])]
    from replication.master import master_of

    master = master_of(gw)
    return [("sync_full", master.sync_full), ("sync_partial_ok", master.sync_partial_ok),
            ("sync_partial_err", master.sync_partial_err)]


def _replication(gw: Gateway, shards: list[dict[bytes, Any]]) -> list[tuple[str, Any]]:
    from gateway.repl_commands import info_replication

    return info_replication(gw)


def _cpu(gw: Gateway, shards: list[dict[bytes, Any]]) -> list[tuple[str, Any]]:
    """Every gateway's and shard's CPU time.  Atoll forks no children (its snapshots are
    written by the shards themselves), and the "main thread" is this gateway's."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    every = [[own.ru_stime, own.ru_utime], *(c.get("cpu", [0.0, 0.0]) for c in gw.peer_counters),
             *(s.get(b"cpu", [0.0, 0.0]) for s in shards)]
    main = resource.getrusage(resource.RUSAGE_THREAD)
    return [("used_cpu_sys", f"{sum(c[0] for c in every):.6f}"),
            ("used_cpu_user", f"{sum(c[1] for c in every):.6f}"),
            ("used_cpu_sys_children", "0.000000"), ("used_cpu_user_children", "0.000000"),
            ("used_cpu_sys_main_thread", f"{main.ru_stime:.6f}"),
            ("used_cpu_user_main_thread", f"{main.ru_utime:.6f}")]


def _keyspace(gw: Gateway, shards: list[dict[bytes, Any]]) -> list[tuple[str, Any]]:
    totals: dict[int, list[int]] = {}
    for part in shards:
        for db, keys, expires, avg_ttl in part[b"keyspace"]:
            entry = totals.setdefault(db, [0, 0, 0, 0])
            entry[0] += keys
            entry[1] += expires
            entry[2] += avg_ttl * expires
            entry[3] += 1
    lines = []
    for db in sorted(totals):
        keys, expires, ttl_sum, _ = totals[db]
        avg = ttl_sum // expires if expires else 0
        lines.append((f"db{db}", f"keys={keys},expires={expires},avg_ttl={avg}"))
    return lines


def _empty(gw: Gateway, shards: list[dict[bytes, Any]]) -> list[tuple[str, Any]]:
    return []


def _cluster(gw: Gateway, shards: list[dict[bytes, Any]]) -> list[tuple[str, Any]]:
    return [("cluster_enabled", 0)]


_SECTIONS = {
    "server": _server, "clients": _clients, "memory": _memory, "persistence": _persistence,
    "stats": _stats, "replication": _replication, "cpu": _cpu, "modules": _empty,
    "errorstats": stats_commands.errorstats_section, "cluster": _cluster, "keyspace": _keyspace,
    "commandstats": stats_commands.commandstats_section,
    "latencystats": stats_commands.latencystats_section,
}


# --- COMMAND ---------------------------------------------------------------------------

def _visible(spec: CommandSpec) -> bool:
    return spec.route != "internal"


def _key_specs(spec: CommandSpec) -> list[Any]:
    if spec.first_key <= 0:
        return []
    access = [b"RW", b"update"] if spec.is_write() else [b"RO", b"access"]
    last = spec.last_key - spec.first_key if spec.last_key >= 0 else spec.last_key
    return [{
        b"flags": access,
        b"begin_search": {b"type": b"index", b"spec": {b"index": spec.first_key}},
        b"find_keys": {b"type": b"range",
                       b"spec": {b"lastkey": last, b"keystep": spec.step, b"limit": 0}},
    }]


def command_entry(spec: CommandSpec) -> list[Any]:
    flags = [f.encode() for f in spec.flags if f != "may_replicate"]  # Redis hides it
    if spec.keys_fn is not None:
        flags.append(b"movablekeys")
    from shard.reply import SetReply

    return [
        spec.fullname.encode(), spec.arity, SetReply(flags), spec.first_key, spec.last_key,
        spec.step, SetReply([a.encode() for a in spec.acl]), [], _key_specs(spec),
        [command_entry(sub) for sub in spec.subcommands.values()],
    ]


def _all_specs() -> list[CommandSpec]:
    return [spec for spec in TABLE.values() if _visible(spec)]


@command("COMMAND", -1, "loading stale", acl="@slow @connection", route=G, group="server",
         since="2.8.13", summary="Get array of Redis command details")
def command_(conn: ClientConnection, argv: list[bytes]) -> Any:
    return [command_entry(spec) for spec in _all_specs()]


def _find(name: bytes) -> CommandSpec | None:
    text = name.lower().decode("latin-1")
    if "|" in text:
        parent, _, sub = text.partition("|")
        spec = TABLE.get(parent)
        return spec.subcommands.get(sub) if spec else None
    spec = TABLE.get(text)
    return spec if spec is not None and _visible(spec) else None


@command("COMMAND COUNT", 2, "loading stale", acl="@slow @connection", route=G, parent="command",
         since="2.8.13", summary="Get total number of Redis commands")
def command_count(conn: ClientConnection, argv: list[bytes]) -> Any:
    return len(_all_specs())


@command("COMMAND INFO [command-name [command-name ...]]", -2, "loading stale",
         acl="@slow @connection", route=G, parent="command", since="2.8.13",
         summary="Get array of specific Redis command details, or all when no argument is given")
def command_info(conn: ClientConnection, argv: list[bytes]) -> Any:
    if len(argv) == 2:
        return command_(conn, argv)
    out = []
    for name in argv[2:]:
        spec = _find(name)
        out.append(None if spec is None else command_entry(spec))
    from shard.reply import NULL_ARRAY

    return [NULL_ARRAY if item is None else item for item in out]


def _docs(spec: CommandSpec) -> dict[bytes, Any]:
    doc: dict[bytes, Any] = {
        b"summary": spec.summary.encode(),
        b"since": spec.since.encode(),
        b"group": spec.group.encode(),
    }
    if spec.syntax:
        doc[b"syntax"] = spec.syntax.encode()
    if spec.subcommands:
        doc[b"subcommands"] = {s.fullname.encode(): _docs(s) for s in spec.subcommands.values()}
    return doc


@command("COMMAND DOCS [command-name [command-name ...]]", -2, "loading stale",
         acl="@slow @connection", route=G, parent="command", since="7.0.0",
         summary="Get array of specific Redis command documentation")
def command_docs(conn: ClientConnection, argv: list[bytes]) -> Any:
    specs = _all_specs() if len(argv) == 2 else [s for s in map(_find, argv[2:]) if s]
    return {spec.fullname.encode(): _docs(spec) for spec in specs}


@command("COMMAND LIST [FILTERBY MODULE module-name | ACLCAT category | PATTERN pattern]", -2,
         "loading stale", acl="@slow @connection", route=G, parent="command", since="7.0.0",
         summary="Get an array of Redis command names")
def command_list(conn: ClientConnection, argv: list[bytes]) -> Any:
    names: list[tuple[CommandSpec, bytes]] = []
    for spec in _all_specs():
        names.append((spec, spec.fullname.encode()))
        names += [(sub, sub.fullname.encode()) for sub in spec.subcommands.values()]
    if len(argv) == 2:
        return [n for _, n in names]
    if len(argv) != 5 or argv[2].upper() != b"FILTERBY":
        raise RedisError(errors.SYNTAX)
    kind, value = argv[3].upper(), argv[4]
    if kind == b"MODULE":
        return []
    if kind == b"ACLCAT":
        cat = "@" + value.decode("latin-1").lower()
        return [n for s, n in names if cat in s.acl]
    if kind == b"PATTERN":
        return [n for _, n in names if stringmatch(value, n, nocase=True)]
    raise RedisError(errors.SYNTAX)


@command("COMMAND GETKEYS command [arg [arg ...]]", -4, "loading stale",
         acl="@slow @connection", route=G, parent="command", since="2.8.13",
         summary="Extract keys given a full Redis command")
def command_getkeys(conn: ClientConnection, argv: list[bytes]) -> Any:
    target = argv[2:]
    spec = _find(target[0])
    if spec is not None and spec.subcommands and len(target) > 1:
        spec = spec.subcommands.get(target[1].lower().decode("latin-1"), spec)
    if spec is None:
        raise RedisError("ERR Invalid command specified")
    if spec.first_key <= 0 and spec.keys_fn is None:
        raise RedisError("ERR The command has no key arguments")
    if not spec.arity_ok(len(target)):
        raise RedisError("ERR Invalid number of arguments specified for command")
    positions = spec.key_positions(target)
    if not positions:
        if "no_mandatory_keys" in spec.flags:  # EVAL script 0: simply no keys
            return []
        raise RedisError("ERR Invalid arguments specified for command")
    return [target[p] for p in positions]


@command("COMMAND GETKEYSANDFLAGS command [arg [arg ...]]", -4, "loading stale",
         acl="@slow @connection", route=G, parent="command", since="7.0.0",
         summary="Extract keys and access flags given a full Redis command")
def command_getkeysandflags(conn: ClientConnection, argv: list[bytes]) -> Any:
    keys = command_getkeys(conn, argv)
    spec = _find(argv[2])
    flags = [b"RW", b"update"] if spec is not None and spec.is_write() else [b"RO", b"access"]
    return [[key, flags] for key in keys]


# --- HELP for every container command, generated from the table ------------------------

def _help_lines(container_spec: CommandSpec) -> list[bytes]:
    name = container_spec.name.upper()
    lines = [f"{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".encode()]
    for sub in container_spec.subcommands.values():
        if sub.name == "help":
            continue
        usage = sub.syntax.split(" ", 1)[1] if " " in sub.syntax else sub.name.upper()
        lines.append(usage.encode())
        lines.append(f"    {sub.summary}.".encode())
    lines += [b"HELP", b"    Print this help."]
    return lines


# The ACL category each container's HELP carries besides @slow (as Redis declares them).
_HELP_ACL = {"object": "@keyspace", "client": "@connection", "command": "@connection",
             "function": "@scripting", "script": "@scripting"}


def add_help_subcommands() -> None:
    for spec in list(TABLE.values()):
        if not spec.subcommands or "help" in spec.subcommands:
            continue

        def helper(conn: ClientConnection, argv: list[bytes], spec: CommandSpec = spec) -> Any:
            return _help_lines(spec)

        acl = f"{_HELP_ACL.get(spec.name, '')} @slow"
        command(f"{spec.name.upper()} HELP", 2, "loading stale", acl=acl, route=G,
                parent=spec.name, since=spec.since, summary="Show helpful text about the different subcommands")(helper)
