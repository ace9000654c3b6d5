"""The replication actor: a process of its own that keeps the replication stream and its
replicas, or applies a master's stream (see replication/actor.py)."""
