"""`tuner dashboard`: its arguments, its errors, and that it keeps `tuner` light."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuner.cli import app

runner = CliRunner()


def _exec_argv(monkeypatch: pytest.MonkeyPatch, *args: str) -> list[str]:
    seen: list[list[str]] = []

    def fake_execv(path: str, argv: list[str]) -> None:
        seen.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr("os.execv", fake_execv)
    monkeypatch.setenv("TUNER_DASHBOARD_STORAGE", "")  # restored after the test
    result = runner.invoke(app, ["dashboard", *args])
    assert result.exit_code == 0, result.output
    return seen[0]


def test_runs_streamlit_on_the_app_bound_to_localhost(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TUNER_STORAGE", raising=False)
    argv = _exec_argv(monkeypatch, "--storage", f"sqlite:///{tmp_path / 'x.db'}")
    assert argv[1:4] == ["-m", "streamlit", "run"]
    assert Path(argv[4]).name == "app.py" and Path(argv[4]).parent.name == "dashboard"
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    assert argv[argv.index("--server.port") + 1] == "8501"
    assert argv[argv.index("--server.headless") + 1] == "true"
    assert os.environ["TUNER_DASHBOARD_STORAGE"] == f"sqlite:///{tmp_path / 'x.db'}"
    assert not any("x.db" in a for a in argv)  # not in argv, where `ps` shows it


def test_host_port_and_storage_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNER_STORAGE", "sqlite:///from-env.db")
    argv = _exec_argv(monkeypatch, "--host", "0.0.0.0", "--port", "9999")
    assert argv[argv.index("--server.address") + 1] == "0.0.0.0"
    assert argv[argv.index("--server.port") + 1] == "9999"
    assert os.environ["TUNER_DASHBOARD_STORAGE"] == "sqlite:///from-env.db"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--storage", "mysql://u@h/db"], "unsupported database URL"),
        (["--storage", "not a url"], "malformed database URL"),
        (["--storage", "sqlite:///x.db", "--port", "70000"], "--port must be between"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["dashboard", *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


HEAVY = ("streamlit", "plotly", "tuner.dashboard")


def test_tuner_stays_light() -> None:
    # `import tuner` and the CLI load neither the dashboard package nor its stack; the
    # same probe after importing the dashboard's pages proves the names are the real ones.
    code = (
        "import sys, tuner, tuner.cli\n"
        f"heavy = {HEAVY!r}\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "import tuner.dashboard._study\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert out == ["[]", str(list(HEAVY))]
