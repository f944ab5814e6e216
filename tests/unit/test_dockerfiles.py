"""The images' Dockerfiles: linted here, since no Docker engine runs on these machines."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.corpus import REPO

DOCKERFILES = [REPO / "operator" / "Dockerfile", REPO / "worker" / "Dockerfile"]


def _hadolint():
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is missing: install the test extra (pip install -e .[test])")
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_passes_hadolint(dockerfile):
    out = subprocess.run([_hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_image_runs_as_a_non_root_user_from_a_pinned_base(dockerfile):
    lines = dockerfile.read_text().splitlines()
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert all(":" in b and not b.endswith(":latest") for b in bases)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
