"""RDB codec, snapshots, the append-only log and start-up loading."""

FATAL_EXIT = 78  # a shard that cannot load its data exits so; the supervisor then stops (EX_CONFIG)
