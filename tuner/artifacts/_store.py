"""Where trials' checkpoints and models live: a folder or any fsspec filesystem.

A store is a root URI. Every file of a study lies under ``{root}/{study}``; a trial's
stored folders under ``{root}/{study}/trial-{number:05d}/{kind}-{step:08d}``. A stored
folder is complete once its ``_COMPLETE`` marker is there: :meth:`ArtifactStore.put_dir`
writes the marker last (on a local filesystem the folder is also written under a
hidden temporary name and renamed into place), and :meth:`ArtifactStore.get_dir` refuses
a folder without it, so a reader never takes a half-written checkpoint for a whole one.

The driver calls :func:`check_store` once Ray is up and before any trial runs, so a
store that cannot be written, or a local folder that some node does not see, is one
line naming ``artifacts.store`` rather than a failure in every trial.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.exceptions import ClusterError, SpecError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = [
    "COMPLETE_MARKER",
    "KINDS",
    "ArtifactStore",
    "check_store",
    "default_store",
    "resolve_store",
    "study_roots",
]

COMPLETE_MARKER = "_COMPLETE"
"""The file written last into every stored folder: without it, the folder is partial."""

KINDS = ("checkpoint", "model")
"""What a trial stores."""

_KEY = ["artifacts", "store"]
_FIX = "give a folder every node sees or a URL such as s3://bucket/prefix"
_LOCAL_PROTOCOLS = ("file", "local")
# Filesystems that live inside one process: trials run in other processes.
_IN_PROCESS_PROTOCOLS = ("memory",)
_NODE_CHECK_TIMEOUT_S = 120.0


def _split(uri: str) -> tuple[str, str]:
    """(protocol, rest) of a URI; a plain path is protocol "file"."""
    protocol, sep, rest = uri.partition("://")
    if not sep:
        return "file", uri
    return protocol.lower(), rest


def _normalise(root: str | os.PathLike[str]) -> str:
    """A root URI without a trailing slash; a local one as an absolute path."""
    text = os.fspath(root)
    protocol, rest = _split(text)
    if protocol in _LOCAL_PROTOCOLS:
        return os.path.abspath(os.path.expanduser(rest))
    return f"{protocol}://{rest.rstrip('/')}"


def _check_name(study_name: str) -> None:
    # A study's files are deleted as one prefix: a name holding a separator (or
    # nothing) would reach outside the study.
    if not study_name or "/" in study_name or "\\" in study_name or study_name in (".", ".."):
        raise ValueError(f"not a study name: {study_name!r}")


class ArtifactStore:
    """A root folder or URL where trials' folders are stored.

    Picklable, to go to Ray's trial processes: only the root and the storage options
    travel, and each process builds its own filesystem on first use.

    Args:
        root: a local folder (made absolute), ``file://...``, or any fsspec URL such
            as ``s3://bucket/prefix``, ``gs://bucket/prefix`` or ``memory://prefix``.
        storage_options: keyword arguments for the fsspec filesystem (for S3, e.g.
            ``{"endpoint_url": "http://127.0.0.1:9000"}``). Without them, s3fs reads the
            usual ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ... variables.

    Every method that reaches the filesystem raises :class:`tuner.SpecError` naming
    ``artifacts.store`` when the root's protocol is unknown or its package missing.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.root: str = _normalise(root)
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        self._fs: AbstractFileSystem | None = None

    def __repr__(self) -> str:
        return f"ArtifactStore({self.root!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactStore) and (self.root, self.storage_options) == (
            other.root,
            other.storage_options,
        )

    def __hash__(self) -> int:
        return hash(self.root)

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.root = state["root"]
        self.storage_options = state["storage_options"]
        self._fs = None

    @property
    def protocol(self) -> str:
        """The root's protocol: "file" for a local folder, else e.g. "s3"."""
        return _split(self.root)[0]

    @property
    def is_local(self) -> bool:
        """Whether the root is a folder of this machine's filesystem."""
        return self.protocol in _LOCAL_PROTOCOLS

    @property
    def fs(self) -> AbstractFileSystem:
        """The fsspec filesystem of the root, built on first use in each process.

        Raises:
            SpecError: the protocol is unknown, or its package is not installed.
        """
        if self._fs is None:
            self._fs = _filesystem(self.root, self.protocol, self.storage_options)
        return self._fs

    def study_prefix(self, study_name: str) -> str:
        """Where every file of a study lives: ``{root}/{study_name}``.

        Raises:
            ValueError: the name is empty or holds a path separator.
        """
        _check_name(study_name)
        return f"{self.root}/{study_name}"

    def trial_key(self, study_name: str, number: int, kind: str, step: int) -> str:
        """Where a trial's folder of one kind at one step is stored:
        ``{root}/{study_name}/trial-{number:05d}/{kind}-{step:08d}``.

        Args:
            kind: "checkpoint" or "model".

        Raises:
            ValueError: an unknown kind, a negative number or step, or a bad study name.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
        if number < 0 or step < 0:
            raise ValueError(f"number and step must be >= 0 (got {number}, {step})")
        return f"{self.study_prefix(study_name)}/trial-{number:05d}/{kind}-{step:08d}"

    def _path(self, uri: str) -> str:
        """The filesystem's own path of a URI under the root."""
        uri = _normalise(uri)
        if uri != self.root and not uri.startswith(self.root.rstrip("/") + "/"):
            raise ValueError(f"{uri} is not under the store's root {self.root}")
        if self.is_local:
            return uri
        path: str = self.fs._strip_protocol(uri)
        return path

    def put_dir(self, local_dir: str | os.PathLike[str], dest_uri: str) -> int:
        """Copy a local folder, recursively, to ``dest_uri``, replacing what is there.

        A reader never sees a partial folder: the ``_COMPLETE`` marker is written last
        (:meth:`get_dir` refuses a folder without it), and on a local filesystem the
        folder is written under a hidden sibling name (``.NAME.tmp-...``) first and
        renamed into place. Empty subfolders are kept on a local store only (object
        stores have no folders).

        Returns:
            The bytes written (the sum of the files' sizes).

        Raises:
            NotADirectoryError: ``local_dir`` is not a folder.
            ValueError: ``dest_uri`` is not under the root, or ``local_dir`` holds a
                top-level file named ``_COMPLETE``.
            OSError: the store cannot be written.
        """
        source = Path(local_dir)
        if not source.is_dir():
            raise NotADirectoryError(f"{source} is not a folder")
        if (source / COMPLETE_MARKER).exists():
            raise ValueError(f"{source} holds {COMPLETE_MARKER}, a name the store reserves")
        dest = self._path(dest_uri)
        fs = self.fs
        if self.is_local:
            parent, name = posixpath.split(dest)
            staging = posixpath.join(parent, f".{name}.tmp-{uuid.uuid4().hex[:12]}")
            try:
                written = self._upload(source, staging)
                _replace_local(staging, dest)
            finally:
                if os.path.lexists(staging):
                    fs.rm(staging, recursive=True)
            return written
        self._remove(dest)
        return self._upload(source, dest)

    def _upload(self, source: Path, dest: str) -> int:
        fs = self.fs
        written = 0
        if self.is_local:
            fs.makedirs(dest, exist_ok=True)
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames.sort()
            rel = Path(dirpath).relative_to(source).as_posix()
            here = dest if rel == "." else posixpath.join(dest, rel)
            if self.is_local:
                for d in dirnames:
                    fs.makedirs(posixpath.join(here, d), exist_ok=True)
            for name in sorted(filenames):
                local = os.path.join(dirpath, name)
                fs.put_file(local, posixpath.join(here, name))
                written += os.path.getsize(local)
        fs.pipe_file(posixpath.join(dest, COMPLETE_MARKER), b"")
        return written

    def get_dir(self, uri: str, local_dir: str | os.PathLike[str]) -> Path:
        """Copy a stored folder into a local folder (created if missing).

        Returns:
            ``local_dir`` as a Path.

        Raises:
            FileNotFoundError: nothing complete is stored at ``uri`` (missing, or its
                ``_COMPLETE`` marker is absent: a write is under way or was cut off).
            ValueError: ``uri`` is not under the root.
        """
        src = self._path(uri)
        fs = self.fs
        fs.invalidate_cache(src)
        if not fs.isfile(posixpath.join(src, COMPLETE_MARKER)):
            raise FileNotFoundError(f"{uri} holds no complete folder (no {COMPLETE_MARKER} marker)")
        target = Path(local_dir)
        target.mkdir(parents=True, exist_ok=True)
        found = fs.find(src, withdirs=True, detail=True)
        prefix = src.rstrip("/") + "/"
        for path, info in sorted(found.items()):
            if not path.startswith(prefix):
                continue  # the folder itself
            rel = path[len(prefix) :]
            local = target.joinpath(*rel.split("/"))
            if info.get("type") == "directory":
                local.mkdir(parents=True, exist_ok=True)
            elif rel != COMPLETE_MARKER:
                local.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(path, str(local))
        return target

    def delete(self, uri: str) -> None:
        """Remove a stored folder or file; one that is not there is fine.

        Raises:
            ValueError: ``uri`` is not under the root, or is the root itself.
        """
        path = self._path(uri)
        if _normalise(uri) == self.root:
            raise ValueError(f"refusing to delete the whole store {self.root}")
        self._remove(path)

    def _remove(self, path: str) -> None:
        fs = self.fs
        fs.invalidate_cache(path)
        try:
            if fs.isdir(path):
                # The marker first: a reader never takes a folder being deleted for whole.
                marker = posixpath.join(path, COMPLETE_MARKER)
                if fs.isfile(marker):
                    fs.rm_file(marker)
                fs.rm(path, recursive=True)
            elif fs.exists(path):
                fs.rm(path)
        except FileNotFoundError:
            pass  # deleted meanwhile
        fs.invalidate_cache(path)

    def exists(self, uri: str) -> bool:
        """Whether a folder or file is stored at ``uri`` (complete or not)."""
        path = self._path(uri)
        self.fs.invalidate_cache(path)
        return bool(self.fs.exists(path))

    def delete_study(self, study_name: str) -> None:
        """Remove every file of a study (:meth:`study_prefix`), and nothing else.

        Raises:
            ValueError: the name is empty or holds a path separator.
        """
        self._remove(self._path(self.study_prefix(study_name)))


