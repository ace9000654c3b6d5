"""ACL users against a real server with two gateway processes: every gateway must enforce
the same users, whichever one a change was made on.  Replies are compared with a real
redis-server where the texts matter."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.servers import AtollServer, RedisServer, atoll_server, wait_until

RULES = ["on", ">pw", "~obj:*", "%R~ro:*", "&chan", "+get", "+set", "+@hash", "-hdel"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtollServer]:
    with atoll_server(tmp_path_factory.mktemp("acl"), shards=2, gateways=2) as s:
        yield s


@pytest.fixture
def admin(server: AtollServer) -> Iterator[redis.Redis]:
    client = server.client()
    yield client
    for name in client.acl_users():
        if name != "default":
            client.acl_deluser(name)
    client.close()


def _on_every_gateway(server: AtollServer, check) -> None:
    """Run ``check`` on connections until both gateways (odd and even client ids) passed."""
    seen: set[int] = set()
    for _ in range(64):
        client = server.client()
        gateway = client.client_id() % 2
        if gateway not in seen:
            wait_until(lambda c=client: check(c), timeout=5, what="ACL state on a gateway")
            seen.add(gateway)
        client.close()
        if len(seen) == 2:
            return
    raise AssertionError("did not reach both gateways")


def test_user_permissions_are_enforced_on_every_gateway(server: AtollServer, admin: redis.Redis) -> None:
    assert admin.acl_setuser("bob", reset=False, enabled=True) is not None
    admin.execute_command("ACL", "SETUSER", "bob", *RULES)

    def bob_is_restricted(c: redis.Redis) -> bool:
        c.auth("pw", username="bob")
        c.set("obj:1", "v")
        with pytest.raises(redis.exceptions.NoPermissionError, match="one of the keys"):
            c.set("other", "v")
        with pytest.raises(redis.exceptions.NoPermissionError, match="run the 'hdel' command"):
            c.hdel("obj:h", "f")
        with pytest.raises(redis.exceptions.NoPermissionError, match="one of the keys"):
            c.set("ro:1", "v")  # %R~ only
        return True

    _on_every_gateway(server, bob_is_restricted)
    admin.acl_deluser("bob")

    def bob_is_gone(c: redis.Redis) -> bool:
        try:
            c.auth("pw", username="bob")
        except redis.AuthenticationError:
            return True
        return False

    _on_every_gateway(server, bob_is_gone)


def test_acl_texts_match_redis(server: AtollServer, admin: redis.Redis, reference: RedisServer) -> None:
    ref = reference.client()
    try:
        for client in (admin, ref):
            client.execute_command("ACL", "SETUSER", "bob", *RULES)
            client.execute_command("ACL", "SETUSER", "alice")
        for command in (["ACL", "DRYRUN", "bob", "get", "obj:1"],
                        ["ACL", "DRYRUN", "bob", "get", "x"],
                        ["ACL", "DRYRUN", "bob", "lpush", "obj:1", "x"],
                        ["ACL", "DRYRUN", "nobody", "get", "x"],
                        ["ACL", "SETUSER", "x", "badrule"],
                        ["ACL", "SETUSER", "x", "+@nosuch"],
                        ["ACL", "SETUSER", "x", "allkeys", "~foo"],
                        ["ACL", "SETUSER", "x", "<nosuch"],
                        ["ACL", "DELUSER", "default"],
                        ["ACL", "LOAD"],
                        ["ACL", "GENPASS", "0"],
                        ["ACL", "CAT", "nosuch"],
                        ["ACL", "WHOAMI"]):
            ours, theirs = _reply(admin, command), _reply(ref, command)
            assert ours == theirs, command
        assert [line for line in admin.acl_list() if "alice" in line] == \
               [line for line in ref.acl_list() if "alice" in line]
        assert admin.acl_getuser("nosuch") is None
        assert admin.acl_cat()[:3] == ["keyspace", "read", "write"]
        assert len(admin.acl_genpass()) == 64 and len(admin.acl_genpass(5)) == 2
    finally:
        ref.execute_command("ACL", "DELUSER", "bob", "alice")
        ref.close()


def _reply(client: redis.Redis, command: list[str]) -> object:
    try:
        return client.execute_command(*command)
    except redis.ResponseError as exc:
        return ("error", str(exc))


def test_wrong_password_is_logged(server: AtollServer, admin: redis.Redis) -> None:
    with pytest.raises(redis.AuthenticationError):
        server.client(username="ghost", password="x").ping()
    # ACL LOG is kept per gateway process: look on both.
    found = []
    for _ in range(16):
        client = server.client()
        found += [e for e in client.acl_log() if e["username"] == "ghost"]
        client.close()
    assert found and found[0]["reason"] == "auth" and found[0]["object"] == "AUTH"


def test_requirepass_set_at_runtime_applies_to_new_connections(server: AtollServer,
                                                                admin: redis.Redis) -> None:
    admin.config_set("requirepass", "s3cret")
    try:
        def needs_password() -> bool:  # a raw socket: redis-py retries auth errors slowly
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                sock.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\nx\r\n")
                return sock.recv(100) == b"-NOAUTH Authentication required.\r\n"

        for _ in range(16):  # connections land on both gateways
            wait_until(needs_password, timeout=5, what="requirepass on a gateway")
        assert server.client(password="s3cret").ping()
    finally:
        server.client(password="s3cret").config_set("requirepass", "")


def test_aclfile_save_and_load(tmp_path: Path) -> None:
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("user default on nopass ~* &* +@all\nuser carol on >pw ~c:* -@all +get\n")
    with atoll_server(tmp_path, "--aclfile", str(aclfile), shards=1) as server:
        c = server.client()
        assert sorted(c.acl_users()) == ["carol", "default"]
        c.execute_command("ACL", "SETUSER", "dave", "on", ">x", "+@all", "~*")
        assert c.acl_save()
        assert "user dave on #" in aclfile.read_text()
        aclfile.write_text("user default on nopass ~* &* +@all\n")
        assert c.acl_load()
        assert c.acl_users() == ["default"]
        aclfile.write_text("user default on nopass ~* &* +@all\nuser e on badrule\n")
        with pytest.raises(redis.ResponseError, match="Syntax error"):
            c.acl_load()
        assert c.acl_users() == ["default"]  # a bad file changes nothing
