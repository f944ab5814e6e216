"""The guard rails, run by the test command: ruff (lint and format), mypy (strict, for the contract
package) and import-linter (the boundaries between the roles), each configured in pyproject.toml."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.corpus import REPO

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"], ["lint-imports"]],
    ids=["ruff-check", "ruff-format", "mypy", "import-linter"],
)
def test_the_code_passes(command):
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, (
        f"{' '.join(command)} (from the repository root):\n{result.stdout[-6000:]}{result.stderr[-2000:]}"
    )
