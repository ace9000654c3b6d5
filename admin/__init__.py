"""``atoll-admin``: administration of a running Atoll server over its control sockets."""
