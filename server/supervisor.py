"""``atoll-server``: reads the configuration, starts the actors, restarts the ones that die.

Process tree::

    supervisor (this module)
      +- pub/sub actor    (pubsub.actor.run_pubsub)
      +- shard 0 .. N-1   (shard.actor.run_shard)
      +- gateway 0 .. G-1 (gateway.server.run_gateway)

Shards and gateways talk over ``ipc://`` sockets in a private run directory (mode 0700).
SIGTERM (or SHUTDOWN from a client) stops the gateways first, then the shards, and exits 0.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

from persistence import FATAL_EXIT
from server.config import Config, ConfigError
from server.log import setup_logging

log = logging.getLogger("atoll")
RESTART_BACKOFF = 0.2  # seconds before a crashed actor is started again
SAVE_ON_EXIT_TIMEOUT = 600.0


def default_shards() -> int:
    """One shard per core beyond the one the gateway needs, at least one.

    Measured on 2 cores (bench/vs_redis.sh): 1 shard and 2 shards give the same throughput;
    the gateway is the bottleneck, so extra shards only pay off with more cores.
    """
    return max(1, (os.cpu_count() or 2) - 1)


class Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.shards = int(config.value("shards")) or default_shards()
        self.gateways = int(config.value("gateways"))
        self.run_id = secrets.token_hex(20)
        self.mp = multiprocessing.get_context("spawn")
        self.run_dir = self._make_run_dir()
        self.endpoints = [f"ipc://{self.run_dir}/shard-{i}.sock" for i in range(self.shards)]
        self.pubsub_endpoint = f"ipc://{self.run_dir}/pubsub.sock"  # see gateway.pubsub
        self.children: dict[str, BaseProcess] = {}
        self.pipes: dict[str, Any] = {}  # gateway name -> our end of its pipe
        self.restarts: dict[str, int] = {}
        self.acl_changes: list[Any] = []  # ACL changes, replayed to a restarted gateway
        self.replicaof: str | None = None  # the last REPLICAOF, for a restarted actor
        # Each gateway's client count, for a server-wide maxclients (gateway/limits.py).
        self.client_counts = self.mp.RawArray("q", max(self.gateways, 1))
        self.stopping = False
        self.exit_code = 0
        self.save_on_exit = bool(config.value("save"))  # on SIGTERM, as Redis with save points
        from server.slotmap import SlotMap

        self.data_dir = os.path.abspath(str(config.value("dir")))
        self.slot_map = SlotMap.load(self.data_dir, self.shards)  # moves change it online
        self.started_at = time.time()
        self.spawned_at: dict[str, float] = {}

    def _make_run_dir(self) -> str:
        data_dir = os.path.abspath(str(self.config.value("dir")))
        os.makedirs(data_dir, exist_ok=True)
        path = os.path.join(data_dir, f".atoll-run-{self.config.value('port')}")
        self.run_link = ""
        if os.path.islink(path):
            os.unlink(path)
        elif os.path.exists(path):
            shutil.rmtree(path, ignore_errors=True)
        if len(path) > 80:  # ipc:// paths must fit in sun_path (108 bytes) with the file name
            short = tempfile.mkdtemp(prefix="atoll-")
            os.symlink(short, path)  # atoll-admin finds the run directory from ``dir``
            self.run_link = path
            return short
        os.makedirs(path, mode=0o700)
        os.chmod(path, 0o700)
        return path

    def _config_dict(self) -> dict[str, Any]:
        data = self.config.to_dict()
        if self.replicaof is not None:  # REPLICAOF at run time outlives the actor's life
            data["values"]["replicaof"] = self.replicaof
        return data

    def _spawn(self, name: str) -> None:
        kind, _, number = name.partition("-")
        index = int(number)
        if kind == "pubsub":
            from pubsub.actor import run_pubsub

            proc = self.mp.Process(target=run_pubsub, name=name,
                                   args=(self.pubsub_endpoint, self._shard_settings()))
        elif kind == "shard":
            from shard.actor import run_shard

            shard_config = self._shard_settings()
            proc = self.mp.Process(target=run_shard, name=name,
                                   args=(index, self.endpoints[index], shard_config))
        else:
            ours, theirs = self.mp.Pipe()
            old = self.pipes.pop(name, None)
            if old is not None:
                old.close()
            self.pipes[name] = ours
            if kind == "replication":  # replication/actor.py: one more coordinator
                from replication.actor import run_replication

                proc = self.mp.Process(target=run_replication, name=name,
                                       args=(self.gateways, self._config_dict(), self.endpoints,
                                             self.run_id, theirs, list(self.slot_map.owners)))
            else:
                from gateway.server import run_gateway

                proc = self.mp.Process(target=run_gateway, name=name,
                                       args=(index, self._config_dict(), self.endpoints,
                                             self.run_id, theirs, list(self.slot_map.owners),
                                             self.client_counts))
        proc.start()
        self.children[name] = proc
        self.spawned_at[name] = time.time()
        if kind in ("gateway", "replication"):
            theirs.close()
            for change in self.acl_changes:
                self.pipes[name].send(("acl", change))

    def _shard_settings(self) -> dict[str, Any]:
        cfg = self.config
        settings = {name: cfg.value(name) for name in SHARD_SETTINGS}
        settings["shards"] = self.shards  # to find the keys of its slots in a snapshot
        settings["dir"] = os.path.abspath(str(cfg.value("dir")))
        settings["shard-count"] = self.shards  # maxmemory is split over the shards
        settings["slot-owners"] = list(self.slot_map.owners)  # server/slotmap.py
        return settings

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        log.info("Atoll 0.1.0 (Redis 7.0.15 compatible) starting: %d shard(s), %d gateway(s), pid %d",
                 self.shards, self.gateways, os.getpid())
        self._spawn("pubsub-0")
        for i in range(self.shards):
            self._spawn(f"shard-{i}")
        self._spawn("replication-0")
        for i in range(self.gateways):
            self._spawn(f"gateway-{i}")
        log.info("All actors started; gateways listen on port %s", self.config.value("port"))
        self._start_control()
        while not self.stopping:
            sentinels = {proc.sentinel: name for name, proc in self.children.items()}
            pipes = {id(pipe): (name, pipe) for name, pipe in self.pipes.items()}
            ready = wait(list(sentinels) + [p for _, p in pipes.values()], timeout=0.5)
            for item in ready:
                if self.stopping:
                    break
                if id(item) in pipes:
                    self._message(*pipes[id(item)])
                elif item in sentinels:
                    self._restart(sentinels[item])
        return self._shutdown()

    def _start_control(self) -> None:
        """The control socket (atoll-admin) and the manifest it finds the actors by."""
        from server.control import control_endpoint, write_manifest
        from server.supervisor_control import SupervisorControl

        self.control = SupervisorControl(self)
        self.control.start()
        names = ["supervisor", *self.children]  # every actor answers on its own socket
        manifest = {
            "protocol": 1, "pid": os.getpid(), "port": self.config.value("port"),
            "dir": self.data_dir, "run_dir": self.run_dir, "shards": self.shards,
            "gateways": self.gateways,
            "control": {name: control_endpoint(self.run_dir, name) for name in names},
        }
        write_manifest(self.run_dir, manifest)
        if self.config.value("control-bind"):  # atoll-admin from elsewhere, CURVE only
            from server.control_tcp import TcpControl

            try:
                self.tcp_control = TcpControl(self.config, self.control.handlers, self.run_dir,
                                              manifest)
                self.tcp_control.start()
            except Exception as exc:
                log.warning("Could not serve the control protocol on %s: %s",
                            self.config.value("control-bind"), exc)
                self.stopping = True
                self.exit_code = 1

    def slot_moved(self, slots: list[int], target: int) -> None:
        """Record a finished group of a slot move and save the map next to the data."""
        for slot in slots:
            self.slot_map.owners[slot] = target
        self.slot_map.version += 1
        self.slot_map.save(self.data_dir)

    def _message(self, sender: str, pipe: Any) -> None:
        """A gateway's request: a setting changed by CONFIG SET, or SHUTDOWN."""
        try:
            kind, payload = pipe.recv()
        except (EOFError, OSError):
            return  # the gateway died; its sentinel restarts it
        if kind == "config":
            try:
                self.config.set(payload)
            except Exception:
                log.exception("could not apply CONFIG SET from %s", sender)
            for name, other in self.pipes.items():
                if name != sender:
                    try:
                        other.send(("config", payload))
                    except OSError:
                        pass
        elif kind == "acl":
            self.acl_changes.append(payload)
            for name, other in self.pipes.items():
                if name != sender:
                    try:
                        other.send(("acl", payload))
                    except OSError:
                        pass
        elif kind == "peer":  # gateway-to-gateway messages (gateway/peers.py)
            target, message = payload
            for name, other in self.pipes.items():
                if name != sender and (target is None or name == target):
                    try:
                        other.send(("peer", (sender, message)))
                    except OSError:
                        pass
        elif kind == "replicaof":  # the replication actor's REPLICAOF (replication/actor.py)
            self.replicaof = payload
        elif kind == "shutdown":
            self.save_on_exit = False  # the gateway saved first when it had to
            self.stopping = True

    def _restart(self, name: str) -> None:
        proc = self.children[name]
        proc.join(0)
        if proc.exitcode == FATAL_EXIT:  # e.g. an unreadable snapshot: do not loop on it
            log.warning("%s cannot start (see above); stopping the server", name)
            self.stopping = True
            self.exit_code = 1
            return
        self.restarts[name] = self.restarts.get(name, 0) + 1
        log.warning("%s (pid %s) exited with code %s; restarting it (restart #%d)",
                    name, proc.pid, proc.exitcode, self.restarts[name])
        time.sleep(RESTART_BACKOFF)
        if not self.stopping:
            self._spawn(name)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self.stopping:
            log.warning("Received %s scheduling shutdown...", signal.Signals(signum).name)
        self.stopping = True

    def _shutdown(self) -> int:
        log.warning("User requested shutdown...")
        tcp_control = getattr(self, "tcp_control", None)
        if tcp_control is not None:
            tcp_control.stop.set()
        if self.save_on_exit and self.exit_code == 0:
            self._save_before_exit()
        order = sorted(self.children, key=lambda n: (not n.startswith("gateway"), n))
        for name in order:
            proc = self.children[name]
            if proc.is_alive():
                proc.terminate()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.run_link and os.path.islink(self.run_link):
            os.unlink(self.run_link)
        self._remove_pidfile()
        log.warning("Atoll is now ready to exit, bye bye...")
        return self.exit_code

    def _save_before_exit(self) -> None:
        """Ask gateway 0 to SAVE and wait for its answer (the shards are still serving)."""
        pipe = self.pipes.get("gateway-0")
        if pipe is None:
            return
        log.warning("Saving the final RDB snapshot before exiting.")
        try:
            pipe.send(("save", None))
            deadline = time.monotonic() + SAVE_ON_EXIT_TIMEOUT
            while time.monotonic() < deadline:
                if pipe.poll(0.1):
                    kind, payload = pipe.recv()
                    if kind == "saved":
                        if not payload:
                            log.warning("Error trying to save the DB, can't exit.")
                        return
            log.warning("Timed out waiting for the final snapshot")
        except (EOFError, OSError):
            log.warning("Gateway gone: could not save the final snapshot")

    def write_pidfile(self) -> None:
        path = str(self.config.value("pidfile") or "")
        if path:
            with open(path, "w") as f:
                f.write(f"{os.getpid()}\n")

    def _remove_pidfile(self) -> None:
        path = str(self.config.value("pidfile") or "")
        if path and os.path.exists(path):
            os.unlink(path)