def _replace_local(staging: str, dest: str) -> None:
    """Rename a finished local folder into place, replacing an older one."""
    try:
        os.rename(staging, dest)
        return
    except OSError:
        if not os.path.isdir(dest):
            raise
    # An older folder is there (a retried trial writes the same step again): moved
    # aside, so `dest` is missing only between two renames, then removed.
    old = f"{staging}.old"
    os.rename(dest, old)
    os.rename(staging, dest)
    shutil.rmtree(old, ignore_errors=True)


def _filesystem(root: str, protocol: str, options: Mapping[str, Any]) -> AbstractFileSystem:
    """The fsspec filesystem for `root`, or one line naming artifacts.store."""
    import fsspec

    if protocol in _LOCAL_PROTOCOLS:
        return fsspec.filesystem("file", **{"auto_mkdir": True, **options})
    try:
        fsspec.get_filesystem_class(protocol)
    except ValueError:
        raise SpecError(f"{root} has an unknown protocol {protocol!r}: {_FIX}", _KEY) from None
    except ImportError:
        raise SpecError(
            f"{root} needs a package that is not installed: {_install_hint(protocol)}", _KEY
        ) from None
    return fsspec.filesystem(protocol, **options)


def _install_hint(protocol: str) -> str:
    from fsspec.registry import known_implementations

    if protocol in ("s3", "s3a"):
        return "pip install s3fs (or pip install 'tuner[s3]')"
    cls = known_implementations.get(protocol, {}).get("class", "")
    package = cls.split(".")[0] if cls else ""
    return f"pip install {package}" if package else f"install fsspec's {protocol} support"


