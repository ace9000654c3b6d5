"""RDB codec, snapshots and start-up loading (append-only log to come)."""

FATAL_EXIT = 78  # a shard that cannot load its data exits so; the supervisor then stops (EX_CONFIG)
