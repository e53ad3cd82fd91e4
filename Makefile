# Two commands on a fresh machine:
#   make run    set everything up (virtualenv, packages, bundled models) and start the service
#   make test   set up the same way and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=
# llama-cpp-python compiles llama.cpp on install. A native build (-march=native) on a CPU with AMX
# crashes in ggml's AMX matrix kernel on every multi-token prompt (seen with 0.3.36 on this
# project's 2-core CI machines); a portable build (AVX2, no AMX) works everywhere.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: setup run test lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# llama-cpp-python compiles from source on first install (about 5 minutes on 2 cores).
	$(BIN)/python -m pip install --progress-bar off -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/rac serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/mypy app
