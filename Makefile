# rec_lib: two commands do all the set-up on a fresh machine.
#   make demo   creates the environment if missing, then runs notebooks 01-06 headlessly on the default
#               dataset (06 beside 02-05) into reports/<dataset>/<run id>/ and compares the metrics with the
#               committed baseline
#   make test   installs the Debian packages and the environment if missing, then runs pytest in a
#               loopback-only network namespace (the tests start and stop MariaDB and Milvus themselves)
# Everything else here is for developers.

PYTHON    ?= python3
VENV      ?= .venv
DGL_VENV  ?= .venv-dgl
BIN       := $(VENV)/bin
DGL_BIN   := $(DGL_VENV)/bin
DATASET   ?= ml-latest-small

# Real MovieLens data is read where it lies (../shared/data beside the checkout), never copied in.
SHARED_DATA := $(abspath $(CURDIR)/../shared/data)
REC_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)/$(DATASET)),$(SHARED_DATA),$(CURDIR)/data/raw)
export REC_DATA_DIR

# Keep Jupyter, IPython and matplotlib files out of $HOME, and CI logs short.
export JUPYTER_CONFIG_DIR  := $(CURDIR)/.jupyter/config
export JUPYTER_DATA_DIR    := $(CURDIR)/.jupyter/data
export JUPYTER_RUNTIME_DIR := $(CURDIR)/.jupyter/runtime
export IPYTHONDIR          := $(CURDIR)/.jupyter/ipython
export MPLCONFIGDIR        := $(CURDIR)/.jupyter/matplotlib
export TQDM_MININTERVAL    ?= 5

# Test files that run on the DGL reference stack (it has no Jupyter, Milvus or web extras).
DGL_TESTS := tests/unit/test_loaders.py tests/unit/test_datasets.py tests/unit/test_preprocess.py tests/unit/test_graph.py \
             tests/unit/test_synthetic.py tests/unit/test_sampler.py tests/unit/test_model.py tests/unit/test_evaluation.py \
             tests/unit/test_train.py tests/unit/test_dgl_parity.py

PROFILE   ?= default
HOST      ?= 127.0.0.1
PORT      ?= 8000

.PHONY: demo test test-fast test-dgl system-packages serve screenshots lint format bench-data clean

demo: $(VENV)/.installed
	$(BIN)/python -m rec_lib report --dataset $(DATASET) --profile $(PROFILE)

test: system-packages $(VENV)/.installed
	tests/isolated.sh $(BIN)/python -m pytest

# The edit loop: the unit tier only (no servers, no notebooks), about a minute on 2 cores.
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -m unit -q

system-packages:
	tests/system-packages.sh

serve: $(VENV)/.installed
	$(BIN)/python -m rec_lib serve --host $(HOST) --port $(PORT)

# The README's screenshots of the page and the picker, from the stores make demo loaded (needs Chromium).
screenshots: system-packages $(VENV)/.installed
	$(BIN)/python tests/screenshots.py

test-dgl: $(DGL_VENV)/.installed
	REC_REQUIRE_DGL=1 tests/isolated.sh $(DGL_BIN)/python -m pytest -o addopts="-ra --strict-markers" $(DGL_TESTS)

lint: $(VENV)/.installed
	$(BIN)/ruff check rec_lib tests bench
	$(BIN)/ruff format --check rec_lib tests bench

format: $(VENV)/.installed
	$(BIN)/ruff format rec_lib tests bench
	$(BIN)/ruff check --fix rec_lib tests bench

bench-data: $(VENV)/.installed
	$(BIN)/python bench/bench_preprocess.py

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[pinsage,serve,notebooks,dev]'
	touch $@

$(DGL_VENV)/.installed: requirements/dgl.txt pyproject.toml
	$(PYTHON) -m venv $(DGL_VENV)
	$(DGL_BIN)/python -m pip install --quiet --upgrade pip
	$(DGL_BIN)/python -m pip install --quiet -r requirements/dgl.txt
	$(DGL_BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

clean:
	rm -rf $(VENV) $(DGL_VENV) .jupyter .pytest_cache .ruff_cache
