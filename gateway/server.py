"""A gateway process: the client-facing asyncio (uvloop) server.

It owns client connections only; data lives in the shard actors it reaches over ZeroMQ.
Several gateway processes may share the port (SO_REUSEPORT).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from typing import Any

from gateway.links import ShardLinks
from server.config import Config
from shard import wire
from shard.errors import RedisError
from shard.table import load_shard_commands

log = logging.getLogger("atoll.gateway")


class Gateway:
    headless = False  # the replication actor's gateway (replication/actor.py) listens nowhere

    def __init__(self, index: int, config: Config, shard_endpoints: list[str],
                 loop: asyncio.AbstractEventLoop, run_id: str, supervisor: Any = None,
                 owners: list[int] | None = None, client_counts: Any = None) -> None:
        import gateway.acl_commands  # noqa: F401  (registers the gateway's own commands)
        import gateway.commands  # noqa: F401
        import gateway.debug  # noqa: F401
        import gateway.introspection  # noqa: F401
        import gateway.memory_commands  # noqa: F401
        import gateway.monitor  # noqa: F401
        import gateway.pause  # noqa: F401
        import gateway.pubsub_commands  # noqa: F401
        import gateway.repl_commands  # noqa: F401
        import gateway.snapshots  # noqa: F401
        import gateway.stats_commands  # noqa: F401
        import gateway.transactions  # noqa: F401
        from gateway.router import Router

        load_shard_commands()
        gateway.introspection.add_help_subcommands()
        self.index = index
        self.config = config
        self.loop = loop
        self.run_id = run_id
        self.started = time.time()
        self.port = int(config.value("port"))
        self.databases = int(config.value("databases"))
        self.executable = os.path.abspath(sys.argv[0])
        self.links = ShardLinks(shard_endpoints, loop, owners)
        from shard.cmdstats import CommandStats

        self.cmdstats = CommandStats()  # commands run or planned here (shard/cmdstats.py)
        self.cmdstats.configure(_stats_settings(config))
        down = "LOADING Atoll shard restarting: the command may not have run, retry it"
        self.links.shard_down_error = (b"-" + down.encode() + b"\r\n", RedisError(down))
        self.links.on_orphan = self.give_back
        self.links.on_stale_wait = lambda waiter: self.end_wait(waiter, b"DROP")
        self.router = Router(self)
        from gateway.pubsub import PubSubHub
        from pubsub.actor import pubsub_endpoint

        self.pubsub = PubSubHub(self, pubsub_endpoint(shard_endpoints[0]))
        self.pubsub_stats: list[int] = [0, 0]  # INFO's pubsub_channels / _patterns, last asked
        from gateway import scripting

        self.busy_shards: set[int] = set()  # shards running a busy script
        self.known_scripts: set[str] = set()  # scripts this gateway had every shard load
        scripting.install(self)
        from gateway.cross import Scratch

        self.scratch = Scratch(self)
        self.clients: dict[int, Any] = {}
        from gateway.limits import ClientLimits

        self.limits = ClientLimits(self, client_counts)
        self.monitors: set[Any] = set()  # MONITOR connections of this gateway
        from gateway.pause import PauseState
        from gateway.peers import Peers

        self.pause = PauseState(self)

        self.peers = Peers(self)
        self.remote_monitors: set[str] = set()  # other gateways with MONITOR clients
        self.peer_counters: list[dict[str, Any]] = []  # other gateways' counters (INFO)
        self.monitor_outgoing: list[bytes] = []  # lines for them, sent once per tick
        from gateway.acl_commands import AclState, load_file

        self.acl = AclState(config)
        if config.get("aclfile"):
            try:
                self.acl.users = load_file(self.acl, str(config.get("aclfile")))
            except (OSError, RedisError) as exc:
                log.warning("Could not load the ACL file: %s", exc)
        self.stats = {"connections": 0, "rejected": 0, "errors": 0, "reads": 0, "writes": 0,
                      "net_in": 0, "net_out": 0}
        from gateway.metrics import Instantaneous

        self.instantaneous = Instantaneous(self)
        self._next_id = index + 1
        self.transactions_started = 0  # numbers cross-shard transactions (gateway/intents.py)
        # Intents a previous life of this gateway held in the shards are released.
        for link in self.links.links:
            self.links.request(link, wire.meta(0, False, structured=True),
                               [b"__hello", b"%d" % index])
        self._id_step = max(int(config.value("gateways")), 1)
        self.servers: list[asyncio.AbstractServer] = []
        # A multiprocessing pipe to the supervisor: CONFIG SET and SHUTDOWN go up, settings
        # changed on other gateways come down.
        self.supervisor = supervisor
        if supervisor is not None:
            loop.add_reader(supervisor.fileno(), self._from_supervisor)
        self.stopping = asyncio.Event()
        self.control: Any = None
        if shard_endpoints[0].startswith("ipc://"):
            from gateway.control import GatewayControl

            self.control = GatewayControl(self, shard_endpoints[0])
        self.repl_info: dict[str, Any] = {}  # INFO's replication fields, as the actor told
        self.repl_link: Any = None  # the replication actor (gateway/repl_link.py)
        if not self.headless:
            from gateway.repl_link import link_for

            self.repl_link = link_for(self, shard_endpoints[0])
            if self.repl_link is not None:
                self.peers.count += 1  # the actor answers CLIENT LIST/KILL for its replicas

    def process_name(self) -> str:
        return f"gateway-{self.index}"

    def next_client_id(self) -> int:
        value = self._next_id
        self._next_id += self._id_step
        self.stats["connections"] += 1
        return value

    def reset_stats(self) -> None:
        for key in self.stats:
            self.stats[key] = 0
        self.router.commands_processed = 0

    def _from_supervisor(self) -> None:
        while self.supervisor.poll():
            try:
                kind, payload = self.supervisor.recv()
            except (EOFError, OSError):
                # The supervisor is gone: nobody would stop or restart us.
                log.warning("Gateway %d: supervisor exited, exiting too", self.index)
                self.loop.remove_reader(self.supervisor.fileno())
                self.stopping.set()
                return
            if kind == "save":  # the supervisor stops on SIGTERM with save points set
                from gateway.snapshots import save_for_supervisor

                save_for_supervisor(self)
            elif kind == "config":
                try:
                    self.config.set(payload)
                except Exception:  # validated where it was set; a failure here is only logged
                    log.exception("could not apply a setting from another gateway")
                self._settings_changed([name for name, _ in payload])
            elif kind == "acl":
                from gateway.acl_commands import apply_relayed

                apply_relayed(self, payload)
            elif kind == "peer":
                self.peers.receive(payload)

    def _settings_changed(self, names: list[str] | None = None) -> None:
        if names is not None and "requirepass" in names:
            from gateway.acl_commands import refresh_connections

            self.acl.apply_requirepass(str(self.config.get("requirepass") or ""))
            refresh_connections(self)
        self.cmdstats.configure(_stats_settings(self.config))
        if names is not None and "port" in names and int(self.config.value("port")) != self.port:
            self.loop.create_task(self._listen_again())
        max_bulk = self.config.value("proto-max-bulk-len")
        for conn in self.clients.values():
            conn.parser.max_bulk = max_bulk
        self.scratch.refresh(self.config)
        self.pubsub.refresh()
        if names is not None and {"min-replicas-to-write", "replica-serve-stale-data"} & set(names):
            from gateway.repl_commands import refresh_write_guard

            refresh_write_guard(self)

    def apply_config(self, pairs: list[tuple[str, str]], changed: list[str]) -> Any:
        """Tell the supervisor (and through it the other gateways) and every shard about
        changed settings, then answer OK."""
        self._settings_changed(changed)
        if self.supervisor is not None and changed:
            self.supervisor.send(("config", pairs))
        import msgpack

        from gateway import cross
        from shard.reply import OK

        argv = [b"__config"]
        for name in changed:
            argv += [name.encode(), msgpack.packb(self.config.value(name))]

        async def push() -> Any:
            if len(argv) > 1:
                await cross.all_shards(self, cross.ADMIN, argv)
            return OK

        return push()

    def unblock(self, conn: Any, how: bytes) -> None:
        """End a client's waits in shards (CLIENT UNBLOCK, or the client went away)."""
        for waiter in list(conn.blocked_on):
            self.end_wait(waiter, how)

    def end_wait(self, waiter: Any, how: bytes) -> None:
        """End one parked wait: TIMEOUT/ERROR make the shard answer it; DROP forgets it."""
        link, token = waiter.link, waiter.token
        meta = wire.meta(0, False, structured=True)
        answer = self.links.request(link, meta, [b"__unblock", b"%d" % token, how])
        if how != b"DROP":
            return
        if link.blocked.pop(token, None) is None:
            return
        if waiter in waiter.conn.blocked_on:
            waiter.conn.blocked_on.remove(waiter)
        # The shard may have served the wait just before the DROP reached it: then its reply,
        # which nobody will read, carries popped values that must go back (give_back).
        link.dropped[token] = waiter

        def settled(future: Any) -> None:
            if not future.cancelled() and future.result() == 1:  # still waiting: nothing popped
                link.dropped.pop(token, None)

        answer.add_done_callback(settled)

    def give_back(self, link: Any, waiter: Any, reply: Any) -> None:
        """Put back what a dropped wait took: its client had gone, or it lost the race of a
        wait over several shards."""
        self.give_back_values(waiter.argv, waiter.db,
                              bytes(reply) if isinstance(reply, bytes) else b"",
                              lost_race=waiter.abandoned)

    def give_back_values(self, argv: list[bytes], db: int, reply: bytes,
                         lost_race: bool = False) -> None:
        """Undo a pop nobody will read: its client left, or (``lost_race``) another shard
        served the same wait over several shards first (routine, so not a warning)."""
        from gateway.orphans import give_back_command

        command = give_back_command(argv, reply)
        if command is not None:
            if lost_race:
                log.debug("Giving back values a losing shard popped: %s", command[0].decode())
            else:
                log.warning("Giving back values popped for a client that disconnected: %s",
                            command[0].decode())
            meta = wire.meta(db, False, structured=True)
            self.links.request(self.links.shard_of(command[1]), meta, command)

    def blocked_clients(self) -> int:
        return sum(1 for conn in self.clients.values() if conn.blocked_on) + len(self.pause.held)

    def request_shutdown(self, save: bool) -> None:
        log.warning("User requested shutdown...")
        if self.supervisor is not None:
            self.supervisor.send(("shutdown", {"save": save}))
        else:
            os.kill(os.getppid(), signal.SIGTERM)

    async def _listen_again(self) -> None:
        """CONFIG SET port: listen on the new port, then stop listening on the old one."""
        old = self.servers
        self.servers = []
        self.port = int(self.config.value("port"))
        try:
            await self._listen()
        except OSError:
            log.warning("Gateway %d could not listen on port %d", self.index, self.port)
        for server in old:
            server.close()

    async def _listen(self) -> None:
        from gateway.connection import ClientConnection

        def factory() -> ClientConnection:
            return ClientConnection(self)

        for address in _bind_addresses(self.config.value("bind")):
            try:
                sock = _listening_socket(address, self.port, int(self.config.value("tcp-backlog")))
            except OSError as exc:
                if address.startswith("-"):
                    continue
                log.warning("Could not create server TCP listening socket %s:%d: %s",
                            address, self.port, exc)
                raise
            self.servers.append(await self.loop.create_server(factory, sock=sock))

    async def serve(self) -> None:
        await self._listen()
        log.info("Gateway %d ready to accept connections tcp on port %d (pid %d)", self.index,
                 self.port, os.getpid())
        if self.index == 0:
            from gateway.snapshots import start_save_points

            start_save_points(self)
            if self.repl_link is None:  # else the replication actor does it
                from gateway.repl_commands import start_replication

                start_replication(self)
        self.limits.start()
        self.instantaneous.start()
        from gateway.monitor import learn_monitors

        self.loop.create_task(learn_monitors(self))
        await self.stopping.wait()
        for server in self.servers:
            server.close()
        for conn in list(self.clients.values()):
            conn.close()
        if self.control is not None:
            self.control.close()
        if self.repl_link is not None:
            self.repl_link.close()
        self.links.close()
        self.pubsub.close()


