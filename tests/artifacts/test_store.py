"""tuner.artifacts: folders in and out of a store, on a local folder and on S3 (moto),
and every bad store as one line naming artifacts.store."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import pytest

from tuner.artifacts import COMPLETE_MARKER, ArtifactStore, check_store, resolve_store
from tuner.artifacts._store import _alive_nodes, _check_nodes, default_store
from tuner.exceptions import SpecError

FILES = {
    "model.json": b'{"trees": []}',
    "state/optimizer.bin": bytes(range(256)) * 40,
    "state/deep/er/rng.txt": b"seed 7\n",
    "empty.txt": b"",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A nested folder of files of several sizes (one empty)."""
    root = tmp_path / "ckpt"
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def one_line(error: pytest.ExceptionInfo[SpecError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("artifacts.store: "), message
    return message


def round_trip(store: ArtifactStore, folder: Path, tmp_path: Path) -> None:
    key = store.trial_key("study-a", 3, "checkpoint", 12)
    assert key == f"{store.root}/study-a/trial-00003/checkpoint-00000012"

    written = store.put_dir(folder, key)
    assert written == sum(len(data) for data in FILES.values())
    assert store.exists(key)
    back = store.get_dir(key, tmp_path / "back")
    assert back == tmp_path / "back"
    assert contents(back) == FILES  # the marker stays in the store

    # Written again (a retried trial at the same step): replaced, not merged.
    (folder / "model.json").write_bytes(b"v2")
    (folder / "empty.txt").unlink()
    store.put_dir(folder, key)
    again = contents(store.get_dir(key, tmp_path / "again"))
    assert again["model.json"] == b"v2" and "empty.txt" not in again

    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # already gone: fine
    store.delete(store.trial_key("never-was", 1, "model", 0))


def test_a_local_store_round_trips_a_nested_folder(folder: Path, tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    round_trip(store, folder, tmp_path)
    # Nothing left behind: no staging folder, no marker of a deleted folder.
    assert [p.name for p in (tmp_path / "store" / "study-a").rglob("*")] == ["trial-00003"]


def test_an_s3_store_round_trips_and_passes_the_check(
    s3_root: str, folder: Path, tmp_path: Path
) -> None:
    store = ArtifactStore(s3_root)
    round_trip(store, folder, tmp_path)
    check_store(s3_root, on_cluster=True)
    assert not store.fs.find(store._path(store.root))  # the check's file is gone


def test_storage_options_reach_the_filesystem(
    s3_server: str, s3_root: str, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    store = ArtifactStore(s3_root, storage_options={"endpoint_url": s3_server})
    key = store.trial_key("s", 0, "model", 0)
    assert store.put_dir(folder, key) > 0
    assert store.exists(key)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_delete_study_removes_one_study_and_nothing_of_another(
    where: str, request: pytest.FixtureRequest, folder: Path, tmp_path: Path
) -> None:
    root = str(tmp_path / "store") if where == "local" else request.getfixturevalue("s3_root")
    store = ArtifactStore(root)
    # "ab" starts with "a": a study is a folder, not a string prefix.
    keys = {
        study: [
            store.trial_key(study, n, kind, 1) for n in (0, 1) for kind in ("checkpoint", "model")
        ]
        for study in ("a", "ab")
    }
    for study_keys in keys.values():
        for key in study_keys:
            store.put_dir(folder, key)
    store.delete_study("a")
    assert not store.exists(store.study_prefix("a"))
    assert all(store.exists(key) for key in keys["ab"])
    store.delete_study("a")  # already gone: fine
    with pytest.raises(ValueError, match="not a study name"):
        store.delete_study("../x")


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_folder_without_its_marker_is_refused(
    where: str, request: pytest.FixtureRequest, folder: Path, tmp_path: Path
) -> None:
    root = str(tmp_path / "store") if where == "local" else request.getfixturevalue("s3_root")
    store = ArtifactStore(root)
    key = store.trial_key("s", 1, "checkpoint", 2)
    store.put_dir(folder, key)
    # An upload cut off before its last file: what a reader could otherwise meet.
    store.fs.rm_file(store._path(f"{key}/{COMPLETE_MARKER}"))
    with pytest.raises(FileNotFoundError, match="no complete folder"):
        store.get_dir(key, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no complete folder"):
        store.get_dir(store.trial_key("s", 9, "model", 0), tmp_path / "out")


def test_keys_and_roots_are_normalised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert ArtifactStore("rel/store").root == str(tmp_path / "rel" / "store")
    assert ArtifactStore(f"file://{tmp_path}/s/").root == f"{tmp_path}/s"
    assert ArtifactStore("s3://bucket/prefix/").root == "s3://bucket/prefix"
    store = ArtifactStore("memory://t")
    assert store.study_prefix("x") == "memory://t/x"
    assert store.trial_key("x", 12345, "model", 7) == "memory://t/x/trial-12345/model-00000007"
    with pytest.raises(ValueError, match="kind"):
        store.trial_key("x", 1, "weights", 1)
    with pytest.raises(ValueError, match="not under the store's root"):
        store.exists("memory://elsewhere/x")


def test_the_memory_filesystem_works_but_is_refused_for_a_study(
    folder: Path, tmp_path: Path
) -> None:
    store = ArtifactStore("memory://tuner-test-store")
    key = store.trial_key("s", 0, "checkpoint", 0)
    store.put_dir(folder, key)
    assert contents(store.get_dir(key, tmp_path / "m")) == FILES
    store.delete_study("s")
    with pytest.raises(SpecError) as error:
        check_store(store.root, on_cluster=False)
    assert "lives in this process only" in one_line(error)


def test_a_store_pickles_without_its_filesystem(tmp_path: Path, folder: Path) -> None:
    store = ArtifactStore(tmp_path / "store", storage_options={"auto_mkdir": True})
    store.put_dir(folder, store.trial_key("s", 0, "model", 0))  # the filesystem is built
    assert store._fs is not None
    copy = pickle.loads(pickle.dumps(store))
    assert copy == store and copy._fs is None
    assert copy.exists(store.trial_key("s", 0, "model", 0))


# --- bad stores: one line naming artifacts.store ---------------------------------------


def _unwritable(tmp_path: Path) -> Path:
    """A folder that cannot be created: under a read-only folder, or (as root, whom
    permissions do not stop) under a file."""
    if os.geteuid() == 0:
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        return blocker / "store"
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)  # 0o500
    return locked / "store"


def test_an_unwritable_folder_is_one_line(tmp_path: Path) -> None:
    root = _unwritable(tmp_path)
    try:
        with pytest.raises(SpecError) as error:
            check_store(str(root), on_cluster=False)
    finally:
        if root.parent.is_dir():
            root.parent.chmod(0o700)  # so that pytest can remove tmp_path
    message = one_line(error)
    assert f"cannot write and read back {root}/.tuner-store-check-" in message
    assert "s3://bucket/prefix" in message


def test_an_unknown_protocol_is_one_line() -> None:
    with pytest.raises(SpecError) as error:
        check_store("nosuch://x", on_cluster=False)
    assert one_line(error) == (
        "artifacts.store: nosuch://x has an unknown protocol 'nosuch': give a folder every "
        "node sees or a URL such as s3://bucket/prefix"
    )


def test_a_missing_package_is_one_line_naming_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from fsspec.registry import known_implementations

    monkeypatch.setitem(
        known_implementations,
        "tunertest",
        {"class": "tuner_no_such_package.FileSystem", "err": "install it"},
    )
    with pytest.raises(SpecError) as error:
        ArtifactStore("tunertest://bucket/x").exists("tunertest://bucket/x/y")
    assert one_line(error).endswith(
        "tunertest://bucket/x needs a package that is not installed: pip install tuner_no_such_package"
    )


def test_a_missing_bucket_is_one_line(s3_server: str) -> None:
    with pytest.raises(SpecError) as error:
        check_store("s3://no-such-bucket-here/prefix", on_cluster=False)
    assert "cannot write and read back s3://no-such-bucket-here/prefix/" in one_line(error)


def test_a_postgresql_storage_needs_a_store() -> None:
    with pytest.raises(SpecError) as error:
        resolve_store(None, "postgresql://user@db.example:5432/tuner")
    assert one_line(error) == (
        "artifacts.store: is required with a postgresql storage (there is no database file "
        "to put it beside): give a folder every node sees or a URL such as s3://bucket/prefix"
    )
    with pytest.raises(SpecError, match="in-memory SQLite"):
        resolve_store(None, "sqlite://")


def test_the_default_lies_beside_a_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert default_store("sqlite:////x/tuner.db") == "/x/tuner-artifacts"
    assert resolve_store(None, "sqlite:////x/runs.sqlite3") == "/x/runs-artifacts"
    monkeypatch.chdir(tmp_path)
    assert default_store("sqlite:///tuner.db") == str(tmp_path / "tuner-artifacts")
    for memory in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:db?mode=memory&uri=true"):
        assert default_store(memory) is None, memory
    assert default_store("postgresql://u@h/db") is None
    # The spec's own store wins, made absolute.
    assert resolve_store("s3://b/p/", "postgresql://u@h/db") == "s3://b/p"
    assert resolve_store("here", "sqlite:////x/tuner.db") == str(tmp_path / "here")


def test_a_local_store_passes_the_check_and_leaves_nothing(tmp_path: Path) -> None:
    check_store(str(tmp_path / "new" / "store"), on_cluster=False)
    assert list((tmp_path / "new" / "store").iterdir()) == []


# --- every node must see a local folder -------------------------------------------------


@pytest.mark.usefixtures("ray_local")
def test_every_node_reads_the_check_file_and_one_that_cannot_is_named(tmp_path: Path) -> None:
    nodes = _alive_nodes()
    assert nodes
    check_store(str(tmp_path / "shared"), on_cluster=True)  # this machine's node sees it

    marker = tmp_path / "marker"
    marker.write_bytes(b"abc")
    _check_nodes("/x", str(marker), b"abc", nodes)
    with pytest.raises(SpecError) as error:
        _check_nodes("/x", str(tmp_path / "not-there"), b"abc", nodes)
    node = nodes[0]
    assert one_line(error) == (
        f"artifacts.store: /x is not seen by node {node['NodeManagerAddress']} "
        f"(node {node['NodeID'][:8]}: No such file or directory): use a shared folder or an "
        "s3:// URL"
    )


def test_study_roots_are_the_specs_store_the_default_and_the_rows_roots() -> None:
    from tuner.artifacts import study_roots

    sqlite = "sqlite:////data/tuner.db"
    assert study_roots("s", {}, sqlite) == ["/data/tuner-artifacts"]  # spec before artifacts
    assert study_roots("s", {"artifacts": {"store": "s3://b/p/", "keep": 3}}, sqlite) == [
        "s3://b/p"
    ]
    assert study_roots("s", {"artifacts": {"store": None}}, "postgresql://u@h/db") == []
    rows = ["s3://b/p/s/trial-00001/model-00000003", "/elsewhere/s/trial-00002/checkpoint-00000001"]
    assert study_roots("s", None, "postgresql://u@h/db", rows) == ["s3://b/p", "/elsewhere"]
