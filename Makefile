# Every target creates the virtual environment when it is missing, so a fresh
# clone needs nothing but Python and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo demo-stop test test-unit test-integration lint clean pgbouncer

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The main job: apply examples/migrations, then show status and history. Uses
# $$DATABASE_URL when set, else an embedded PostgreSQL kept in .sqlmig-demo/.
demo: $(STAMP)
	@url="$${DATABASE_URL:-$$($(BIN)/python examples/demo_server.py)}" && \
	export DATABASE_URL="$$url" SQLMIG_DIR=examples/migrations && \
	$(BIN)/sqlmig up && $(BIN)/sqlmig status && $(BIN)/sqlmig history

demo-stop: $(STAMP)
	$(BIN)/python examples/demo_server.py --stop

# Two workers: the reliability tests on one, one after the other, the rest on both.
test: $(STAMP) pgbouncer
	$(BIN)/pytest -n 2 --dist loadgroup

test-unit: $(STAMP)
	$(BIN)/pytest -m "not integration"

test-integration: $(STAMP) pgbouncer
	$(BIN)/pytest -n 2 --dist loadgroup -m integration

# The pooler tests start their own PgBouncer; this installs the package when it is
# missing and the machine allows it (root with apt-get), else they skip.
pgbouncer:
	@sh tests/install-pgbouncer.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests alembic_compat
	$(BIN)/ruff format --check src tests alembic_compat
	$(BIN)/mypy src alembic_compat

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The benchmark (issue 6): sqlmig against the floor and its peers, on an embedded
# PostgreSQL 16 (or $$SQLMIG_BENCH_DATABASE_URL). bench/.venv holds the Python peers,
# bench/.venv-typer-* sqlmig with typer 0.28 and the newest typer (case 4),
# bench/node_modules dbmate (from npm; without it the bench says why and goes on).
.PHONY: bench bench-smoke
bench: $(STAMP)
	sh bench/venv.sh $(PYTHON)
	sh bench/npm.sh
	$(BIN)/python bench/run.py --output bench/RESULTS.md

# The same code, small (N = 20, one repetition), report in a temp file; fails only
# when a case cannot run. For CI.
bench-smoke: $(STAMP)
	sh bench/venv.sh $(PYTHON)
	sh bench/npm.sh
	$(BIN)/python bench/run.py --smoke
