"""What `lmaas run` shows while it runs, and the summary table at the end.

On a terminal the running job has one live line (a bar, step/total, loss, samples/s, ETA) redrawn
in place; in a log (CI, a pipe) the same facts come as plain lines, at most one per
LOG_EVERY_SECONDS per job, so a long run does not flood the log. Phase changes are always a line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

LOG_EVERY_SECONDS = 10.0
BAR_WIDTH = 24


def _label(body: dict[str, Any]) -> str:
    return f"{body['kind']}/{body['metadata']['name']}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Display:
    def __init__(self, stream: TextIO | None = None, live: bool | None = None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self._phases: dict[str, str] = {}
        self._started: dict[str, float] = {}
        self._logged: dict[str, float] = {}
        self._line_open = False
        self.durations: dict[str, float] = {}

    def say(self, text: str) -> None:
        self._close_line()
        print(text, file=self.stream, flush=True)

    def _close_line(self) -> None:
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False

    def update(self, body: dict[str, Any]) -> None:
        label = _label(body)
        status = body.get("status") or {}
        phase = status.get("phase") or "Pending"
        self._started.setdefault(label, time.monotonic())
        if self._phases.get(label) != phase:
            self._phases[label] = phase
            self.durations[label] = time.monotonic() - self._started[label]
            message = status.get("message") or ""
            self.say(f"{label}: {phase}" + (f" ({status.get('reason')}): {message}" if message else ""))
        if phase != "Running":
            return
        line = self.progress_line(label, status)
        if not line:
            return
        if self.live:
            self.stream.write("\r\x1b[K" + line)
            self.stream.flush()
            self._line_open = True
        elif time.monotonic() - self._logged.get(label, float("-inf")) >= LOG_EVERY_SECONDS:
            self._logged[label] = time.monotonic()
            self.say(line)

    def progress_line(self, label: str, status: dict[str, Any]) -> str:
        progress = status.get("progress") or {}
        done, total = progress.get("step"), progress.get("totalSteps")
        if progress.get("completedSteps") is not None:  # a CompressJob counts its steps
            done = progress["completedSteps"]
        if done is None or not total:
            return ""
        fraction = min(max(done / total, 0.0), 1.0)
        filled = int(BAR_WIDTH * fraction)
        parts = [f"  {label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}"]
        if progress.get("loss") is not None:
            parts.append(f"loss {progress['loss']:.4g}")
        if progress.get("samplesPerSecond"):
            parts.append(f"{progress['samplesPerSecond']:.0f} samples/s")
        elapsed = time.monotonic() - self._started.get(label, time.monotonic())
        if 0 < fraction < 1 and elapsed > 0:
            parts.append(f"ETA {_duration(elapsed * (1 - fraction) / fraction)}")
        return "  ".join(parts)

    def summary(self, bodies: list[dict[str, Any]], volume_dir) -> str:
        """One row per resource: phase, duration, key figures, the artifact and its plots."""
        rows = [("RESOURCE", "PHASE", "TIME", "FIGURES", "ARTIFACT")]
        plots: list[str] = []
        for body in bodies:
            label = _label(body)
            status = body.get("status") or {}
            artifact = (status.get("artifact") or {}).get("uri")
            where = ""
            if artifact and artifact.startswith("pvc://"):
                directory = Path(volume_dir(artifact))
                where = str(directory)
                plots += [str(p) for p in sorted(directory.parent.rglob("*.png"))]
            elif status.get("url"):
                where = status["url"]
            rows.append(
                (label, status.get("phase") or "-", _duration(self.durations.get(label, 0)), key_figures(body), where)
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        text = "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)
        if plots:
            text += "\nplots:\n" + "\n".join(f"  {p}" for p in dict.fromkeys(plots))
        return text


def key_figures(body: dict[str, Any]) -> str:
    status = body.get("status") or {}
    if status.get("phase") == "Failed":
        return f"{status.get('reason')}: {status.get('message', '')}"[:120]
    figures = []
    if body["kind"] == "TrainJob":
        metrics = (status.get("artifact") or {}).get("metrics") or {}
        figures += [
            f"{k} {metrics[k]:.4g}"
            for k in ("accuracy", "perplexity", "trainLoss")
            if isinstance(metrics.get(k), (int, float))
        ]
        if not figures and (status.get("progress") or {}).get("loss") is not None:
            figures.append(f"loss {status['progress']['loss']:.4g}")
    elif body["kind"] == "CompressJob":
        report = status.get("report") or {}
        for key, name in (("sizeRatio", "size"), ("accuracyDelta", "Δacc"), ("perplexityRatio", "ppl×")):
            if report.get(key) is not None:
                figures.append(f"{name} {report[key]:.3g}")
        if report.get("latencySpeedup") is not None:
            verdict = report.get("latencyVerdict")
            figures.append(f"speedup {report['latencySpeedup']:.3g}" + (f" ({verdict})" if verdict else ""))
    else:
        figures.append(f"{status.get('readyReplicas', 0)}/{status.get('desiredReplicas', 0)} ready")
    return ", ".join(figures)
