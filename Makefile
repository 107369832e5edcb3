# The two set-up commands of the README: `make demo` and `make test`. Both create (or update) .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test check corpus lint venv bytecode bench clean

venv: $(VENV)/.installed

# Re-install when the project's metadata changes. torch==2.13.0 is the CPU build this machine has on disk.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

# A real failing training run under trainwatch (`trainwatch demo`, shipped in the wheel): a CNN whose
# DataLoader worker meets a corrupt image. Its training fails on purpose: a non-zero status is expected.
demo: venv
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/trainwatch demo --json demo-report.json; \
	status=$$?; echo "(JSON report in demo-report.json)"; \
	test $$status -ne 0

# The project's bytecode, compiled once before the tests, as pip compiles an installed wheel's: where
# PYTHONDONTWRITEBYTECODE=1 is set (some CI images set it) every trainwatch process the integration
# tests start would otherwise compile its modules again (about 0.2 s each).
bytecode: venv
	@$(BIN)/python -m compileall -q cli diagnostics api tests > /dev/null

# pytest's own bytecode: its assertion rewriting of every test module (about 2.5 CPU-seconds a test
# worker) is kept between runs only where bytecode may be written, so it is allowed for the tests.
# Three workers on two cores: the real-run tests wait on their programs' sleeps, stalls and signals
# for a third of their time, and a third worker fills those waits (the whole suite in 243 s against
# 271 s with two, 247 s with four, one machine, one hour; the unit tests alone take the same).
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n 3 --dist loadgroup -q

# Unit tests (no child process), the corpus sweeps (every corpus log, in-process) and integration
# tests (real programs, real signals, real cgroups).
test: bytecode
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PYTEST) tests/unit tests/corpus tests/integration

# The unit tests alone: seconds, for the edit-test loop.
check: bytecode
	$(PYTEST) tests/unit

# The sweeps over every corpus log alone (accuracy floors, the split's honesty, capture formats, the
# matcher's shortcuts): what a change of the knowledge or of the reading moves.
corpus: bytecode
	$(PYTEST) tests/corpus

# The formatter and the linter, as CI runs them.
lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

bench: venv
	$(BIN)/python bench/launch.py

clean:
	rm -rf $(VENV) build dist *.egg-info demo-report.json
