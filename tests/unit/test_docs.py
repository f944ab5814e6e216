"""The pages a newcomer reads (README.md, docs/ and each folder's README): their links lead
somewhere, the commands they show exist, and the operator's settings table is the operator's."""

import dataclasses
import importlib.util
import re

import pytest
import yaml

from lmaas_cli.main import build_parser
from lmaas_operator.config import OperatorConfig
from tests.unit.corpus import REPO

PAGES = [
    REPO / "README.md",
    *sorted((REPO / "docs").rglob("*.md")),
    *sorted(
        page
        for folder in ("api", "operator", "worker", "manifests", "tests", "bench")
        for page in (REPO / folder).rglob("README.md")
    ),
]
WRITTEN = [page for page in PAGES if page.parent != REPO / "docs" / "api"]  # docs/api is generated
_LINK = re.compile(r"(?<!\\)\[[^\]\n]*\]\(([^)\s]+)\)")


def _outside_code_blocks(text):
    inside = False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside:
            yield line


def _code(text):
    """Fenced blocks and inline code spans: where commands are written."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.M | re.S)
    spans = re.findall(r"`([^`\n]+)`", "\n".join(_outside_code_blocks(text)))
    return blocks + spans


def _anchors(page):
    """GitHub's ids for a page's headings."""
    headings = [line.lstrip("#").strip() for line in _outside_code_blocks(page.read_text()) if re.match(r"#+ ", line)]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_reaches_a_file_and_heading(page):
    broken = []
    for line in _outside_code_blocks(page.read_text()):
        for target in _LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                broken.append(f"{target}: no {resolved}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(REPO)}")
    assert broken == []


def test_every_command_shown_exists():
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), flags=re.M))
    (subcommands,) = [a.choices for a in build_parser()._actions if a.dest == "role"]
    missing = []
    for page in WRITTEN:
        for code in _code(page.read_text()):
            missing += [f"{page.name}: make {t}" for t in re.findall(r"\bmake (\w+)", code) if t not in targets]
            missing += [
                f"{page.name}: lmaas {c}"
                for c in re.findall(r"(?:^|[\s/])lmaas ([a-z]+)", code)
                if c not in subcommands
            ]
            missing += [
                f"{page.name}: python -m {m}"
                for m in re.findall(r"python -m ([\w.]+)", code)
                if importlib.util.find_spec(m) is None
            ]
    assert missing == []


def test_the_settings_table_is_the_operators_configuration():
    rows = {}
    for line in (REPO / "docs" / "operations.md").read_text().splitlines():
        match = re.match(r"\| `(LMAAS_\w+)` \| ([^|]*) \|", line)
        if match:
            rows[match[1]] = match[2].strip()
    settings = {f"LMAAS_{f.name.upper()}": f.default for f in dataclasses.fields(OperatorConfig)}
    assert sorted(rows) == sorted(settings)
    for variable, default in settings.items():
        if default not in ("", dataclasses.MISSING):
            assert rows[variable] == f"`{default}`", variable


def test_the_front_pages_examples_are_the_quickstart_that_make_run_runs():
    (block,) = re.findall(r"^```yaml\n(.*?)^```", (REPO / "README.md").read_text(), flags=re.M | re.S)
    quickstart = [
        yaml.safe_load(path.read_text())
        for path in sorted((REPO / "manifests" / "samples" / "quickstart").glob("*.yaml"))
    ]
    assert list(yaml.safe_load_all(block)) == quickstart
