"""Trials' checkpoints and models: a store under one root folder or URL.

    store = ArtifactStore(resolve_store(spec.artifacts.store, storage_url))
    check_store(store.root, on_cluster=...)        # in the driver, before any trial
    key = store.trial_key(study, number, "checkpoint", step)
    store.put_dir(folder, key); store.get_dir(key, somewhere)

Errors a user causes (an unknown protocol, a missing package, a store that cannot be
written, a folder a node does not see) are :class:`tuner.SpecError` naming
``artifacts.store``.
"""

from tuner.artifacts._store import (
    COMPLETE_MARKER,
    KINDS,
    ArtifactStore,
    check_store,
    default_store,
    resolve_store,
    study_roots,
)

__all__ = [
    "COMPLETE_MARKER",
    "KINDS",
    "ArtifactStore",
    "check_store",
    "default_store",
    "resolve_store",
    "study_roots",
]
