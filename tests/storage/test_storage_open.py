"""Opening a :class:`Storage`: URLs, errors a user can cause, SQLite settings, exports."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

import tuner.storage
from tuner.exceptions import StorageError
from tuner.storage import Storage

EXAMPLES = ("sqlite:///tuner.db", "postgresql://user@host:5432/db")


def test_exported_names() -> None:
    assert sorted(tuner.storage.__all__) == [
        "ARTIFACT_KINDS",
        "ArtifactDeleted",
        "ArtifactRecord",
        "ArtifactSaved",
        "DashboardReads",
        "STUDY_STATES",
        "Storage",
        "StudyFingerprint",
        "StudyRecord",
        "StudyState",
        "StudySummary",
        "TERMINAL_STUDY_STATES",
        "TERMINAL_TRIAL_STATES",
        "TRIAL_STATES",
        "TrialEvent",
        "TrialFinished",
        "TrialImport",
        "TrialOutput",
        "TrialOutputRecord",
        "TrialRecord",
        "TrialResult",
        "TrialRetried",
        "TrialStarted",
        "TrialState",
        "parse_storage_url",
    ]
    for name in tuner.storage.__all__:
        assert getattr(tuner.storage, name) is not None
    assert tuner.storage.TRIAL_STATES == ("running", "completed", "pruned", "failed", "stopped")
    assert tuner.storage.STUDY_STATES == ("created", "running", "completed", "failed", "stopped")


@pytest.mark.parametrize(
    "url",
    [
        "tuner.db",
        "sqlite:/tuner.db",
        "://nothing",
        "postgresql://alice:s3cret@db.example:notaport/tuner",
        "sqlite://somehost/tuner.db",
    ],
)
def test_a_malformed_url_names_it_and_shows_valid_ones(url: str) -> None:
    with pytest.raises(StorageError) as info:
        Storage(url)
    message = str(info.value)
    assert "\n" not in message
    assert "malformed" in message
    assert all(example in message for example in EXAMPLES)
    assert "s3cret" not in message
    assert url.replace("s3cret", "***") in message


@pytest.mark.parametrize("url", ["mysql://alice:s3cret@host/db", "postgresql+asyncpg://u@h/db"])
def test_an_unsupported_database_is_refused(url: str) -> None:
    with pytest.raises(StorageError) as info:
        Storage(url)
    message = str(info.value)
    assert "\n" not in message and "unsupported" in message and "s3cret" not in message
    assert "postgresql://user@host:5432/db" in message


def test_an_unreachable_server_names_the_url_without_its_password() -> None:
    with pytest.raises(StorageError) as info:
        Storage("postgresql://alice:s3cret@127.0.0.1:1/tuner")
    message = str(info.value)
    assert "\n" not in message
    assert "postgresql://alice:***@127.0.0.1:1/tuner" in message
    assert "s3cret" not in message
    assert "refused" in message.lower()  # the reason


def test_an_unopenable_sqlite_file_names_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'tuner.db'}"
    with pytest.raises(StorageError) as info:
        Storage(url)
    assert "\n" not in str(info.value) and url in str(info.value)


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    with (
        Storage(f"sqlite:///{tmp_path / 'tuner.db'}") as storage,
        storage._engine.connect() as conn,
    ):
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
        }
    assert pragma["journal_mode"] == "wal"
    assert pragma["busy_timeout"] >= 30_000
    assert pragma["synchronous"] == 1  # NORMAL
    assert pragma["foreign_keys"] == 1


def test_sqlite_relative_paths_and_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Storage("sqlite:///tuner.db") as storage:
        storage.create_study(
            "s", spec={}, metric="m", mode="min", algorithm="a", scheduler="s", num_trials=1
        )
    assert (tmp_path / "tuner.db").exists()
    with Storage("sqlite:///tuner.db", read_only=True) as reader:
        assert reader.get_study("s").name == "s"
    with Storage("sqlite://") as memory:
        memory.create_study(
            "m", spec={}, metric="m", mode="max", algorithm="a", scheduler="s", num_trials=None
        )
        assert [s.study.name for s in memory.list_studies()] == ["m"]


def test_a_closed_storage_refuses_calls(tmp_path: Path) -> None:
    storage = Storage(f"sqlite:///{tmp_path / 'tuner.db'}")
    storage.close()
    with pytest.raises(StorageError, match="closed"):
        storage.list_studies()


@pytest.mark.postgres
def test_postgresql_url_keeps_its_plain_form_and_masks_the_password(postgres_url: str) -> None:
    # The test server trusts every local connection, so any password opens it.
    url = make_url(postgres_url).set(password="s3cret").render_as_string(hide_password=False)
    assert url.startswith("postgresql://")
    with Storage(url) as storage:
        assert "s3cret" not in storage.url and "***" in storage.url
        assert "s3cret" not in repr(storage)
        assert storage.url.startswith("postgresql://")
        with storage._engine.connect() as conn:
            assert conn.dialect.driver == "psycopg"
            assert conn.execute(text("SELECT 1")).scalar() == 1
