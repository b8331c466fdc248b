"""The default database: defined once, and every way in falls back to that one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests._optional import require
from tests.test_api import SPEC
from tuner._defaults import DEFAULT_STORAGE, default_storage_url

ROOT = Path(__file__).resolve().parents[1]


def _code_literals(path: Path, value: str) -> list[int]:
    """Lines where ``value`` is a string literal in code (docstrings left out)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value == value and id(node) not in docstrings
    ]


def test_the_default_url_is_written_in_one_place() -> None:
    sources = [*(ROOT / "tuner").rglob("*.py"), *(ROOT / "dashboard").rglob("*.py")]
    found = {
        f"{path.relative_to(ROOT)}:{line}"
        for path in sources
        for line in _code_literals(path, DEFAULT_STORAGE)
    }
    assert len(found) == 1 and next(iter(found)).startswith("tuner/_defaults.py:"), found


def test_library_spec_cli_and_dashboard_fall_back_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    require("streamlit")  # the dashboard's resolution sits beside its page helpers
    from tuner.cli import app
    from tuner.dashboard import _common
    from tuner.spec import load_spec
    from tuner.study import resolve_storage_url

    monkeypatch.delenv("TUNER_STORAGE", raising=False)
    monkeypatch.delenv("TUNER_DASHBOARD_STORAGE", raising=False)
    monkeypatch.setattr("sys.argv", ["app.py"])
    spec = load_spec(SPEC)
    assert spec.storage == DEFAULT_STORAGE
    assert resolve_storage_url(None) == default_storage_url() == DEFAULT_STORAGE
    assert _common.storage_url() == DEFAULT_STORAGE
    assert DEFAULT_STORAGE in CliRunner().invoke(app, ["list", "--help"]).output

    monkeypatch.setenv("TUNER_STORAGE", "sqlite:///env.db")
    assert resolve_storage_url(None) == _common.storage_url() == "sqlite:///env.db"
