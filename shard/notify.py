"""Keyspace notifications: the event classes of ``notify-keyspace-events`` and how a shard
turns an event into the two channels Redis publishes it on.

Handlers call ``ctx.notify(CLASS, b"event", key)`` where Redis calls notifyKeyspaceEvent, with
the same event names; hot handlers guard the call with ``if ctx.events:`` so that with
notifications off (the default) an event costs one attribute check.  Notes collect in the
shard's ``ctx.notes`` while a batch runs and leave for the pub/sub actor in one message
(``shard/actor.py``).
"""

from __future__ import annotations

KEYSPACE, KEYEVENT = 1 << 0, 1 << 1
GENERIC, STRING, LIST, SET, HASH, ZSET = (1 << i for i in range(2, 8))
EXPIRED, EVICTED, STREAM, KEY_MISS, MODULE, NEW = (1 << i for i in range(8, 14))

LETTERS = {"K": KEYSPACE, "E": KEYEVENT, "g": GENERIC, "$": STRING, "l": LIST, "s": SET,
           "h": HASH, "z": ZSET, "x": EXPIRED, "e": EVICTED, "t": STREAM, "m": KEY_MISS,
           "d": MODULE, "n": NEW}
ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE  # "A"


def parse_events(text: str) -> int:
    """The class bits of a ``notify-keyspace-events`` value; 0 when nothing would be published
    (no class, or neither K nor E), so handlers can test ``ctx.events`` alone."""
    bits = 0
    for char in text:
        bits |= ALL if char == "A" else LETTERS.get(char, 0)
    if not bits & (KEYSPACE | KEYEVENT) or not bits & ~(KEYSPACE | KEYEVENT):
        return 0
    return bits


def notes_for(events: int, cls: int, event: bytes, key: bytes, db: int,
              notes: list[list[bytes]]) -> None:
    """Append the ``[channel, message]`` pairs Redis would publish for one event."""
    if not events & cls:
        return
    if events & KEYSPACE:
        notes.append([b"__keyspace@%d__:%s" % (db, key), event])
    if events & KEYEVENT:
        notes.append([b"__keyevent@%d__:%s" % (db, event), key])
