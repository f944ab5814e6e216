"""The repository layout that DESIGN.md promises."""
import ast
import subprocess
import sys

from tests.unit.corpus import REPO


def test_operator_folder_is_not_a_package_shadowing_the_stdlib():
    assert not (REPO / "operator" / "__init__.py").exists()
    import operator

    assert hasattr(operator, "itemgetter")  # still the standard library's


def _imported_modules(package_dir):
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                yield from ((path, a.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path, node.module


def test_the_operator_package_never_imports_torch():
    offenders = [
        (str(p.relative_to(REPO)), m) for p, m in _imported_modules(REPO / "operator" / "lmaas_operator")
        if m.split(".")[0] in ("torch", "safetensors")
    ]
    assert offenders == []


def test_only_the_cli_reaches_the_worker_and_only_when_a_worker_role_runs():
    package = REPO / "operator" / "lmaas_operator"
    users = {p.name for p, m in _imported_modules(package) if m.startswith("lmaas_worker")}
    assert users <= {"cli.py"}
    cli = ast.parse((package / "cli.py").read_text())
    top_level = [n for n in cli.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not [n for n in top_level if "lmaas_worker" in ast.dump(n)]


def test_importing_the_operator_loads_no_torch():
    code = "import sys, lmaas_operator.main, lmaas_operator.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_the_api_types_load_without_kopf():
    # The worker and `lmaas run` use the typed specs; neither needs kopf.
    code = "import sys, lmaas_operator.api.spec, lmaas_operator.api.validation; print('kopf' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"
