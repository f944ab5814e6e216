import pytest


def pytest_configure(config):
    # Registered here so that this tier runs under --strict-markers; it still runs by default.
    config.addinivalue_line("markers", "slow: starts real torchrun agents or worker processes (seconds each)")


@pytest.fixture(autouse=True)
def termination_log(tmp_path, monkeypatch):
    """Where an in-process run writes its termination log (never the real /dev/termination-log)."""
    path = tmp_path / "termination-log"
    monkeypatch.setenv("LMAAS_TERMINATION_LOG", str(path))
    for name in (
        "RANK",
        "WORLD_SIZE",
        "LOCAL_RANK",
        "LMAAS_CONFIG",
        "LMAAS_OUTPUT_DIR",
        "LMAAS_OUTPUT_URI",
        "LMAAS_BACKEND",
    ):
        monkeypatch.delenv(name, raising=False)
    return path
