# One entry point for people and CI. Every target does its own set-up on a fresh machine:
# the virtualenv with the package and its extras at the versions of the lock, the programs the
# tests need (scripts/ensure-tools), and the Kafka jars (fetched with Maven, cached outside git
# in ~/.cache/sunspots).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Every install takes its versions from here; `make lock` refreshes it from pyproject.toml.
LOCK := requirements/lock.txt
# The SILSO daily file: SUNSPOTS_DATA (a path or a URL) when set, else the shared copy beside
# the checkout when there is one, else each command's default, SILSO's live file
# (sunspots.domain.data.SILSO_DAILY_URL), downloaded once into ~/.cache/sunspots.
DATA ?= $(wildcard ../shared/data/SN_d_tot_V2.0.csv)
ifneq ($(strip $(DATA)),)
export SUNSPOTS_DATA ?= $(DATA)
endif
# The commit whose forecaster `make bench` also replays, for a before/after comparison on one
# machine in one run (bench/__main__.py's BASELINE_REF is docs/performance.md's); none by default: it
# adds a full replay, and needs that commit in the clone's history.
BASELINE ?=

.PHONY: help venv tools jars data kafka kafka-stop kafka-cluster test test-cluster test-unit test-model test-model-portable test-integration fuzz lint format lock lock-upgrade train train-seeds demo bench docs clean

help:
	@echo "make demo   - replay sunspots through Kafka, the forecaster and the classifier"
	@echo "             (ARGS=\"--speed 30 --start 2008-01-01\" to watch it live)"
	@echo "make test   - every test tier (unit, model, integration on a real broker)"
	@echo "             (make test-model-portable: the model tier as on another CPU)"
	@echo "make train  - retrain the committed model artifacts"
	@echo "make bench  - benchmarks (tables in bench/results; BASELINE=<commit> to compare with it)"
	@echo "make fuzz   - the fuzz tests with a deep search (minutes)"
	@echo "make kafka / kafka-stop - a local broker on 127.0.0.1:9092"
	@echo "make kafka-cluster - a local three-node cluster on 127.0.0.1:9092-9094 (kafka-stop stops it)"
	@echo "make test-cluster - node faults on a three-node cluster (CI runs it after make test)"
	@echo "make docs   - regenerate the reference tables in docs/ from the code"
	@echo "make lock   - re-resolve $(LOCK) after a change to pyproject.toml"
	@echo "             (make lock-upgrade: move every pin to the newest release)"

# The package itself with -qq, errors only: setuptools explains at length what an editable
# install is.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c $(LOCK) pip
	$(PY) -m pip install -qq -c $(LOCK) -e '.[train,dev]'
	touch $(STAMP)

venv: $(STAMP)

# Java, Maven, Prometheus, promtool, kcat: installed with apt-get as root, else named.
tools:
	scripts/ensure-tools

jars: $(STAMP)
	$(PY) -m devtools.broker fetch

kafka: jars
	$(PY) -m devtools.broker start

kafka-cluster: jars
	$(PY) -m devtools.broker start --nodes 3

kafka-stop: $(STAMP)
	$(PY) -m devtools.broker stop

# The data file as a local path before the tests: a URL is downloaded once into the cache and
# its sha256 told (recorded beside it); when it cannot be, one line says what to set instead.
data: $(STAMP)
	$(PY) -m sunspots.domain.data

# Every tier but the cluster's, which starts a three-node cluster of its own: `test-cluster`.
test: tools jars data
	$(PY) -m pytest -m "not cluster"

test-cluster: tools jars data
	$(PY) -m pytest -m cluster

test-unit: tools data
	$(PY) -m pytest -m unit

test-model: data
	$(PY) -m pytest -m model

# The model tier again as on another CPU: NumPy's AVX2/AVX-512 loops off, OpenBLAS's
# Sandybridge kernels, TensorFlow without oneDNN (tests/portable.py), so that a figure
# recomputed from the weights is compared with the committed one within a tolerance, never
# to the bit of the machine that trained it.
test-model-portable: data
	$(PY) -m tests.portable -m model

test-integration: tools jars data
	$(PY) -m pytest -m integration

# The property-based fuzz tests, deep: 20,000 examples per decoder test and 2,000 per processor
# test, a new seed each run, failures kept in .hypothesis/ and tried first the next time
# (`make test` runs them with a fixed seed and fewer examples).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=deep $(PY) -m pytest tests/unit/test_fuzz_decoders.py tests/unit/test_fuzz_processors.py

# The generated tables of docs/ (configuration, metrics, topics, exit codes), from the code;
# tests/unit/test_reference.py fails when one is stale.
docs: $(STAMP)
	$(PY) -m support.reference

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The lock pins every package of every extra (pip and setuptools too) for this Python; the
# Makefile, CI and docker/Dockerfile install with it as constraints. `lock` keeps the pins it
# has and resolves what pyproject.toml added; `lock-upgrade` moves everything to the newest.
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet \
	--extra train --extra dev --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
	--output-file $(LOCK) pyproject.toml

lock: $(STAMP)
	$(PIP_COMPILE)

lock-upgrade: $(STAMP)
	$(PIP_COMPILE) --upgrade

# The commands read the data file from SUNSPOTS_DATA (or take SILSO's) themselves.
train: $(STAMP)
	$(PY) -m training forecaster --seed 0
	$(PY) -m training forecaster --seed 0 --window 27
	$(PY) -m training classifier

# The 3-seed study behind docs/models.md's figures (about 5 minutes on 2 cores).
train-seeds: $(STAMP)
	$(PY) -m training seeds --seeds 0,1,2
	$(PY) -m training seeds --seeds 0,1,2 --window 27

demo: jars
	$(PY) -m demo $(ARGS)

bench: jars data
	$(PY) -m bench $(if $(BASELINE),--baseline $(BASELINE)) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache reports/demo bench/results
