"""lmaas_api.reference: docs/api/ says what the CRDs say, and a test notices when it no longer does."""

import json
import re

from lmaas_api import reference
from lmaas_api.crds import load_crds
from tests.unit.corpus import REPO

REGENERATE = f".venv/bin/{reference.COMMAND}"


def test_the_committed_reference_is_the_one_the_crds_give():
    stale = reference.out_of_date(REPO / "docs" / "api")
    assert stale == [], (
        f"docs/api is out of date with crds/ ({', '.join(stale)}); regenerate it from the repository root: {REGENERATE}"
    )


def test_a_changed_missing_or_foreign_page_is_out_of_date_until_written_again(tmp_path, capsys):
    assert reference.write_pages(tmp_path) == [f"wrote {tmp_path / name}" for name in sorted(reference.render_pages())]
    assert reference.out_of_date(tmp_path) == []
    (tmp_path / "trainjob.md").write_text(
        (tmp_path / "trainjob.md").read_text().replace("Peak learning rate.", "Rate.")
    )
    (tmp_path / "compressjob.md").unlink()
    (tmp_path / "notebook.md").write_text("# NoSuchKind\n")

    assert reference.out_of_date(tmp_path) == ["compressjob.md", "notebook.md", "trainjob.md"]
    assert reference.main(["--check", "--out", str(tmp_path)]) == 1
    assert f"trainjob.md is out of date with crds/: run `{reference.COMMAND}`" in capsys.readouterr().err

    reference.write_pages(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compressjob.md", "modelservice.md", "trainjob.md"]
    assert reference.main(["--check", "--out", str(tmp_path)]) == 0


def _cells(line):
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def _prose(cell):
    """What a Markdown renderer shows of an escaped cell."""
    return re.sub(r"\\(.)", r"\1", cell)


def _fields(schema, path):
    required = set(schema.get("required", ()))
    for name, child in schema.get("properties", {}).items():
        yield f"{path}.{name}", child, name in required
        yield from _fields(child, f"{path}.{name}")
        if "properties" in child.get("items", {}):
            yield from _fields(child["items"], f"{path}.{name}[]")


def _messages(schema):
    return [rule["message"] for rule in schema.get("x-kubernetes-validations", ()) if "message" in rule]


def test_every_field_of_the_crds_has_a_row_with_its_description_type_default_enum_and_rule_messages():
    for kind, crd in load_crds().items():
        page = reference.render_pages()[reference.page_name(kind)]
        rows = {}
        for line in page.splitlines():
            if line.startswith("| `spec") or line.startswith("| `status"):
                cells = _cells(line)
                assert len(cells) == 5, f"{kind}: a row that a Markdown table would break: {line}"
                rows[cells[0].strip("`")] = dict(zip(("type", "default", "validation", "description"), cells[1:]))
        for message in _messages(crd.schema):
            assert f"- {message}" in _prose(page), (kind, message)
        for section in ("spec", "status"):
            for message in _messages(crd.schema["properties"][section]):
                assert f"- {message}" in _prose(page), (kind, message)
            fields = list(_fields(crd.schema["properties"][section], section))
            assert sorted(rows.keys() & {p for p, _, _ in fields}) == sorted(p for p, _, _ in fields), kind
            for path, schema, required in fields:
                row = rows[path]
                assert _prose(row["description"]) == " ".join(schema.get("description", "").split()), (kind, path)
                if "default" in schema:
                    default = schema["default"]
                    assert row["default"] == f"`{default if isinstance(default, str) else json.dumps(default)}`", (
                        kind,
                        path,
                    )
                assert row["validation"].startswith("required") == required, (kind, path)
                for value in schema.get("enum", ()):
                    assert f"`{value}`" in row["validation"], (kind, path, value)
                for message in _messages(schema) + _messages(schema.get("items", {})):
                    assert message in _prose(row["validation"]), (kind, path, message)
                if schema.get("type") == "array":
                    assert row["type"].startswith("list of"), (kind, path)


def test_the_printer_columns_and_short_names_are_on_each_page():
    for kind, crd in load_crds().items():
        page = reference.render_pages()[reference.page_name(kind)]
        for name in crd.short_names:
            assert f"| short names | `{name}` |" in page
        for column in crd.printer_columns:
            assert f"| {column['name']} | {column['type']} | `{column['jsonPath']}` | " in page, (kind, column["name"])
