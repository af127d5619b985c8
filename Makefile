# Two entry points (README "Quick start"): `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install demo test lint bench-import bench-payments

$(BIN)/qinqing: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/qinqing

# Runs the service on the embedded SQLite default with demo data.
demo: install
	$(BIN)/qinqing serve --demo

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# The whole suite, SQLite and PostgreSQL cases alike.
test: lint
	QINQING_TEST_DATABASE_URL=$${QINQING_TEST_DATABASE_URL:-$(PG_TEST_URL)} $(BIN)/pytest

bench-import: install
	createdb -h 127.0.0.1 -U postgres qinqing_bench 2>/dev/null || true
	$(BIN)/python bench/import_persons.py --rows 1000000

# Needs pgbench, psql and wrk (apt-get install -y wrk); wipes the named database.
bench-payments: install
	createdb -h 127.0.0.1 -U postgres qinqing_bench 2>/dev/null || true
	$(BIN)/python bench/payments.py
