# Two entry points (README "Quick start"): `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install demo test lint bench-import bench-payments locales locales-extract screenshots

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

# The web app's message catalogs: re-extract the msgids from templates and code and
# merge them into the English .po (then translate the new entries), or compile the
# .po files to .mo (optional: the app compiles a missing or stale .mo in memory).
WEB = src/qinqing/web
locales-extract: install
	$(BIN)/pybabel extract -F $(WEB)/babel.cfg -k N_ --no-location --sort-output -o $(WEB)/locales/messages.pot $(WEB)
	$(BIN)/pybabel update -i $(WEB)/locales/messages.pot -d $(WEB)/locales -l en -N --ignore-obsolete --ignore-pot-creation-date -w 100

locales: install
	$(BIN)/pybabel compile -d $(WEB)/locales --statistics

# Screenshots of the main pages (390 px and 1280 px, zh-CN) and of the unbind journey
# in 长辈模式 into docs/screenshots/; needs Chromium and CJK fonts
# (apt-get install -y chromium fonts-noto-cjk).
screenshots: install
	PYTHONPATH=tests $(BIN)/python tests/web/screenshots.py docs/screenshots
