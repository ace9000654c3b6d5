"""``atoll-admin``: status, per-shard numbers, live top, persistence, restarts and online slot
moves of a running Atoll server, over its control sockets (server/control.py)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from typing import Any

import zmq

from admin import render
from admin.find import manifest, server_dir
from server.control import ControlClient, ControlError


class Admin:
    def __init__(self, args: argparse.Namespace) -> None:
        self.context: zmq.Context[Any] = zmq.Context()
        self.json = args.json
        self.timeout = args.timeout
        self.remote: ControlClient | None = None
        if args.connect:  # the supervisor's tcp:// socket; other actors through its relay
            self.remote = remote_client(self.context, args.connect, args.curve_keys,
                                        args.timeout)
            self.manifest: dict[str, Any] = self.remote.call("manifest")
            return
        data_dir, port = server_dir(args.dir, args.config)
        self.manifest = manifest(data_dir, args.port or (port if not args.dir else None))

    def client(self, name: str, timeout: float) -> ControlClient:
        endpoint = self.manifest["control"].get(name)
        if endpoint is None:
            raise ControlError(f"this server has no actor {name}")
        return ControlClient(self.context, endpoint, timeout)

    def call(self, name: str, op: str, timeout: float | None = None, **args: Any) -> Any:
        wait = self.timeout if timeout is None else timeout
        if self.remote is not None:
            if name == "supervisor":
                return self.remote.call(op, timeout=wait, **args)
            return self.remote.call("relay", timeout=wait + 1, to=name, relay_timeout=wait,
                                    request={"op": op, **args})
        client = self.client(name, wait)
        try:
            return client.call(op, **args)
        finally:
            client.close()

    def shards(self) -> list[dict[str, Any]]:
        out = []
        for i in range(int(self.manifest["shards"])):
            try:
                out.append(self.call(f"shard-{i}", "stats", timeout=2.0))
            except ControlError as exc:
                out.append({"shard": i, "error": str(exc)})
        return out

    def pubsub(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each pub/sub actor's own status, also attached to its row as ``pubsub``."""
        found = []
        for row in rows:
            if row["role"] == "pubsub" and row["name"] in self.manifest["control"]:
                try:
                    row["pubsub"] = self.call(row["name"], "status", timeout=2.0)
                except ControlError as exc:
                    row["pubsub"] = {"error": str(exc)}
                found.append({"name": row["name"], **row["pubsub"]})
        return found

    def emit(self, value: Any) -> None:
        print(json.dumps(value, default=str), flush=True)

    def wait_job(self, started: dict[str, Any]) -> int:
        report = started
        while not report["finished"]:
            time.sleep(0.1)
            report = self.call("supervisor", "job")
            if not self.json and sys.stdout.isatty():
                print(f"\r{report['kind']}: {report['slots_done']}/{report['slots_total']} slots, "
                      f"{report['keys_moved']} keys", end="", flush=True)
        if self.json:
            self.emit(report)
        else:
            if sys.stdout.isatty():
                print()
            print(f"{report['kind']}: {report['slots_done']}/{report['slots_total']} slots, "
                  f"{report['keys_moved']} keys in {report['seconds']} s "
                  f"({report['groups']} groups, longest hold {report['max_pause_ms']} ms)"
                  + (f"; error: {report['error']}" if report["error"] else ""))
        return 1 if report["error"] else 0


def cmd_status(admin: Admin, args: argparse.Namespace) -> int:
    rows = admin.call("supervisor", "status")
    pubsub = admin.pubsub(rows)
    if admin.json:
        admin.emit(rows)
    else:
        render.show(f"Atoll on port {admin.manifest['port']}", render.STATUS_COLUMNS,
                    render.status_rows(rows))
        if pubsub:
            print()
            render.show("Pub/sub", render.PUBSUB_COLUMNS, render.pubsub_rows(pubsub))
    return 0


def cmd_shards(admin: Admin, args: argparse.Namespace) -> int:
    shards = admin.shards()
    if admin.json:
        admin.emit(shards)
    else:
        render.show("Shards", render.SHARD_COLUMNS, render.shard_rows(shards))
    return 0 if all("error" not in s for s in shards) else 1


