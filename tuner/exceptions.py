"""The errors `tuner` raises.

Every error a user can cause is a :class:`TunerError`, and its message is one line that
names what is wrong and how to fix it::

    TunerError                  base of everything below
    ├── SpecError               a study spec is invalid (names the file and key path)
    ├── StorageError            the database cannot be opened, read or written
    │   ├── StorageUnavailable  the database cannot be reached now (connection lost or
    │   │                       refused, server restarting, locked): may pass
    │   ├── StorageRefused      the database refused what was asked (a constraint, a
    │   │                       value it cannot hold, an event that breaks the contract)
    │   ├── StudyExistsError    create a study whose name is taken
    │   └── StudyNotFoundError  load a study that is not in the storage
    ├── ClusterError            the Ray cluster cannot be reached or refuses the driver
    ├── IncompatibleDependency  an installed Ray or Optuna lacks a private name tuner
    │                           uses (tuner/_compat checks each)
    ├── ReportError             tuner.report() called wrongly (outside a trial, bad value)
    ├── StudyFailedError        a study ended without a single successful trial, or
    │                           with more failed trials than limits.max_failed_trials
    └── StudyInterrupted        SIGINT or SIGTERM stopped the run (the study is resumable)

A failing objective is not an exception of the study: its trial is recorded as
``failed`` with the error text, and the study goes on.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ClusterError",
    "IncompatibleDependency",
    "ReportError",
    "SpecError",
    "StorageError",
    "StorageRefused",
    "StorageUnavailable",
    "StudyExistsError",
    "StudyFailedError",
    "StudyInterrupted",
    "StudyNotFoundError",
    "TunerError",
]


class TunerError(Exception):
    """Base class of every error `tuner` raises on purpose."""


class SpecError(TunerError, ValueError):
    """A study spec is invalid.

    Args:
        message: what was expected, e.g. ``must be < high (got low=0.5, high=0.1)``.
        path: the key path inside the spec, e.g. ``("search_space", "eta", "low")``.
        source: the file the spec came from, if any.
    """

    def __init__(
        self, message: str, path: Sequence[str | int] = (), source: str | None = None
    ) -> None:
        self.message = message
        self.path = tuple(path)
        self.source = source
        super().__init__(self._format())

    def _format(self) -> str:
        where = ".".join(_key(p) for p in self.path)
        parts = [p for p in (self.source, where) if p]
        # One line, whatever the spec's keys and values hold.
        return ": ".join([*parts, self.message]).replace("\r", "\\r").replace("\n", "\\n")

    def with_source(self, source: str | None) -> SpecError:
        """The same error, naming the file it came from."""
        return SpecError(self.message, self.path, source)


def _key(part: str | int) -> str:
    """A key of a spec's path as written: quoted when it is empty, has spaces at its
    ends, or holds a character that does not print (a newline, say)."""
    text = str(part)
    if isinstance(part, int) or (text and text.isprintable() and text.strip() == text):
        return text
    return repr(text)


class StorageError(TunerError):
    """The database cannot be opened, read or written."""


class StorageUnavailable(StorageError):
    """The database cannot be reached now: the connection was lost or refused, the
    server is restarting, or the database is locked. Writing again later may succeed."""


class StorageRefused(StorageError):
    """The database, or the storage's own checks, refused what was asked: writing it
    again will fail again."""


class StudyExistsError(StorageError):
    """A study of that name is already in the storage."""


class StudyNotFoundError(StorageError):
    """No study of that name is in the storage."""


class ClusterError(TunerError):
    """The Ray cluster cannot be started or reached, or refuses the driver (token)."""


class IncompatibleDependency(TunerError):
    """An installed Ray or Optuna lacks a private name tuner relies on."""


class ReportError(TunerError):
    """``tuner.report`` was called outside a trial or with a value it cannot record."""


class StudyFailedError(TunerError):
    """A study ended without a single completed trial."""


class StudyInterrupted(TunerError):
    """SIGINT or SIGTERM stopped a run: its running trials were recorded as stopped and
    the study can be resumed.

    Args:
        message: one line for the terminal.
        signum: the signal's number (the CLI exits with 128 + signum).
    """

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
