#!/usr/bin/env bash
# Throughput ratios Atoll/Redis with redis-benchmark -c 50 at -P 1 and -P 16 (set get incr lpush).
# Usage: bench/vs_redis.sh [--shards N] [--requests N] [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python bench/vs_redis.py "$@"
