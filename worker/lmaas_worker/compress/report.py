"""The compression report: `report.json` (everything), `report.md` (a table for people), a PNG of
size against quality per step, and the short summary that goes into progress lines and the
termination log (which Kubernetes cuts at 4096 bytes, so `fit_line` trims it to fit)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from .measure import Measurement, quality

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_PNG = "size-vs-quality.png"
TERMINATION_LIMIT = 4000
"""Bytes a final progress line may take: under the kubelet's 4096, with room for the newline."""


FASTER = "faster"
SLOWER = "slower"
NO_GAIN = "no measurable gain"
BATCH_SUFFIX = {1: "", 32: "Batch32"}
"""Key suffix of each timed batch size: latencySpeedup (batch 1), latencySpeedupBatch32, ..."""


def speedup(before_ms: list[float], after_ms: list[float]) -> dict[str, Any]:
    """The speedup of `after` over `before` from their p50 latencies in alternating rounds: the
    median of the rounds' ratios, their range, and the verdict: "faster" or "slower" when every
    round says so, "no measurable gain" when the range covers 1.0. The verdict is judged on the range
    as reported (3 decimals), so that a range shown as 1.000-1.050 never reads "faster"."""
    ratios = [b / a for b, a in zip(before_ms, after_ms, strict=True)]
    low, high = round(min(ratios), 3), round(max(ratios), 3)
    verdict = FASTER if low > 1 else SLOWER if high < 1 else NO_GAIN
    return {
        "median": round(statistics.median(ratios), 3),
        "range": [low, high],
        "rounds": len(ratios),
        "verdict": verdict,
    }


def summary(
    measurements: list[Measurement], latencies: dict[int, dict[str, list[float]]], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The report summary of `artifact.metrics`: input vs the last measured model, and every step.

    `latencies` are the two models' p50s in alternating rounds, {batch: {"before": ms, "after": ms}}
    (`measure.interleaved_latencies`); `latencySpeedup` is the median ratio at batch 1,
    `latencySpeedupRange` its range and `latencyVerdict` what it says (the same keys suffixed
    Batch32 for batch 32)."""
    first, last = measurements[0], measurements[-1]
    result: dict[str, Any] = {"sizeRatio": round(last.size_bytes / first.size_bytes, 4)}
    if first.accuracy is not None and last.accuracy is not None:
        result["accuracyDelta"] = round(last.accuracy - first.accuracy, 3)
    if first.perplexity is not None and last.perplexity is not None:
        result["perplexityRatio"] = round(last.perplexity / first.perplexity, 4)
    for batch, suffix in BATCH_SUFFIX.items():
        figures = speedup(latencies[batch]["before"], latencies[batch]["after"])
        result[f"latencySpeedup{suffix}"] = figures["median"]
        result[f"latencySpeedup{suffix}Range"] = figures["range"]
        result[f"latencyVerdict{suffix}"] = figures["verdict"]
    result["latencyRounds"] = len(latencies[1]["before"])
    result["steps"] = [m.entry() for m in measurements]
    result.update(extra or {})
    return result


def fit_line(line: dict[str, Any], limit: int = TERMINATION_LIMIT) -> dict[str, Any]:
    """`line` made small enough for the termination log: per-step detail goes first, the summary figures last."""

    def size(candidate: dict[str, Any]) -> int:
        return len(json.dumps(candidate, allow_nan=False).encode())

    if size(line) <= limit:
        return line
    line = json.loads(json.dumps(line))
    metrics = (line.get("artifact") or {}).get("metrics") or {}
    for extra in [
        k
        for k in metrics
        if k
        not in (
            "sizeRatio",
            "accuracyDelta",
            "perplexityRatio",
            "latencySpeedup",
            "latencySpeedupRange",
            "latencyVerdict",
            "latencySpeedupBatch32",
            "steps",
        )
    ]:
        metrics.pop(extra)
    if size(line) > limit and metrics.get("steps"):
        metrics["steps"] = [
            {k: s[k] for k in ("name", "sizeBytes", "accuracy", "perplexity")} for s in metrics["steps"]
        ]
    while size(line) > limit and len(metrics.get("steps") or []) > 2:
        metrics["steps"].pop(1)  # keep the input and the output, drop intermediate steps first
        metrics["stepsTrimmed"] = True
    if size(line) > limit:
        metrics.pop("steps", None)
    if size(line) > limit and isinstance(line.get("message"), str):
        line["message"] = line["message"][: max(0, len(line["message"]) - (size(line) - limit) - 3)] + "..."
    return line


def write_report(directory: Path, report: dict[str, Any], measurements: list[Measurement]) -> list[Path]:
    """Write report.json, report.md and the PNG into `directory`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / REPORT_JSON, directory / REPORT_MD, directory / REPORT_PNG]
    paths[0].write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    paths[1].write_text(markdown(report))
    plot_size_quality(measurements, paths[2], title=report.get("job") or "")
    return paths


