# Two commands on a fresh machine:
#   make run    set everything up (virtualenv, packages, bundled models) and start the service
#   make test   set up the same way and run the whole test suite (what CI runs)
#   make test-fast  the tests without a real LLM, a server process or a browser
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
RUN_STAMP := $(VENV)/.run-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=
# llama-cpp-python compiles llama.cpp on install. A native build (-march=native) on a CPU with AMX
# crashes in ggml's AMX matrix kernel on every multi-token prompt (seen with 0.3.36 on this
# project's 2-core CI machines); a portable build (AVX2, no AMX) works everywhere.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
# torch's CPU wheels: the default index would bring a multi-GB CUDA build the service never uses.
# Empty it where a package mirror serves the CPU build already.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PIP_INSTALL := $(BIN)/python -m pip install --progress-bar off \
               $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
SOURCES := $(shell find app migrations schemas -type f -not -name '*.pyc' 2>/dev/null)

.PHONY: setup run test test-fast lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# make run: the service alone (no test tools), installed as a user would install it.
# llama-cpp-python compiles from source on first install (about 5 minutes on 2 cores).
$(RUN_STAMP): pyproject.toml $(SOURCES) | $(BIN)/python
	$(PIP_INSTALL) .
	touch $(RUN_STAMP)

# make test: editable, with the dev extra (pytest, Playwright, schemathesis, mypy, datasets).
$(STAMP): pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/rac serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not browser" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/mypy app