def default_store(storage_url: str) -> str | None:
    """The store used when the spec names none: for a SQLite file, the folder beside it
    named ``<db stem>-artifacts`` (``sqlite:////x/tuner.db``: ``/x/tuner-artifacts``;
    a relative file is taken from the current folder). None for an in-memory SQLite
    database or any other storage (PostgreSQL), where no such folder exists."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(storage_url)
    except ArgumentError:
        return None
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database.startswith("file:"):  # SQLite's URI filename (with ?uri=true)
        if url.query.get("mode") == "memory" or "mode=memory" in database:
            return None
        database = database.removeprefix("file:").split("?", 1)[0]
    if database in ("", ":memory:"):
        return None
    db = Path(os.path.abspath(os.path.expanduser(database)))
    return str(db.with_name(f"{db.stem}-artifacts"))


def resolve_store(store: str | None, storage_url: str) -> str:
    """The study's store root: the spec's ``artifacts.store`` (made absolute if it is a
    local path), else :func:`default_store` of the storage.

    Raises:
        SpecError: naming ``artifacts.store``, when the spec names none and the storage
            has no file to put one beside (PostgreSQL, in-memory SQLite).
    """
    if store:
        return _normalise(store)
    default = default_store(storage_url)
    if default is not None:
        return default
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(storage_url).get_backend_name()
    except ArgumentError:
        backend = "this"
    what = "an in-memory SQLite database" if backend == "sqlite" else f"a {backend} storage"
    raise SpecError(
        f"is required with {what} (there is no database file to put it beside): {_FIX}",
        _KEY,
    )


def study_roots(
    study_name: str,
    spec: Mapping[str, Any] | None,
    storage_url: str,
    uris: Iterable[str] = (),
) -> list[str]:
    """The roots of the stores that may hold a stored study's files.

    The root its stored spec names (``artifacts.store``, a local path made absolute
    from the current folder, as the driver does), else :func:`default_store` of the
    storage (a spec stored before ``artifacts`` existed has no key); then any other
    root that one of ``uris`` (the study's artifact rows) lies under, so that files
    stored from another folder are found too. Empty where there is no store.
    """
    roots: list[str] = []
    section = spec.get("artifacts") if isinstance(spec, Mapping) else None
    store = section.get("store") if isinstance(section, Mapping) else None
    root = _normalise(store) if isinstance(store, str) and store else default_store(storage_url)
    if root is not None:
        roots.append(root)
    marker = f"/{study_name}/trial-"
    for uri in uris:
        at = uri.rfind(marker)
        if at > 0:
            other = _normalise(uri[:at])
            if other not in roots:
                roots.append(other)
    return roots


def check_store(
    root: str,
    *,
    on_cluster: bool,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Check that trials will be able to use the store, before any of them runs.

    Writes a marker file under the root (``{root}/.tuner-store-check-<uuid>``), reads it
    back and deletes it. For a local folder on a cluster, a Ray task pinned to every
    alive node (``ray.nodes()``) reads the marker too, so a folder that is not shared
    fails here, naming the node. Call it in the driver once Ray is up.

    Args:
        root: the store's root (:func:`resolve_store`).
        on_cluster: the study runs on an existing Ray cluster (its nodes may be other
            machines) rather than a local Ray started for it.
        storage_options: as for :class:`ArtifactStore`.

    Raises:
        SpecError: one line naming ``artifacts.store``: an unknown protocol, a missing
            package, a store that cannot be written or read back, a filesystem that
            lives in one process (memory://), or a local folder a node does not see.
        ClusterError: a node did not answer the check.
    """
    store = ArtifactStore(root, storage_options)
    if store.protocol in _IN_PROCESS_PROTOCOLS:
        raise SpecError(
            f"{store.root} lives in this process only, and trials run in others: {_FIX}", _KEY
        )
    fs = store.fs
    marker = f"{store.root}/.tuner-store-check-{uuid.uuid4().hex}"
    path = store._path(marker)
    content = uuid.uuid4().hex.encode()
    try:
        fs.pipe_file(path, content)
        if fs.cat_file(path) != content:
            raise OSError("the file read back differs from the file written")
    except Exception as e:  # anything the filesystem's package raises: say it in one line
        with contextlib.suppress(Exception):
            fs.rm(path)
        raise SpecError(
            f"cannot write and read back {marker} ({_one_line(e)}): {_FIX}", _KEY
        ) from None
    try:
        if store.is_local and on_cluster:
            _check_nodes(store.root, path, content, _alive_nodes())
    finally:
        with contextlib.suppress(Exception):
            fs.rm(path)


def _alive_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def _read_marker(path: str, content: bytes) -> str | None:
    """On a node: None if the marker is there with its content, else why not."""
    try:
        with open(path, "rb") as f:
            found = f.read()
    except OSError as e:
        return e.strerror or type(e).__name__
    return None if found == content else "a different file is there"


def _check_nodes(root: str, path: str, content: bytes, nodes: list[dict[str, Any]]) -> None:
    """Read the marker at `path` on every node of `nodes`, each in a Ray task pinned to it.

    Raises:
        SpecError: naming the first node that does not see the marker.
        ClusterError: a node did not answer.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    read = ray.remote(num_cpus=0, max_retries=0)(_read_marker)
    pending = {
        read.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        ).remote(path, content): node
        for node in nodes
    }
    try:
        answers = ray.get(list(pending), timeout=_NODE_CHECK_TIMEOUT_S)
    except Exception as e:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise ClusterError(
            f"could not check that every node sees artifacts.store {root} ({_one_line(e)}); "
            "check that the cluster's nodes are up"
        ) from None
    for node, why in zip(pending.values(), answers, strict=True):
        if why is not None:
            raise SpecError(
                f"{root} is not seen by node {node.get('NodeManagerAddress', '?')} "
                f"(node {str(node['NodeID'])[:8]}: {why}): use a shared folder or an s3:// URL",
                _KEY,
            )


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())[:200]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
