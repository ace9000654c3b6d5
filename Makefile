# Two entry points for a fresh machine (see README): `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-all lint bench bench-types clean redis-tools

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)  ## start the server with the built-in default config
	$(BIN)/atoll-server conf/atoll.conf

# The tests compare Atoll with a real redis-server and drive it with redis-cli.
redis-tools:
	@command -v redis-server >/dev/null && command -v redis-cli >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null; }

test: $(STAMP) redis-tools  ## the whole suite minus the slow soak/fuzz runs (what CI runs)
	$(BIN)/pytest -m "not slow" -q

test-all: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check gateway shard persistence server pubsub replication admin tests bench
	$(BIN)/mypy gateway shard persistence server pubsub replication admin

bench: $(STAMP)  ## throughput against a real redis-server, as ratios
	bash bench/vs_redis.sh

bench-types: $(STAMP)  ## the same for the collection types
	bash bench/vs_redis.sh --tests lpush,lpop,sadd,hset,zadd,lrange_100

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
