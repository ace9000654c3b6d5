"""Intents in a shard (shard/intents.py): who waits, in what order, and what releases them."""

from __future__ import annotations

from typing import Any

from shard import wire
from shard.actor import ShardExecutor
from shard.intents import GATEWAY_SHIFT
from shard.wire import Blocked, Deferred

GW = b"gateway-a"
TX1 = (1 << GATEWAY_SHIFT) | 1
TX2 = (1 << GATEWAY_SHIFT) | 2


def entry(*argv: bytes | str | int, origin: int = 0, db: int = 0) -> list[Any]:
    raw = [a if isinstance(a, bytes) else str(a).encode() for a in argv]
    return [wire.meta(db, False, structured=True, origin=origin), raw]


def tagged(txid: int, *commands: list[bytes | str | int]) -> list[Any]:
    run = [[b"__tx", b"%d" % txid]]
    run += [[a if isinstance(a, bytes) else str(a).encode() for a in c] for c in commands]
    return [wire.meta(0, False, structured=True) | wire.RUN, run]


def batch(ex: ShardExecutor, *entries: list[Any], identity: bytes = GW) -> list[Any]:
    return ex.execute_batch(list(entries), identity)


def lock(ex: ShardExecutor, txid: int, mode: str, *keys: str, origin: int = 0) -> Any:
    args: list[str | int] = ["__lock", txid, mode]
    for key in keys:
        args += [0, key] if key != "*" else ["*"]
    return batch(ex, entry(*args, origin=origin))[0]


def unlock(ex: ShardExecutor, txid: int) -> None:
    assert batch(ex, entry("__unlock", txid)) == [1]


def sent(ex: ShardExecutor) -> dict[int, Any]:
    """Replies that left as unsolicited messages, by token."""
    out = {token: reply for _, token, reply in ex.outbox}
    ex.outbox.clear()
    return out


def test_an_entry_on_a_held_key_waits_until_release(ex: ShardExecutor) -> None:
    assert lock(ex, TX1, "TRY", "a", "b") == 1
    first, second = batch(ex, entry("set", "a", "1"), entry("set", "c", "1"))
    assert isinstance(first, Deferred)  # a is held
    assert second == b"OK"  # c is not held: it ran
    assert batch(ex, tagged(TX1, ["get", "a"], ["set", "a", "tx"])) == [[1, None, b"OK"]]
    unlock(ex, TX1)
    assert list(sent(ex)) == [first.token]
    assert batch(ex, entry("get", "a")) == [b"1"]  # the waiting SET ran after the holder


def test_tagged_entries_run_under_their_intents(ex: ShardExecutor) -> None:
    lock(ex, TX1, "TRY", "a")
    assert batch(ex, tagged(TX1, ["set", "a", "x"], ["get", "a"])) == [[1, b"OK", b"x"]]
    assert isinstance(batch(ex, entry("get", "a"))[0], Deferred)


def test_try_answers_zero_on_conflict_and_wait_is_granted_on_release(ex: ShardExecutor) -> None:
    assert lock(ex, TX1, "TRY", "a") == 1
    assert lock(ex, TX2, "TRY", "a", "b") == 0
    assert ex.intents.owner.get((0, b"b")) is None  # a failed TRY holds nothing
    waiting = lock(ex, TX2, "WAIT", "a", "b")
    assert isinstance(waiting, Deferred)
    unlock(ex, TX1)
    assert sent(ex) == {waiting.token: 1}
    assert ex.intents.owner[(0, b"a")] == TX2 and ex.intents.owner[(0, b"b")] == TX2


def test_waiting_entries_keep_their_order_per_key(ex: ShardExecutor) -> None:
    lock(ex, TX1, "TRY", "a")
    first = batch(ex, entry("set", "a", "1"))[0]
    lock_b = lock(ex, TX2, "WAIT", "a")  # queued behind the SET
    second = batch(ex, entry("set", "a", "2"))[0]  # behind the lock request
    unlock(ex, TX1)
    replies = sent(ex)
    assert first.token in replies and lock_b.token in replies
    assert second.token not in replies  # TX2 holds a now
    assert batch(ex, tagged(TX2, ["get", "a"]))[0][1] == b"1"
    unlock(ex, TX2)
    assert second.token in sent(ex)
    assert batch(ex, entry("get", "a")) == [b"2"]


def test_a_clients_later_entries_wait_behind_its_waiting_one(ex: ShardExecutor) -> None:
    lock(ex, TX1, "TRY", "a")
    waiting = batch(ex, entry("set", "a", "1", origin=7))[0]
    later = batch(ex, entry("set", "free", "1", origin=7))[0]
    other = batch(ex, entry("set", "free2", "1", origin=8))[0]
    assert isinstance(waiting, Deferred) and isinstance(later, Deferred)
    assert not isinstance(other, Deferred)  # another client is not held up
    unlock(ex, TX1)
    assert list(sent(ex)) == [waiting.token, later.token]


