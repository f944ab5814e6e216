"""lmaas_cli.main: the `lmaas` command."""

import subprocess
import sys


def lmaas(*args, env=None):
    return subprocess.run([sys.executable, "-m", "lmaas_cli.main", *args], capture_output=True, text=True, env=env)


def test_help_lists_the_operator_role():
    out = lmaas("--help")
    assert out.returncode == 0
    assert "operator" in out.stdout


def test_a_bad_setting_fails_with_its_name_and_no_traceback():
    import os

    out = lmaas("operator", env={**os.environ, "LMAAS_LOG_FORMAT": "xml"})
    assert out.returncode == 2
    assert "LMAAS_LOG_FORMAT: must be json or plain" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_unknown_role_is_refused():
    out = lmaas("tune")
    assert out.returncode == 2
    assert "invalid choice: 'tune'" in out.stderr