# Settings a shard reads; CONFIG SET pushes changes to these too.
SHARD_SETTINGS = ("databases", "hz", "proto-max-bulk-len", "maxmemory", "maxmemory-policy",
                  "maxmemory-samples", "lfu-log-factor", "lfu-decay-time", "logfile", "loglevel",
                  "hash-max-listpack-entries", "hash-max-listpack-value", "set-max-intset-entries",
                  "zset-max-listpack-entries",
                  "zset-max-listpack-value", "list-max-listpack-size", "list-compress-depth",
                  "notify-keyspace-events", "lazyfree-lazy-expire", "lazyfree-lazy-user-del",
                  "dbfilename", "busy-reply-threshold", "appendonly", "appendfsync",
                  "appendfilename", "appenddirname", "aof-load-truncated",
                  "auto-aof-rewrite-percentage", "auto-aof-rewrite-min-size")


def _daemonize() -> None:
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def port_in_use(config: Config) -> str | None:
    """Redis' start-up error when the port is taken.

    Gateways bind with SO_REUSEPORT (so several can share the port), which would also let a
    second server join a port another one owns; a plain bind first tells the two apart.
    """
    import socket

    bind = config.value("bind")
    addresses = bind.split() if isinstance(bind, str) else list(bind)
    port = int(config.value("port"))
    for address in addresses or ["127.0.0.1"]:
        optional = address.startswith("-")
        host = address[1:] if optional else address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if optional and exc.errno != errno.EADDRINUSE:
                    continue
                return (f"Warning: Could not create server TCP listening socket {host}:{port}: "
                        f"bind: {exc.strerror}")
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-v", "--version"):
        print("Atoll server v=0.1.0 (Redis 7.0.15 compatible)")
        return 0
    if args and args[0] in ("-h", "--help"):
        print("Usage: atoll-server [/path/to/atoll.conf] [--directive value ...]")
        return 0
    try:
        config = Config.from_args(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if config.value("daemonize"):
        _daemonize()
    setup_logging({"logfile": config.value("logfile"), "loglevel": config.value("loglevel")},
                  role="M")
    from server.control_tcp import check_settings

    problem = check_settings(config)
    if problem:
        print(f"atoll-server: {problem}", file=sys.stderr)
        return 1
    problem = port_in_use(config)
    if problem:
        log.warning(problem)
        log.warning("Failed listening on port %s (tcp), aborting.", config.value("port"))
        return 1
    supervisor = Supervisor(config)
    supervisor.write_pidfile()
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