def cmd_top(admin: Admin, args: argparse.Namespace) -> int:
    def frame() -> dict[str, Any]:
        status = admin.call("supervisor", "status")
        return {"time": time.time(), "processes": status, "shards": admin.shards(),
                "pubsub": admin.pubsub(status)}

    count = 0
    if admin.json or not sys.stdout.isatty():
        while args.iterations is None or count < args.iterations:
            data = frame()
            if admin.json:
                admin.emit(data)
            else:
                print(time.strftime("%H:%M:%S"), "-" * 60)
                print(render.plain_table(render.SHARD_COLUMNS, render.shard_rows(data["shards"])))
                print(render.plain_table(render.STATUS_COLUMNS,
                                         render.status_rows(data["processes"])), flush=True)
            count += 1
            if args.iterations is None or count < args.iterations:
                time.sleep(args.interval)
        return 0
    return _live_top(admin, args, frame)


def _live_top(admin: Admin, args: argparse.Namespace, frame: Any) -> int:
    from rich.console import Console, Group
    from rich.live import Live

    console = Console()

    def view() -> Group:
        data = frame()
        title = (f"Atoll top - port {admin.manifest['port']} - {time.strftime('%H:%M:%S')}"
                 f" - every {args.interval:g}s, Ctrl-C quits")
        parts = [render.fit_table(console, title, render.SHARD_COLUMNS,
                                  render.shard_rows(data["shards"])),
                 render.fit_table(console, "Processes", render.STATUS_COLUMNS,
                                  render.status_rows(data["processes"]))]
        if data["pubsub"]:
            parts.append(render.fit_table(console, "Pub/sub", render.PUBSUB_COLUMNS,
                                          render.pubsub_rows(data["pubsub"])))
        return Group(*parts)

    count = 0
    try:
        with Live(view(), console=console, refresh_per_second=4, screen=False) as live:
            while args.iterations is None or count < args.iterations:
                time.sleep(args.interval)
                live.update(view())
                count += 1
    except KeyboardInterrupt:
        pass
    return 0


def cmd_save(admin: Admin, args: argparse.Namespace) -> int:
    if args.shard is not None:
        raise ControlError("a snapshot covers every shard (one dump.rdb); one shard's own "
                           "persistence work is its append-only log: rewrite-log --shard N")
    started = time.monotonic()
    ok = admin.call("gateway-0", "save", timeout=600.0)
    result = {"saved": bool(ok), "seconds": round(time.monotonic() - started, 3),
              "file": os.path.join(admin.manifest["dir"], "dump.rdb")}
    admin.emit(result) if admin.json else print(
        f"snapshot {'written' if ok else 'FAILED'} in {result['seconds']} s")
    return 0 if ok else 1


def cmd_rewrite_log(admin: Admin, args: argparse.Namespace) -> int:
    """BGREWRITEAOF through the server's port (every shard), or one shard's log rewrite over
    its control socket; honest about what the server answers."""
    if args.shard is not None:
        started = admin.call(f"shard-{args.shard}", "rewrite")
        result = {"ok": True, "shard": args.shard,
                  "reply": "rewrite started" if started else "rewrite scheduled after a save"}
        admin.emit(result) if admin.json else print(result["reply"])
        return 0
    host = "127.0.0.1"
    if admin.remote is not None:  # tcp://HOST:PORT -> HOST
        host = admin.remote.endpoint[len("tcp://"):].rsplit(":", 1)[0].strip("[]")
    with socket.create_connection((host, int(admin.manifest["port"])), timeout=10) as s:
        s.sendall(b"*1\r\n$12\r\nBGREWRITEAOF\r\n")
        reply = s.recv(65536).decode("latin-1").strip()
    ok = reply.startswith("+")
    if admin.json:
        admin.emit({"ok": ok, "reply": reply[1:]})
    else:
        print(reply[1:] if ok else f"error: {reply[1:]}")
    return 0 if ok else 1


def cmd_restart(admin: Admin, args: argparse.Namespace) -> int:
    return admin.wait_job(admin.call("supervisor", "restart", shard=args.shard))


def cmd_move(admin: Admin, args: argparse.Namespace) -> int:
    return admin.wait_job(admin.call("supervisor", "move", slots=args.slots, group=args.group,
                                     **{"from": args.source, "to": args.target}))


def cmd_rebalance(admin: Admin, args: argparse.Namespace) -> int:
    return admin.wait_job(admin.call("supervisor", "rebalance", group=args.group))


