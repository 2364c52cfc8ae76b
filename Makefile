# Every target sets up what it needs: the virtualenv (torch first, pinned), redis-server and
# PostgreSQL's server programs (for the embedded archive database and the tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A GPU host overrides this, e.g. `make TORCH_SPEC='torch==2.13.0' ...` with its CUDA index.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
LOCAL_REDIS_PORT ?= 6390
export LOCAL_REDIS_PORT
LOCAL_POSTGRES_PORT ?= 6391
export LOCAL_POSTGRES_PORT

# `make load`: Locust against a running system (make run), headless, limits as variables.
LOAD_HOST ?= http://127.0.0.1:$(or $(WEB_PORT),8000)
LOAD_USERS ?= 50
LOAD_SPAWN_RATE ?= 10
LOAD_DURATION ?= 2m
LOAD_MAX_FAIL_RATIO ?= 0.01
LOAD_MAX_P99_MS ?= 1000
export LOAD_API_KEY ?= dev-key

.PHONY: help venv redis postgres rabbitmq tools chromium console-shots run chaos test lint format bench bench-ingest bench-screen bench-e2e bench-archive bench-console bench-index clean index model eval worker ledger demo load replay-dlq migrate export-reviews

help:
	@echo "make run           start Redis, web, beat, workers and Flower locally (Ctrl-C stops all)"
	@echo "make run RABBITMQ=1  the same with a local RabbitMQ as the Celery broker"
	@echo "make run CLUSTER=1   the streams on a local 3-master Redis Cluster, RabbitMQ as broker"
	@echo "make chaos         restart Redis and kill every process kind under load; check it heals"
	@echo "make demo          send a few hundred labelled events to a running system, show decisions"
	@echo "make console-shots  a PNG of each console page of a running system, in var/console/"
	@echo "make ledger        check accepted = high + low + dead-lettered + in flight, and the archive"
	@echo "make replay-dlq    send dead-lettered events back through screening, once each"
	@echo "make load          Locust against a running system; reports under var/load/"
	@echo "make export-reviews  moderators' verdicts as a text,label,source CSV (OUT=file)"
	@echo "make migrate       migrate the archive database at DATABASE_URL to the latest schema"
	@echo "make worker GPU=0  one screening worker pinned to GPU 0 (no GPU=: a CPU worker)"
	@echo "make index / eval  build the reference index / measure quality"
	@echo "make model         retrain the shipped head and blender (writes core/screening/data/model)"
	@echo "make test          lint, then the test suite against a real redis-server"
	@echo "make lint          ruff + mypy (strict on core/)"
	@echo "make bench         every benchmark, then one table of every ratio against its goal"
	@echo "make bench-index   each REFERENCE_INDEX type against flat: recall@10, memory, search time"

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, on its own: installed later as a dependency it could pull a CUDA build.
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -c requirements/constraints.txt -e '.[screen,ops,dev]'
	touch $@

venv: $(STAMP)

redis:
	@scripts/ensure-tool.sh redis-server

postgres:
	@scripts/ensure-tool.sh initdb postgresql

# The Celery broker of `make run RABBITMQ=1` and of the tests on RabbitMQ.
rabbitmq:
	@scripts/ensure-tool.sh rabbitmq-server

# What the deployment tests run: promtool (Debian's prometheus), docker-compose (v1, which
# resolves the compose file without a Docker engine) and kubectl (its kustomize builds the
# Kubernetes overlays offline).
tools:
	@scripts/ensure-tool.sh promtool prometheus
	@scripts/ensure-tool.sh docker-compose
	@scripts/ensure-tool.sh kubectl

# The console's browser tests and `make console-shots` drive Debian's Chromium.
chromium:
	@scripts/ensure-tool.sh chromium

run: venv redis postgres index $(if $(or $(RABBITMQ),$(CLUSTER)),rabbitmq)
	$(BIN)/python -m scripts.local_stack --exit-with-parent $(if $(RABBITMQ),--rabbitmq) \
		$(if $(CLUSTER),--cluster)

chaos: venv redis postgres index
	$(BIN)/python -m scripts.chaos $(CHAOS_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core webapp tasks scripts deploy bench

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint redis postgres rabbitmq tools chromium
	$(BIN)/pytest $(PYTEST_ARGS)

bench: bench-ingest bench-screen bench-e2e bench-archive bench-console
	$(BIN)/python -m bench.report

bench-ingest: venv redis
	@scripts/ensure-tool.sh wrk
	$(BIN)/python -m bench.ingest $(if $(CLUSTER),--cluster) $(BENCH_ARGS)

bench-screen: venv redis index
	$(BIN)/python -m bench.screen $(BENCH_ARGS)

bench-e2e: venv redis index
	$(BIN)/python -m bench.e2e $(if $(CLUSTER),--cluster) $(BENCH_ARGS)

# Not part of `make bench`: its build of every index type at scale takes many minutes.
bench-index: venv index
	$(BIN)/python -m bench.index $(BENCH_ARGS)

bench-archive: venv redis postgres
	$(BIN)/python -m bench.archive $(BENCH_ARGS)

bench-console: venv redis postgres
	$(BIN)/python -m bench.console $(BENCH_ARGS)

worker: venv index
	$(BIN)/python -m tasks.worker $(if $(GPU),--gpu $(GPU),--cpu)

# A system started by `make run` keeps its Redis on LOCAL_REDIS_PORT and its PostgreSQL on
# LOCAL_POSTGRES_PORT; point at them by default.
ledger demo console-shots replay-dlq export-reviews: export REDIS_URL ?= redis://127.0.0.1:$(LOCAL_REDIS_PORT)/0
ledger export-reviews migrate: export DATABASE_URL ?= postgresql://postgres@127.0.0.1:$(LOCAL_POSTGRES_PORT)/screening

ledger: venv
	$(BIN)/python scripts/ledger.py

demo: venv
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

console-shots: venv chromium
	$(BIN)/python -m scripts.console_shots $(SHOTS_ARGS)

replay-dlq: venv
	$(BIN)/python scripts/replay_dlq.py $(REPLAY_ARGS)

load: venv
	mkdir -p var/load
	$(BIN)/locust -f bench/locustfile.py --headless --only-summary --host $(LOAD_HOST) \
		--users $(LOAD_USERS) --spawn-rate $(LOAD_SPAWN_RATE) --run-time $(LOAD_DURATION) \
		--csv var/load/load --html var/load/report.html \
		--max-fail-ratio $(LOAD_MAX_FAIL_RATIO) --max-p99-ms $(LOAD_MAX_P99_MS)

export-reviews: venv
	$(BIN)/python scripts/export_reviews.py $(if $(OUT),--out $(OUT))

migrate: venv
	$(BIN)/python scripts/migrate.py

clean:
	rm -rf var/prometheus .pytest_cache .mypy_cache .ruff_cache

index: venv
	$(BIN)/python scripts/build_index.py

# Rebuild the shipped trained weights (head, blender, card) from the shipped reference set.
model: venv
	$(BIN)/python scripts/train_model.py

eval: venv
	$(BIN)/python scripts/evaluate.py $(if $(DATA),--data $(DATA)) $(if $(REPORT),--report $(REPORT)) $(if $(ADAPT),--adapt $(ADAPT)) $(EVAL_ARGS)
