"""lmaas_worker.compress.report: the summary, the table, and a termination line that fits 4096 bytes."""
import json

from lmaas_worker.compress.measure import Measurement
from lmaas_worker.compress.report import fit_line, markdown, summary
from lmaas_worker.progress import progress_line


def _measurement(name, size, accuracy, latency):
    return Measurement(name=name, size_bytes=size, parameters=17226, nonzero_parameters=size // 4, accuracy=accuracy,
                       perplexity=None, loss=0.1, latency_ms={1: latency, 32: 4 * latency})


def test_the_summary_compares_the_output_with_the_input():
    s = summary([_measurement("input", 4000, 97.0, 0.02), _measurement("prune", 2000, 96.5, 0.02),
                 _measurement("quantize", 1000, 96.0, 0.01)])
    assert s["sizeRatio"] == 0.25 and s["accuracyDelta"] == -1.0 and s["latencySpeedup"] == 2.0
    assert [step["name"] for step in s["steps"]] == ["input", "prune", "quantize"]
    assert set(s["steps"][0]) == {"name", "sizeBytes", "parameters", "nonzeroParameters", "accuracy", "perplexity",
                                  "latencyMsBatch1", "latencyMsBatch32"}
    assert "perplexityRatio" not in s


def test_a_sixteen_step_report_is_trimmed_to_fit_the_termination_log_keeping_the_figures():
    steps = [_measurement("input", 100000, 97.123456, 0.0234567)]
    steps += [_measurement(kind, 90000 - i, 96.987654, 0.0198765) for i, kind in
              enumerate(["prune", "quantize", "distill"] * 5 + ["prune"])]
    line = progress_line("done", step=16, totalSteps=16, message="x" * 3000,
                         artifact={"path": "artifact", "sizeBytes": 1, "metrics": {**summary(steps), "distillation": {
                             "teacher": 97.0, "student": 96.0, "alone": 95.0}}})
    assert len(json.dumps(line)) > 4096
    fitted = fit_line(line)
    assert len(json.dumps(fitted).encode()) <= 4000
    metrics = fitted["artifact"]["metrics"]
    assert {"sizeRatio", "accuracyDelta", "latencySpeedup"} <= set(metrics)
    assert set(fitted) == set(line)
    small = progress_line("done", step=1, totalSteps=1, artifact={"metrics": summary(steps[:2])})
    assert fit_line(small) == small


def test_the_markdown_table_has_a_row_per_step():
    s = summary([_measurement("input", 4000, 97.0, 0.02), _measurement("quantize", 1000, 96.5, 0.03)])
    text = markdown({"job": "j", "outcome": "succeeded", "summary": s,
                     "input": {"model": "mlp", "task": "classification", "dataset": {"builtin": "digits"}},
                     "settings": {"threads": 1, "int8Kernel": "fbgemm"},
                     "bounds": {"maxAccuracyDrop": 1.0, "maxPerplexityIncrease": 0.1}})
    rows = [line for line in text.splitlines() if line.startswith("| ") and "step" not in line]
    assert len(rows) == 2 and "| 1 | quantize | 1.0 KiB | 0.250 |" in rows[1] and "-0.50 pts" in rows[1]
