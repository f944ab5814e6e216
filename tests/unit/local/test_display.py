"""The one line per resource that `lmaas run` prints at the end."""

from __future__ import annotations

from lmaas_operator.local.display import key_figures


def compressjob(**report):
    return {"kind": "CompressJob", "status": {"phase": "Succeeded", "report": report}}


def test_a_speedup_is_shown_with_its_verdict():
    line = key_figures(
        compressjob(
            sizeRatio=0.175,
            accuracyDelta=0.836,
            latencySpeedup=1.01,
            latencySpeedupRange=[0.93, 1.08],
            latencyVerdict="no measurable gain",
        )
    )
    assert line == "size 0.175, Δacc 0.836, speedup 1.01 (no measurable gain)"
    assert key_figures(compressjob(latencySpeedup=1.66, latencyVerdict="faster")) == "speedup 1.66 (faster)"
