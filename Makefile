# The two commands of the README's quick start:
#   make demo   set up .venv and run a real sweep (examples/quickstart.yaml) into ./tuner.db
#   make test   set up .venv (and Chromium, for the dashboard's browser tests) and run the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench browsers clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# constraints.txt pins torch to the CPU wheel (a looser pin pulls CUDA packages)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# A rerun starts the demo study afresh (the delete fails quietly on a fresh machine).
demo: $(STAMP)
	@$(VENV)/bin/tuner delete quickstart --yes --storage sqlite:///tuner.db >/dev/null 2>&1 || true
	$(VENV)/bin/tuner run examples/quickstart.yaml --storage sqlite:///tuner.db
	@echo
	@echo "See every trial in the browser:  $(VENV)/bin/tuner dashboard --storage sqlite:///tuner.db"
	@echo "                                 then open http://127.0.0.1:8501"

# The dashboard's browser tests drive Debian's Chromium (Playwright never downloads one).
CHROMIUM := /usr/bin/chromium

browsers:
	@test -x $(CHROMIUM) || { \
	  echo "installing Chromium for the dashboard's browser tests (apt-get)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browsers
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check tuner dashboard search_spaces tests bench examples
	$(VENV)/bin/ruff format --check tuner dashboard search_spaces tests bench examples
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench.overhead --out bench/RESULTS.md
	$(PY) -m bench.gp_parallel --out bench/RESULTS.md
	$(PY) -m bench.data_parallel --out bench/RESULTS.md
	$(PY) -m bench.memory --out bench/RESULTS.md
	$(PY) -m bench.streaming --out bench/RESULTS.md
	$(PY) -m bench.dashboard --out bench/RESULTS.md
	$(PY) -m bench.quality --quick --out bench/RESULTS.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tuner.egg-info
