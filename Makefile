# The two commands of the README: `make run` and `make test`. Everything else is a step of theirs
# (and `make operator`, the operator against your current cluster).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: setup cluster run operator test unit clean

# A virtual environment with lmaas (editable) and its test tools; redone when pyproject changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# The main job: the quickstart pipeline (train on 2 nodes -> prune + int8 -> serve) on this machine.
run: setup
	$(VENV)/bin/lmaas run -f manifests/samples/quickstart/

# The operator against the cluster of your current kubeconfig.
operator: setup
	kubectl apply --server-side -k crds
	$(VENV)/bin/lmaas operator

# The test control plane (etcd, kube-apiserver, kube-controller-manager) from Go modules;
# cached outside the repo, so this is a hash check unless tests/cluster changed.
cluster: setup
	$(PY) -m tests.cluster build

test: setup cluster
	$(PY) -m pytest

unit: setup
	$(PY) -m pytest tests/unit

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
