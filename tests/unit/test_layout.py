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
        (str(p.relative_to(REPO)), m)
        for p, m in _imported_modules(REPO / "operator" / "lmaas_operator")
        if m.split(".")[0] in ("torch", "safetensors")
    ]
    assert offenders == []


def test_the_roles_meet_only_in_the_contract_and_the_command():
    """The operator and the worker import each other nowhere; the contract imports neither role
    (nor torch, kopf or a Kubernetes client); the `lmaas` command reaches a role only inside the
    subcommand that runs it."""

    def offenders(folder, package, forbidden):
        return [
            (str(p.relative_to(REPO)), m)
            for p, m in _imported_modules(REPO / folder / package)
            if m.split(".")[0] in forbidden
        ]

    assert offenders("operator", "lmaas_operator", {"lmaas_worker"}) == []
    assert offenders("worker", "lmaas_worker", {"lmaas_operator", "lmaas_cli", "kopf", "kubernetes"}) == []
    assert (
        offenders("api", "lmaas_api", {"lmaas_operator", "lmaas_worker", "lmaas_cli", "torch", "kopf", "kubernetes"})
        == []
    )
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
    """The worker's roles use `lmaas_worker.artifacts`; it imports none of them (so no role package
    is imported to load or write an artifact, and none needs a lazy import to dodge a cycle)."""
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
