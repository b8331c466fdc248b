"""tests/_optional.py: a missing optional dependency skips locally and fails in CI."""

from __future__ import annotations

import pytest

from tests._optional import missing, require

ABSENT = "tuner_no_such_module"


def test_require_returns_the_module() -> None:
    assert require("json").dumps([1]) == "[1]"


def test_a_missing_module_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require(ABSENT)
    with pytest.raises(pytest.skip.Exception, match="chromium is missing"):
        missing("chromium is missing")


def test_a_missing_module_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"{ABSENT} is not installed; `make install`"):
        require(ABSENT)
    with pytest.raises(pytest.fail.Exception, match="chromium is missing"):
        missing("chromium is missing")