def describe_speedup(s: dict[str, Any], batch: int) -> str:
    """The summary's latency comparison at `batch` in words, e.g. "1.52x faster (1.41-1.60x over 5
    alternating rounds)" or "no measurable gain (median 1.01x, 0.93-1.08x over 5 alternating rounds)"."""
    suffix = BATCH_SUFFIX[batch]
    median, (low, high) = s[f"latencySpeedup{suffix}"], s[f"latencySpeedup{suffix}Range"]
    verdict = s[f"latencyVerdict{suffix}"]
    spread = f"{low:.2f}-{high:.2f}x over {s['latencyRounds']} alternating rounds"
    if verdict == NO_GAIN:
        return f"{NO_GAIN} (median {median:.2f}x, {spread})"
    return f"{median:.2f}x, {verdict} ({spread})"


def _kib(size: int) -> str:
    return f"{size / 1024:,.1f} KiB"


def markdown(report: dict[str, Any]) -> str:
    steps = report["summary"]["steps"]
    first = steps[0]
    classifier = first["accuracy"] is not None
    quality_column = "accuracy (%)" if classifier else "perplexity"
    lines = [
        f"# Compression report: {report.get('job') or 'lmaas compress'}",
        "",
        f"Outcome: **{report['outcome']}**" + (f". {report['failure']}" if report.get("failure") else ""),
        "",
        f"Input: `{report['input']['model']}` ({report['input']['task']}); held-out data: {report['input']['dataset']}. "
        f"Latency: p50 of single forward passes on CPU with {report['settings']['threads']} thread(s); "
        f"int8 kernel: {report['settings']['int8Kernel']}.",
        "",
        f"| # | step | size | size ratio | parameters | nonzero | {quality_column} | change | p50 batch 1 (ms) | p50 batch 32 (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for index, step in enumerate(steps):
        value, base = quality(step["accuracy"], step["perplexity"]), quality(first["accuracy"], first["perplexity"])
        change = f"{value - base:+.2f} pts" if classifier else f"x{value / base:.3f}"
        lines.append(
            f"| {index} | {step['name']} | {_kib(step['sizeBytes'])} | {step['sizeBytes'] / first['sizeBytes']:.3f} "
            f"| {step['parameters']:,} | {step['nonzeroParameters']:,} | {value:.2f} | {change if index else '-'} "
            f"| {step['latencyMsBatch1']:.3f} | {step['latencyMsBatch32']:.3f} |"
        )
    s = report["summary"]
    lines += [
        "",
        f"Output against input: size ratio {s['sizeRatio']:.3f}"
        + (f", accuracy change {s['accuracyDelta']:+.2f} points" if "accuracyDelta" in s else "")
        + (f", perplexity ratio {s['perplexityRatio']:.3f}" if "perplexityRatio" in s else "")
        + f". Latency speedup (input p50 / output p50, the two timed in alternating rounds): at batch 1 "
        f"{describe_speedup(s, 1)}; at batch 32 {describe_speedup(s, 32)}.",
    ]
    for d in report.get("distillation") or []:
        metric = d["metric"]
        size = (
            f"{d['teacherParameters'] / d['studentParameters']:.1f}x fewer than the teacher's "
            f"{d['teacherParameters']:,}"
            if d["studentSmaller"]
            else f"NOT smaller than the teacher's {d['teacherParameters']:,}"
        )
        lines += [
            "",
            f"Distillation (step {d['step']}): teacher {metric} {d['teacher']:.2f}; student with the teacher "
            f"{d['student']:.2f}; the same student trained without a teacher {d['alone']:.2f} "
            f"(student: {d['studentParameters']:,} parameters, {size}).",
        ]
    bounds = report["bounds"]
    lines += [
        "",
        f"Bounds: maxAccuracyDrop {bounds['maxAccuracyDrop']} points, maxPerplexityIncrease "
        f"{bounds['maxPerplexityIncrease']} (relative), checked against the input after every step.",
        "",
    ]
    return "\n".join(lines)


def plot_size_quality(measurements: list[Measurement], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    classifier = measurements[0].accuracy is not None
    xs = [m.size_bytes / 1024 for m in measurements]
    ys = [m.quality for m in measurements]
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    axes.plot(xs, ys, "-o", color="tab:blue")
    for m, x, y in zip(measurements, xs, ys):
        axes.annotate(m.name, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    axes.set_xlabel("weights on disk (KiB)")
    axes.set_ylabel("held-out accuracy (%)" if classifier else "held-out perplexity")
    axes.set_title(f"size against quality per step {title}".strip())
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
