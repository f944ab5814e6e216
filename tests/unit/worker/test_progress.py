"""lmaas_worker.progress: progress lines and the termination log."""

import io
import json

import pytest

from lmaas_api import contract
from lmaas_worker.progress import Progress, progress_line, write_termination_log


def test_every_line_has_exactly_the_contract_keys_with_nulls():
    line = progress_line("progress", step=3, totalSteps=10, loss=0.5)
    assert tuple(line) == contract.PROGRESS_KEYS
    assert line["event"] == "progress" and line["step"] == 3 and line["artifact"] is None
    assert line["time"].endswith("Z")


def test_unknown_events_keys_and_non_finite_numbers():
    with pytest.raises(ValueError):
        progress_line("finished")
    with pytest.raises(ValueError):
        progress_line("progress", accuracy=1.0)
    assert progress_line("progress", loss=float("nan"))["loss"] is None


def test_only_rank_0_prints_one_json_object_per_line():
    out = io.StringIO()
    Progress(enabled=True, stream=out).emit("start", step=0)
    Progress(enabled=False, stream=out).emit("start", step=0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["event"] == "start"


def test_the_termination_log_holds_the_summary_on_one_line(tmp_path):
    path = tmp_path / "termination-log"
    summary = progress_line("error", message="x" * 10_000)
    assert write_termination_log(summary, {"LMAAS_TERMINATION_LOG": str(path)}) == path
    text = path.read_text()
    assert text.count("\n") == 1 and len(text) <= 4096
    assert json.loads(text)["event"] == "error"


def test_no_termination_log_where_its_directory_does_not_exist(tmp_path):
    env = {"LMAAS_TERMINATION_LOG": str(tmp_path / "absent" / "termination-log")}
    assert write_termination_log(progress_line("done"), env) is None
