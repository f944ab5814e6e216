"""The repository layout that DESIGN.md promises."""

import ast
import subprocess
import sys

from tests.unit.corpus import REPO


def test_operator_folder_is_not_a_package_shadowing_the_stdlib():
    assert not (REPO / "operator" / "__init__.py").exists()
    import operator

    assert hasattr(operator, "itemgetter")  # still the standard library's


def test_the_command_reaches_a_role_only_inside_the_subcommand_that_runs_it():
    """Which package may import which is import-linter's (pyproject.toml, run by test_guard_rails);
    this is what it cannot see: `lmaas` imports no role at start-up, so the operator image needs
    no torch and the worker image no kopf."""
    cli = ast.parse((REPO / "api" / "lmaas_cli" / "main.py").read_text())
    top_level = [n for n in cli.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not [n for n in top_level if "lmaas_worker" in ast.dump(n) or "lmaas_operator" in ast.dump(n)]


def test_importing_the_operator_loads_no_torch():
    code = "import sys, lmaas_operator.main, lmaas_cli.main; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_the_api_types_load_without_kopf():
    # The worker and `lmaas run` use the typed specs; neither needs kopf.
    code = "import sys, lmaas_api.spec, lmaas_api.validation; print('kopf' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_the_artifact_package_sits_below_the_roles():
    """The worker's roles use `lmaas_worker.artifacts`; it imports none of them, at run time either,
    and needs no lazy import to dodge a cycle."""
    code = (
        "import sys, lmaas_worker.artifacts; "
        "print(sorted(m for m in sys.modules if m.startswith(('lmaas_worker.compress', 'lmaas_worker.train', "
        "'lmaas_worker.serve'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
    package = REPO / "worker" / "lmaas_worker" / "artifacts"
    lazy = [
        (str(p.relative_to(REPO)), node.lineno)
        for p in package.rglob("*.py")
        for function in ast.walk(ast.parse(p.read_text()))
        if isinstance(function, ast.FunctionDef)
        for node in ast.walk(function)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    assert lazy == []
