"""tuner's storage: studies, trials and every result in SQLite or PostgreSQL.

:class:`Storage` is the one way into the database; it returns the immutable records
below and takes the trial events the study's driver writes. :class:`DashboardReads` is
the dashboard's read model over a storage (typed aggregate queries and frames). The
schema and the module layout are documented in docs/storage.md.
"""

from __future__ import annotations

from tuner.storage._engine import parse_storage_url
from tuner.storage._read_model import DashboardReads, StudyFingerprint
from tuner.storage._records import (
    ARTIFACT_KINDS,
    STUDY_STATES,
    TERMINAL_STUDY_STATES,
    TERMINAL_TRIAL_STATES,
    TRIAL_STATES,
    ArtifactDeleted,
    ArtifactRecord,
    ArtifactSaved,
    StudyRecord,
    StudyState,
    StudySummary,
    TrialFinished,
    TrialImport,
    TrialOutput,
    TrialOutputRecord,
    TrialRecord,
    TrialResult,
    TrialRetried,
    TrialStarted,
    TrialState,
)
from tuner.storage._storage import Storage, TrialEvent

__all__ = [
    "ARTIFACT_KINDS",
    "STUDY_STATES",
    "TERMINAL_STUDY_STATES",
    "TERMINAL_TRIAL_STATES",
    "TRIAL_STATES",
    "ArtifactDeleted",
    "ArtifactRecord",
    "ArtifactSaved",
    "DashboardReads",
    "Storage",
    "StudyFingerprint",
    "StudyRecord",
    "StudyState",
    "StudySummary",
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
