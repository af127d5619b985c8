# Two entry points (README "Quick start"): `make demo` and `make test`.
# Both install exactly what uv.lock names (hashes included) into .venv; upgrading
# the lock is one deliberate step: `make lock-upgrade`, then review and commit uv.lock.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# uv itself is pinned too, and lives in its own small venv so syncing .venv to the
# lock can never remove it.
UV_VERSION = 0.13.9
UV_HOME = .uv
UV = $(UV_HOME)/bin/uv
# Never fetch a Python build: use the interpreter named by PYTHON.
export UV_PYTHON_DOWNLOADS = never
export UV_PROJECT_ENVIRONMENT = $(VENV)

.PHONY: install demo demo-reset test lint lock lock-upgrade bench-import bench-payments locales locales-extract screenshots

$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet uv==$(UV_VERSION)

# --locked: install the lock as it is, and fail if pyproject.toml no longer matches it.
# --compile-bytecode: compile the dependencies once, here (about 4 s), as a deployment
# would; otherwise the first processes to import them (the service, or each test
# worker of a fresh clone, all at once) compile them again, about 2.5 s of CPU each.
$(BIN)/qinqing: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --extra test --compile-bytecode --python $(PYTHON)
	touch $@

install: $(BIN)/qinqing

# After editing dependencies in pyproject.toml: re-resolve only what changed.
lock: | $(UV)
	$(UV) lock --python $(PYTHON)

# Move every dependency to its newest allowed release; review the diff of uv.lock.
lock-upgrade: | $(UV)
	$(UV) lock --upgrade --python $(PYTHON)

# Runs the service on the embedded SQLite default with demo data.
demo: install
	$(BIN)/qinqing serve --demo

# Wipes the demo's data directory and starts the demo afresh.
demo-reset: install
	$(BIN)/qinqing serve --demo --reset

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# The whole suite, SQLite and PostgreSQL cases alike, on pytest-xdist workers
# (TEST_WORKERS=0: in one process); each worker has its own databases. Two runs:
# everything but the browser tests, a worker that runs out taking the other's remaining
# tests (--dist worksteal: a few tests take 20-30 s, the rest a fraction of one); then the
# browser tests a file to a worker (--dist loadfile), because a module's journeys build
# on each other against its one live server. (Apart, because the session's Playwright
# browser keeps an event loop running in the main thread, which a later test calling
# asyncio.run() in the same worker would trip over.)
# PYTHONDONTWRITEBYTECODE is cleared: with it set (as on some machines), every worker
# and every server a test starts compiles our code and the tests from source again;
# written once, the bytecode is reused (the dependencies' is written at install).
# The first run takes one worker more than there are cores: its subprocess and
# concurrency tests spend part of their time waiting (a server starting, a signal's
# grace period, a lock), and a third worker fills that time (on 2 cores: 169 s
# against 177 s, and 14 instead of 54 core-seconds idle). The browser run is busy
# throughout; a worker more there gains nothing.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
BROWSER_TEST_WORKERS ?= auto
test: lint
	PYTHONDONTWRITEBYTECODE= QINQING_TEST_DATABASE_URL=$${QINQING_TEST_DATABASE_URL:-$(PG_TEST_URL)} \
	    $(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal --ignore=tests/web
	PYTHONDONTWRITEBYTECODE= QINQING_TEST_DATABASE_URL=$${QINQING_TEST_DATABASE_URL:-$(PG_TEST_URL)} \
	    $(BIN)/pytest -n $(BROWSER_TEST_WORKERS) --dist loadfile tests/web

bench-import: install
	createdb -h 127.0.0.1 -U postgres qinqing_bench 2>/dev/null || true
	$(BIN)/python -m bench.import_persons --rows 1000000

# Needs pgbench, psql and wrk (apt-get install -y wrk) and PostgreSQL on this machine
# (its CPU is read from /proc); wipes the named database. Options go in
# BENCH_PAYMENTS_ARGS, e.g. "--seconds 10 --repeat 3 --grouped --json result.json".
BENCH_DB ?= qinqing_bench
BENCH_PAYMENTS_ARGS ?=
bench-payments: install
	createdb -h 127.0.0.1 -U postgres $(BENCH_DB) 2>/dev/null || true
	$(BIN)/python -m bench.payments \
	    --database-url postgresql+psycopg://postgres@127.0.0.1:5432/$(BENCH_DB) $(BENCH_PAYMENTS_ARGS)

# The web app's message catalogs: re-extract the msgids from templates and code and
# merge them into the English .po (then translate the new entries), or compile the
# .po files to .mo (optional: the app compiles a missing or stale .mo in memory).
WEB = src/qinqing/web
locales-extract: install
	$(BIN)/pybabel extract -F $(WEB)/babel.cfg -k N_ --no-location --sort-output -o $(WEB)/locales/messages.pot $(WEB) src/qinqing/family/relations.py src/qinqing/family/proof_rules.py
	$(BIN)/pybabel update -i $(WEB)/locales/messages.pot -d $(WEB)/locales -l en -N --ignore-obsolete --ignore-pot-creation-date -w 100

locales: install
	$(BIN)/pybabel compile -d $(WEB)/locales --statistics

# Screenshots of the main pages (390 px and 1280 px, zh-CN) and of the unbind journey
# in 长辈模式 into docs/screenshots/; needs Chromium and CJK fonts
# (apt-get install -y chromium fonts-noto-cjk).
screenshots: install
	PYTHONPATH=tests $(BIN)/python tests/web/screenshots.py docs/screenshots
