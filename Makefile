# The two commands of the README: `make run` and `make test`. Everything else is a step of theirs.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: setup run test unit lint-dockerfiles clean

# A virtual environment with lmaas (editable) and its test tools; redone when pyproject changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# The operator against the cluster of your current kubeconfig (until `lmaas run` lands).
run: setup
	kubectl apply -f crds/
	$(VENV)/bin/lmaas operator

test: setup
	$(PY) -m pytest

unit: setup
	$(PY) -m pytest tests/unit

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
