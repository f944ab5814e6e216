"""Local jobs whose pods are real processes; whatever a test leaves running is stopped after it."""

from __future__ import annotations

import pytest

from lmaas_operator.local.jobs import LocalJob
from lmaas_operator.local.kubelet import LocalPod
from tests.unit.local.resources import SECRETS


@pytest.fixture
def local_job(tmp_path):
    """make(manifest, secrets=SECRETS) → a LocalJob, not started, with pods under tmp_path/pods and
    claims under tmp_path/volumes."""
    made: list[LocalJob] = []

    def make(manifest, secrets=SECRETS):
        template = manifest["spec"]["template"]

        def make_pod(index, attempt):
            name = f"{manifest['metadata']['name']}-{index}-{attempt}"
            return LocalPod(
                name,
                template,
                tmp_path / "pods" / name,
                tmp_path / "volumes",
                lambda secret, key: secrets.get(secret, {}).get(key),
                index=index,
            )

        job = LocalJob(manifest, make_pod)
        made.append(job)
        return job

    yield make
    for job in made:
        job.stop()
