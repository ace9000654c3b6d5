"""The slot map: which shard owns each of the 16384 hash slots.

The supervisor owns it.  It starts as contiguous ranges (like a fresh Redis Cluster), changes
only through online slot moves (``server/migration.py``), and is saved as JSON next to the
data (``dir/atoll-slots.json``) so a restart keeps it.  Every shard and gateway gets the
owners at start; a move pushes the change to each of them.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from shard.slots import NSLOTS, default_owner

log = logging.getLogger("atoll")


def contiguous(shards: int) -> list[int]:
    return [default_owner(slot, shards) for slot in range(NSLOTS)]


def ranges(owners: list[int]) -> list[list[int]]:
    """``[[first, last, shard], ...]``: runs of consecutive slots with one owner."""
    out: list[list[int]] = []
    for slot, shard in enumerate(owners):
        if out and out[-1][2] == shard and out[-1][1] == slot - 1:
            out[-1][1] = slot
        else:
            out.append([slot, slot, shard])
    return out


def from_ranges(spans: list[list[int]]) -> list[int]:
    owners = [-1] * NSLOTS
    for first, last, shard in spans:
        owners[first : last + 1] = [shard] * (last - first + 1)
    if -1 in owners:
        raise ValueError("the slot map leaves slots without an owner")
    return owners


def parse_slots(text: str) -> list[int]:
    """``0-1000,2000,3000-3010`` -> slot numbers (each range inclusive)."""
    slots: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if not 0 <= low <= high < NSLOTS:
            raise ValueError(f"bad slot range {part!r} (slots are 0-{NSLOTS - 1})")
        slots.extend(range(low, high + 1))
    return sorted(set(slots))


class SlotMap:
    def __init__(self, shards: int, owners: list[int] | None = None, version: int = 1) -> None:
        self.shards = shards
        self.owners = owners if owners is not None else contiguous(shards)
        self.version = version

    def slots_of(self, shard: int) -> list[int]:
        return [slot for slot, owner in enumerate(self.owners) if owner == shard]

    def counts(self) -> list[int]:
        counts = [0] * self.shards
        for owner in self.owners:
            counts[owner] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "shards": self.shards, "ranges": ranges(self.owners)}

    def save(self, directory: str) -> None:
        path = os.path.join(directory, "atoll-slots.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.to_dict(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, directory: str, shards: int) -> SlotMap:
        """The saved map, or contiguous ranges when there is none or it was made for another
        shard count (the snapshot loader redistributes keys by whatever map is in force)."""
        path = os.path.join(directory, "atoll-slots.json")
        try:
            with open(path) as f:
                data = json.load(f)
            if int(data["shards"]) != shards:
                log.warning("Slot map %s is for %s shards, not %d: starting from contiguous "
                            "ranges", path, data["shards"], shards)
                return cls(shards)
            return cls(shards, from_ranges(data["ranges"]), int(data["version"]))
        except FileNotFoundError:
            return cls(shards)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("Cannot read the slot map %s (%s): starting from contiguous ranges",
                        path, exc)
            return cls(shards)
