"""What every page shares: the storage, cached frames, the study picker, escaping."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

import pandas as pd
import streamlit as st

from tuner._defaults import default_storage_url
from tuner.exceptions import TunerError
from tuner.storage import Storage, StudyRecord

from . import frames as q

REFRESH_S = 3.0
"""How often a running study's views refresh themselves."""
PAGES: dict[str, Any] = {}
"""Page key -> st.Page, filled by app.py, for links between pages."""

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^\"'])")


def md(text: Any) -> str:
    """``text`` escaped for st.markdown: shown literally, never as markup or HTML."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def storage_url() -> str:
    """The database: $TUNER_DASHBOARD_STORAGE (what ``tuner dashboard`` sets), else
    ``--storage`` after ``--`` on Streamlit's command line, $TUNER_STORAGE, then
    sqlite:///tuner.db."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--storage", default=None)
    known, _ = parser.parse_known_args(sys.argv[1:])
    return os.environ.get("TUNER_DASHBOARD_STORAGE") or known.storage or default_storage_url()


@st.cache_resource(show_spinner=False)
def _storage(url: str) -> Storage:
    return q.open_storage(url)  # an error is not cached: the next run tries again


def storage_or_stop(url: str) -> Storage:
    """The read-only storage, or a clear message in the page and the run stops."""
    try:
        return _storage(url)
    except (q.DashboardError, TunerError) as e:
        st.error(md(e), icon=":material/error:")
        st.stop()
        raise  # unreachable: st.stop raises


def fail(message: Any) -> None:
    st.error(md(message), icon=":material/error:")
    st.stop()


@st.cache_data(ttl=REFRESH_S, show_spinner=False)
def load_studies(url: str) -> pd.DataFrame:
    return q.studies_frame(_storage(url))


@st.cache_data(ttl=REFRESH_S, show_spinner=False)
def load_study(url: str, name: str) -> StudyRecord:
    return _storage(url).get_study(name)


@st.cache_data(ttl=REFRESH_S / 2, show_spinner=False)
def load_fingerprint(url: str, study_id: int) -> tuple[Any, ...]:
    return q.fingerprint(_storage(url), study_id)


# The heavy queries are keyed by the study's fingerprint: recomputed only when the
# study changed, however often a running study's page refreshes.
@st.cache_data(max_entries=16, show_spinner=False)
def load_trials(url: str, name: str, fingerprint: tuple[Any, ...]) -> pd.DataFrame:
    storage = _storage(url)
    return q.trials_frame(storage, storage.get_study(name))


@st.cache_data(max_entries=32, show_spinner=False)
def load_curves(
    url: str, study_id: int, metric: str, numbers: tuple[int, ...], fingerprint: tuple[Any, ...]
) -> pd.DataFrame:
    return q.learning_curves(_storage(url), study_id, metric, numbers)


@st.cache_data(max_entries=16, show_spinner=False)
def load_parents(url: str, name: str, fingerprint: tuple[Any, ...]) -> dict[int, int]:
    """The study's children and their parents; read only for the algorithms that make
    them (:data:`frames.LINEAGE_ALGORITHMS`): every other study gets none, and no query."""
    storage = _storage(url)
    study = storage.get_study(name)
    if study.algorithm not in q.LINEAGE_ALGORITHMS:
        return {}
    return q.parents(storage, study)


@st.cache_data(max_entries=16, show_spinner=False)
def load_importance(url: str, name: str, fingerprint: tuple[Any, ...]) -> pd.DataFrame:
    storage = _storage(url)
    study = storage.get_study(name)
    return q.importance(load_trials(url, name, fingerprint), study)


@st.cache_data(max_entries=32, show_spinner=False)
def load_contour(
    url: str, name: str, fingerprint: tuple[Any, ...], x: str, y: str, log: tuple[str, ...]
) -> tuple[Any, Any, Any, pd.DataFrame]:
    frame = load_trials(url, name, fingerprint)
    return q.contour_grid(frame[frame["state"] == "completed"], x, y, log=log)


@st.cache_data(max_entries=32, show_spinner=False)
def load_best_curve(url: str, name: str, fingerprint: tuple[Any, ...]) -> pd.DataFrame:
    storage = _storage(url)
    return q.best_curve(storage, storage.get_study(name))


def studies_or_stop(url: str) -> pd.DataFrame:
    storage_or_stop(url)
    try:
        studies = load_studies(url)
    except TunerError as e:
        fail(e)
    if studies.empty:
        st.info(
            "This database has no studies yet. Run one with `tuner run SPEC.yaml` "
            "(with the same --storage) and it appears here on its own.",
            icon=":material/info:",
        )
        st.stop()
    return studies


def pick_study(studies: pd.DataFrame, label: str = "Study") -> StudyRecord:
    """The study chosen in the sidebar (from ``?study=NAME``, else the newest)."""
    names = studies["name"].tolist()
    wanted = st.query_params.get("study") or st.session_state.get("_study")
    index = names.index(wanted) if wanted in names else len(names) - 1
    name = st.sidebar.selectbox(label, names, index=index, key="study_picker")
    st.session_state["_study"] = name
    if st.query_params.get("study") != name:
        st.query_params["study"] = name
    try:
        return load_study(storage_url(), name)
    except TunerError as e:
        fail(e)
        raise


def is_live(study: StudyRecord, studies: pd.DataFrame) -> bool:
    row = studies[studies["name"] == study.name]
    running = int(row["running"].iloc[0]) if len(row) else 0
    return study.status in ("running", "created") or running > 0


def study_page() -> tuple[str, StudyRecord, bool]:
    """What a page about one study starts with: the storage URL (its page stops with a
    message when the storage cannot be opened or holds no study), the study picked in
    the sidebar, and whether it is live (its views refresh every :data:`REFRESH_S`)."""
    url = storage_url()
    studies = studies_or_stop(url)
    study = pick_study(studies)
    return url, study, is_live(study, studies)


def selectable_table(frame: pd.DataFrame, key: str, **kwargs: Any) -> pd.DataFrame:
    """``frame`` as a table whose rows the user can select; returns the selected rows."""
    event = st.dataframe(
        frame, hide_index=True, on_select="rerun", selection_mode="multi-row", key=key, **kwargs
    )
    rows = list(event.selection.rows) if event is not None else []
    return frame.iloc[rows]


def link(page: str, label: str, query_params: dict[str, Any], **kwargs: Any) -> None:
    """A link to another page with its query parameters (none outside the full app,
    e.g. when a test renders one view)."""
    if page in PAGES:
        st.page_link(PAGES[page], label=label, query_params=query_params, **kwargs)


def cell(value: Any) -> str | None:
    """A value as the text a table cell shows; None (absent) stays None."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def heading(text: str, level: int = 2) -> None:
    st.markdown(f"{'#' * level} {md(text)}")


def parse_numbers(raw: str) -> list[int]:
    """Trial numbers from text like ``3, 17 42``; raises ValueError naming a bad one."""
    out: list[int] = []
    for part in re.split(r"[\s,;]+", raw.strip()):
        if not part:
            continue
        if not part.lstrip("#").isdigit():
            raise ValueError(f"{part!r} is not a trial number")
        n = int(part.lstrip("#"))
        if n not in out:
            out.append(n)
    return out


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A trials frame as the table shows it: short column names, first error line."""
    out = frame.copy()
    if "error" in out:
        out["error"] = out["error"].map(
            lambda e: None if e is None or e != e else str(e).strip().splitlines()[-1][:200]
        )
    return out
