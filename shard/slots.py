"""Keys to hash slots, and the default slot -> shard map.

``slot = CRC16(tag(key)) & 16383`` where ``tag`` is the text between the first ``{`` and the
next ``}`` when non-empty (Redis Cluster's rule; CRC16-CCITT/XMODEM is ``binascii.crc_hqx``).
Slots are dealt to shards in contiguous ranges, like a fresh Redis Cluster.  The gateway's
router, the snapshot loader and the scripting engine all use this one definition.
"""

from __future__ import annotations

import binascii

NSLOTS = 16384
crc16 = binascii.crc_hqx


def key_slot(key: bytes) -> int:
    """The hash slot of a key, honouring ``{hash tags}``."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc16(key, 0) & (NSLOTS - 1)


def default_owner(slot: int, shards: int) -> int:
    """The shard that owns ``slot`` when ``shards`` shards split the slots evenly."""
    return min(slot * shards // NSLOTS, shards - 1)