def test_whole_intents_hold_every_key_and_wait_for_key_intents(ex: ShardExecutor) -> None:
    assert lock(ex, TX1, "TRY", "a") == 1
    assert lock(ex, TX2, "TRY", "*") == 0
    whole = lock(ex, TX2, "WAIT", "*")
    assert isinstance(whole, Deferred)
    behind = batch(ex, entry("get", "unrelated"))[0]
    assert isinstance(behind, Deferred)  # nothing overtakes a waiting barrier
    unlock(ex, TX1)
    assert list(sent(ex)) == [whole.token]
    assert isinstance(batch(ex, entry("dbsize"))[0], Deferred)
    unlock(ex, TX2)
    assert behind.token in sent(ex)


def test_bookkeeping_entries_never_wait(ex: ShardExecutor) -> None:
    lock(ex, TX1, "TRY", "*")
    assert batch(ex, entry("__watch", 5, "a")) == [1]
    assert batch(ex, entry("__scan", 0, 10, "*", "")) != []


def test_a_blocked_client_is_not_served_from_a_held_key(ex: ShardExecutor) -> None:
    parked = ex.execute_batch([[wire.meta(0, False), [b"blpop", b"l", b"0"]]], GW)[0]
    assert isinstance(parked, Blocked)
    lock(ex, TX1, "TRY", "l")
    batch(ex, tagged(TX1, ["rpush", "l", "x", "y"], ["lpop", "l"]))
    assert sent(ex) == {}  # the transaction's hops see the list unchanged by the waiter
    unlock(ex, TX1)
    assert sent(ex) == {parked.token: b"*2\r\n$1\r\nl\r\n$1\r\ny\r\n"}


def test_a_waiting_blocking_command_keeps_its_token_when_it_parks(ex: ShardExecutor) -> None:
    lock(ex, TX1, "TRY", "l")
    waiting = ex.execute_batch([[wire.meta(0, False), [b"blpop", b"l", b"0"]]], GW)[0]
    assert isinstance(waiting, Deferred)
    unlock(ex, TX1)
    parked = sent(ex)[waiting.token]
    assert isinstance(parked, Blocked) and parked.token == waiting.token
    batch(ex, entry("rpush", "l", "v"))
    assert sent(ex) == {waiting.token: b"*2\r\n$1\r\nl\r\n$1\r\nv\r\n"}


def test_hello_releases_what_a_restarted_gateway_held(ex: ShardExecutor) -> None:
    lock(ex, TX1, "TRY", "a")
    other = (2 << GATEWAY_SHIFT) | 1
    assert lock(ex, other, "TRY", "b") == 1
    waiting = batch(ex, entry("get", "a"))[0]
    assert batch(ex, entry("__hello", 1)) == [1]
    assert sent(ex) == {waiting.token: None}
    assert ex.intents.owner == {(0, b"b"): other}


def test_blocked_clients_are_served_right_after_the_command_that_fed_them(ex: ShardExecutor) -> None:
    """Redis serves waiters after each command, not after a batch: here the first waiter must
    get WRONGTYPE from the pushed element before the second client's BRPOPLPUSH takes it."""
    resp = wire.meta(0, False)
    batch(ex, [resp, [b"set", b"target1", b"nolist"]])
    first = batch(ex, [resp, [b"brpoplpush", b"blist", b"target1", b"0"]])[0]
    assert isinstance(first, Blocked)
    push, second = batch(ex, [resp, [b"lpush", b"blist", b"foo"]],
                         [resp, [b"brpoplpush", b"blist", b"target2", b"0"]])
    assert push == b":1\r\n" and second == b"$3\r\nfoo\r\n"
    assert sent(ex) == {first.token: b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"}


def test_a_waiting_lock_on_keys_that_moved_away_is_not_left_granted(ex: ShardExecutor) -> None:
    """A lock request that waited while its keys' slot moved to another shard is answered
    Moved (its transaction plans again and never unlocks here): the grant runnable() gave it
    must not stay behind, or the keys are held for good (slot moves then time out)."""
    from shard.slots import key_slot

    assert lock(ex, TX1, "TRY", "k") == 1
    waiting = lock(ex, TX2, "WAIT", "k", "other")
    assert isinstance(waiting, Deferred)
    ex.moved_out.add(key_slot(b"k"))
    unlock(ex, TX1)
    assert isinstance(sent(ex)[waiting.token], wire.Moved)
    assert ex.intents.held == {} and ex.intents.owner == {}
    assert lock(ex, TX1, "TRY", "other") == 1  # nothing left held by TX2


def test_a_release_drops_the_transactions_own_waiting_lock(ex: ShardExecutor) -> None:
    """A coordinator that lost a shard's answer (the shard restarted) releases it anyway: a
    lock request of its that reached the new process and waits there must not be granted
    later, or the keys would stay held forever."""
    assert lock(ex, TX1, "TRY", "a") == 1
    waiting = lock(ex, TX2, "WAIT", "a", "b")
    assert isinstance(waiting, Deferred)
    unlock(ex, TX2)  # its coordinator gave up on this lock
    unlock(ex, TX1)
    assert sent(ex) == {}
    assert ex.intents.owner == {} and ex.intents.held == {}
    assert batch(ex, entry("set", "b", "1")) == [b"OK"]
