"""lmaas_worker.compress.report: the summary, the table, and a termination line that fits 4096 bytes."""

import json

import pytest

from lmaas_api.crds import load_crds
from lmaas_operator.compressjob.status import REPORT_KEYS
from lmaas_worker.compress.measure import Measurement
from lmaas_worker.compress.report import fit_line, markdown, speedup, summary
from lmaas_worker.progress import progress_line


def _measurement(name, size, accuracy, latency):
    return Measurement(
        name=name,
        size_bytes=size,
        parameters=17226,
        nonzero_parameters=size // 4,
        accuracy=accuracy,
        perplexity=None,
        loss=0.1,
        latency_ms={1: latency, 32: 4 * latency},
    )


def _rounds(before, after):
    return {"before": before, "after": after}


TWICE_AS_FAST = {
    1: _rounds([0.02, 0.021, 0.019], [0.01, 0.0105, 0.0095]),
    32: _rounds([0.08, 0.08, 0.08], [0.04, 0.04, 0.04]),
}


@pytest.mark.parametrize(
    "before, after, median, low, high, verdict",
    [
        ([2.0, 2.2, 1.8, 2.0, 2.1], [1.0, 1.0, 1.0, 1.0, 1.0], 2.0, 1.8, 2.2, "faster"),
        ([1.1, 0.95, 1.2, 1.0, 1.05], [1.0, 1.0, 1.0, 1.0, 1.0], 1.05, 0.95, 1.2, "no measurable gain"),
        # the spread touching 1.0 is no gain either; an outlier round moves the range, not the median
        ([1.0, 1.3, 1.3, 1.3, 1.3], [1.0, 1.0, 1.0, 1.0, 1.0], 1.3, 1.0, 1.3, "no measurable gain"),
        # a range that reads 1.000-1.300 is no gain, even when its lowest round was a hair above 1.0
        ([1.0003, 1.3, 1.3, 1.3, 1.3], [1.0, 1.0, 1.0, 1.0, 1.0], 1.3, 1.0, 1.3, "no measurable gain"),
        ([0.5, 0.6, 0.55], [1.0, 1.0, 1.0], 0.55, 0.5, 0.6, "slower"),
    ],
)
def test_the_speedup_is_the_median_of_the_rounds_with_their_range_and_a_verdict(
    before, after, median, low, high, verdict
):
    assert speedup(before, after) == {"median": median, "range": [low, high], "rounds": len(before), "verdict": verdict}


def test_the_summary_compares_the_output_with_the_input():
    s = summary(
        [
            _measurement("input", 4000, 97.0, 0.02),
            _measurement("prune", 2000, 96.5, 0.02),
            _measurement("quantize", 1000, 96.0, 0.01),
        ],
        TWICE_AS_FAST,
    )
    assert s["sizeRatio"] == 0.25 and s["accuracyDelta"] == -1.0 and s["latencySpeedup"] == 2.0
    assert s["latencySpeedupRange"] == [2.0, 2.0] and s["latencyVerdict"] == "faster" and s["latencyRounds"] == 3
    assert s["latencySpeedupBatch32"] == 2.0 and s["latencyVerdictBatch32"] == "faster"
    assert [step["name"] for step in s["steps"]] == ["input", "prune", "quantize"]
    assert set(s["steps"][0]) == {
        "name",
        "sizeBytes",
        "parameters",
        "nonzeroParameters",
        "accuracy",
        "perplexity",
        "latencyMsBatch1",
        "latencyMsBatch32",
    }
    assert "perplexityRatio" not in s


def test_a_sixteen_step_report_is_trimmed_to_fit_the_termination_log_keeping_the_figures():
    steps = [_measurement("input", 100000, 97.123456, 0.0234567)]
    steps += [
        _measurement(kind, 90000 - i, 96.987654, 0.0198765)
        for i, kind in enumerate(["prune", "quantize", "distill"] * 5 + ["prune"])
    ]
    line = progress_line(
        "done",
        step=16,
        totalSteps=16,
        message="x" * 3000,
        artifact={
            "path": "artifact",
            "sizeBytes": 1,
            "metrics": {
                **summary(steps, TWICE_AS_FAST),
                "distillation": {"teacher": 97.0, "student": 96.0, "alone": 95.0},
            },
        },
    )
    assert len(json.dumps(line)) > 4096
    fitted = fit_line(line)
    assert len(json.dumps(fitted).encode()) <= 4000
    metrics = fitted["artifact"]["metrics"]
    assert set(REPORT_KEYS) - {"perplexityRatio", "steps"} <= set(metrics)  # what a CompressJob's status shows
    assert set(fitted) == set(line)
    small = progress_line("done", step=1, totalSteps=1, artifact={"metrics": summary(steps[:2], TWICE_AS_FAST)})
    assert fit_line(small) == small


def _markdown(latencies, distillation=()):
    s = summary([_measurement("input", 4000, 97.0, 0.02), _measurement("quantize", 1000, 96.5, 0.03)], latencies)
    return markdown(
        {
            "job": "j",
            "outcome": "succeeded",
            "summary": s,
            "distillation": list(distillation),
            "input": {"model": "mlp", "task": "classification", "dataset": {"builtin": "digits"}},
            "settings": {"threads": 1, "int8Kernel": "fbgemm"},
            "bounds": {"maxAccuracyDrop": 1.0, "maxPerplexityIncrease": 0.1},
        }
    )


def test_the_markdown_table_has_a_row_per_step():
    text = _markdown(TWICE_AS_FAST)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "step" not in line]
    assert len(rows) == 2 and "| 1 | quantize | 1.0 KiB | 0.250 |" in rows[1] and "-0.50 pts" in rows[1]
    assert "at batch 1 2.00x, faster (2.00-2.00x over 3 alternating rounds)" in text


def test_the_markdown_says_no_measurable_gain_when_the_rounds_disagree():
    text = _markdown({1: _rounds([1.1, 0.9, 1.02], [1.0, 1.0, 1.0]), 32: TWICE_AS_FAST[32]})
    assert "at batch 1 no measurable gain (median 1.02x, 0.90-1.10x over 3 alternating rounds)" in text
    assert "at batch 32 2.00x, faster" in text


def test_the_markdown_says_when_a_distilled_student_is_not_smaller_than_its_teacher():
    entry = {"step": 1, "metric": "accuracy", "teacher": 97.0, "student": 97.2, "alone": 96.8}
    smaller = _markdown(
        TWICE_AS_FAST, [{**entry, "teacherParameters": 50000, "studentParameters": 2500, "studentSmaller": True}]
    )
    assert "(student: 2,500 parameters, 20.0x fewer than the teacher's 50,000)" in smaller
    larger = _markdown(
        TWICE_AS_FAST, [{**entry, "teacherParameters": 2500, "studentParameters": 50000, "studentSmaller": False}]
    )
    assert "(student: 50,000 parameters, NOT smaller than the teacher's 2,500)" in larger


def test_every_figure_a_compressjob_status_reports_is_in_its_schema_and_in_the_summary():
    status = load_crds()["CompressJob"].schema["properties"]["status"]["properties"]
    assert set(status["report"]["properties"]) == set(REPORT_KEYS)
    s = summary([_measurement("input", 4000, 97.0, 0.02), _measurement("quantize", 1000, 96.5, 0.01)], TWICE_AS_FAST)
    assert set(REPORT_KEYS) - {"perplexityRatio"} <= set(s)
    assert status["report"]["properties"]["latencyVerdict"]["enum"] == ["faster", "slower", "no measurable gain"]