def port_available(gw: Gateway, port: int) -> bool:
    """Whether every bind address of the gateway can listen on ``port``."""
    for address in _bind_addresses(gw.config.value("bind")):
        try:
            _listening_socket(address, port, 1).close()
        except OSError:
            if not address.startswith("-"):
                return False
    return True


def _stats_settings(config: Config) -> dict[str, Any]:
    names = ("slowlog-log-slower-than", "slowlog-max-len", "latency-monitor-threshold")
    return {name: config.value(name) for name in names}


def _bind_addresses(bind: Any) -> list[str]:
    if isinstance(bind, str):
        return bind.split() or ["127.0.0.1"]
    return list(bind) or ["127.0.0.1"]


def _listening_socket(address: str, port: int, backlog: int) -> socket.socket:
    host = address[1:] if address.startswith("-") else address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def run_gateway(index: int, config_dict: dict[str, Any], shard_endpoints: list[str],
                run_id: str, supervisor: Any = None, owners: list[int] | None = None,
                client_counts: Any = None) -> None:
    """Process entry point."""
    import uvloop

    from server.log import setup_logging

    config = Config.from_dict(config_dict)
    setup_logging(config_dict_values(config), role="G")
    from shard.actor import tune_gc

    tune_gc()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    gateway = Gateway(index, config, shard_endpoints, loop, run_id, supervisor, owners,
                      client_counts)
    loop.add_signal_handler(signal.SIGTERM, gateway.stopping.set)
    try:
        loop.run_until_complete(gateway.serve())
    finally:
        loop.close()


def config_dict_values(config: Config) -> dict[str, Any]:
    return {"logfile": config.value("logfile"), "loglevel": config.value("loglevel")}

