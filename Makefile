# One entry point for people and CI. Every target does its own set-up on a fresh machine:
# the virtualenv, the package with its extras, and the Kafka jars (fetched with Maven, cached
# outside git in ~/.cache/sunspots).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA ?= $(firstword $(wildcard ../shared/data/SN_d_tot_V2.0.csv) https://www.sidc.be/SILSO/INFO/sndtotcsv.php)
export SUNSPOTS_DATA ?= $(DATA)

.PHONY: help venv jars kafka kafka-stop test test-unit test-model test-integration fuzz lint format train train-seeds demo bench clean

help:
	@echo "make demo   - replay sunspots through Kafka, the forecaster and the classifier"
	@echo "             (ARGS=\"--speed 30 --start 2008-01-01\" to watch it live)"
	@echo "make test   - every test tier (unit, model, integration on a real broker)"
	@echo "make train  - retrain the committed model artifacts"
	@echo "make bench  - benchmarks (tables in bench/results)"
	@echo "make fuzz   - the fuzz tests with a deep search (minutes)"
	@echo "make kafka / kafka-stop - a local broker on 127.0.0.1:9092"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $(STAMP)

venv: $(STAMP)

jars: $(STAMP)
	$(PY) -m sunspots.broker fetch

kafka: jars
	$(PY) -m sunspots.broker start

kafka-stop: $(STAMP)
	$(PY) -m sunspots.broker stop

test: jars
	$(PY) -m pytest

test-unit: $(STAMP)
	$(PY) -m pytest -m unit

test-model: $(STAMP)
	$(PY) -m pytest -m model

test-integration: jars
	$(PY) -m pytest -m integration

# The property-based fuzz tests, deep: 20,000 examples per decoder test and 2,000 per processor
# test, a new seed each run, failures kept in .hypothesis/ and tried first the next time
# (`make test` runs them with a fixed seed and fewer examples).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=deep $(PY) -m pytest tests/unit/test_fuzz_decoders.py tests/unit/test_fuzz_processors.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

train: $(STAMP)
	$(PY) -m training forecaster --data $(DATA) --seed 0
	$(PY) -m training forecaster --data $(DATA) --seed 0 --window 27
	$(PY) -m training classifier

# The 3-seed study behind the README's figures (about 5 minutes on 2 cores).
train-seeds: $(STAMP)
	$(PY) -m training seeds --data $(DATA) --seeds 0,1,2
	$(PY) -m training seeds --data $(DATA) --seeds 0,1,2 --window 27

demo: jars
	$(PY) -m demo --data $(DATA) $(ARGS)

bench: jars
	$(PY) -m bench --data $(DATA) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache reports/demo bench/results