def cmd_slots(admin: Admin, args: argparse.Namespace) -> int:
    data = admin.call("supervisor", "slots")
    if admin.json:
        admin.emit(data)
    else:
        print(f"slot map version {data['version']}; slots per shard: {data['counts']}")
        rows = [[f"{a}-{b}" if a != b else str(a), str(shard)] for a, b, shard in data["ranges"]]
        print(render.plain_table(["slots", "shard"], rows))
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    """CURVE key pairs for control sockets on tcp:// (server and client)."""
    os.makedirs(args.out, exist_ok=True)
    written = []
    for name in ("server", "client"):
        public, secret = zmq.curve_keypair()
        for suffix, key in ((".key", public), (".key_secret", secret)):
            path = os.path.join(args.out, f"atoll-control-{name}{suffix}")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                         0o600 if suffix == ".key_secret" else 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(key + b"\n")
            written.append(path)
    print(json.dumps(written) if args.json else "\n".join(written))
    return 0


def remote_client(context: zmq.Context[Any], endpoint: str, keys_dir: str | None,
                  timeout: float) -> ControlClient:
    """A client of a ``control-bind`` endpoint; it answers CURVE clients with a known key only,
    so silence there usually means missing or unauthorized keys."""
    from server.control_tcp import client_keys

    if not endpoint.startswith("tcp://"):
        raise ControlError("--connect takes the server's control-bind endpoint (tcp://HOST:PORT)")
    curve = client_keys(keys_dir) if keys_dir else None
    return RemoteClient(context, endpoint, timeout, curve)


class RemoteClient(ControlClient):
    def call(self, op: str, timeout: float | None = None, **args: Any) -> Any:
        try:
            return super().call(op, timeout=timeout, **args)
        except ControlError as exc:
            if not str(exc).startswith("no answer from"):
                raise
            hint = ("without --curve-keys: the server answers CURVE clients only"
                    if self.curve is None else
                    "is this client's public key in the server's control-curve-authorized-keys,"
                    " and the server key in --curve-keys the server's?")
            raise ControlError(f"{exc} ({hint})") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="atoll-admin", description=__doc__)
    p.add_argument("--dir", help="the server's dir (where its run directory lives)")
    p.add_argument("--config", help="the server's config file (its dir and port)")
    p.add_argument("--port", type=int, help="which server, when several run in one dir")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--connect", metavar="tcp://HOST:PORT",
                   help="the server's control-bind endpoint instead of its run directory")
    p.add_argument("--curve-keys", metavar="DIR",
                   help="with --connect: the directory atoll-admin keygen wrote")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="seconds to wait for an answer (default 5)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="every process: pid, role, uptime, restarts, RSS, health")
    sub.add_parser("shards", help="per shard: slots, keys, memory, ops/s, latency ...")
    top = sub.add_parser("top", help="the shard table, live")
    top.add_argument("--interval", type=float, default=1.0)
    top.add_argument("--iterations", type=int, help="stop after N refreshes")
    for name in ("save", "rewrite-log"):
        one = sub.add_parser(name)
        one.add_argument("--shard", type=int)
    restart = sub.add_parser("restart", help="restart one shard; it reloads its data")
    restart.add_argument("--shard", type=int, required=True)
    move = sub.add_parser("move-slots", help="move slots between shards online")
    move.add_argument("--from", dest="source", type=int, required=True)
    move.add_argument("--to", dest="target", type=int, required=True)
    move.add_argument("--slots", required=True, help="e.g. 0-1000,2000")
    move.add_argument("--group", type=int, default=0, help="slots per hold (default 128)")
    rebalance = sub.add_parser("rebalance", help="even out the slots over the shards")
    rebalance.add_argument("--group", type=int, default=0)
    sub.add_parser("slots", help="the slot map")
    keygen = sub.add_parser("keygen", help="CURVE keys for tcp:// control sockets")
    keygen.add_argument("--out", default=".")
    return p


COMMANDS = {"status": cmd_status, "shards": cmd_shards, "top": cmd_top, "save": cmd_save,
            "rewrite-log": cmd_rewrite_log, "restart": cmd_restart, "move-slots": cmd_move,
            "rebalance": cmd_rebalance, "slots": cmd_slots}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "keygen":
            return cmd_keygen(args)
        return COMMANDS[args.command](Admin(args), args)
    except ControlError as exc:
        print(f"atoll-admin: {exc}", file=sys.stderr)
        return 1
    except (ConnectionError, OSError) as exc:
        print(f"atoll-admin: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
