"""The Trial page: one trial's parameters, metrics, node, duration, error, curves, its
stored checkpoints and model (each a download), and what it wrote to stdout and
stderr."""

from __future__ import annotations

import io
import posixpath
import re
import shlex
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from tuner._output import OUTPUT_LIMIT
from tuner.storage import ArtifactRecord, TrialOutputRecord

from . import _common as c
from . import charts
from . import frames as q

DOWNLOAD_LIMIT = 512 * 1024**2
"""The largest stored folder offered as a download (a .zip built in memory); a larger
one shows its URI and the command that copies it instead."""


def render() -> None:
    url, study, live = c.study_page()
    st.title("Trial")
    linked = st.query_params.get("trial")
    raw = linked or st.session_state.get("_trial", "0")
    try:
        initial = max(int(raw), 0)
    except ValueError:
        initial = 0
    kept = "trial_number" in st.session_state
    if kept and linked is not None and linked != st.session_state.get("_trial_linked"):
        # A link to another trial of this page (a trial's parent): the link wins over
        # the number the box kept.
        st.session_state["trial_number"] = initial
    picked = st.number_input(
        "Trial number", min_value=0, value=None if kept else initial, step=1, key="trial_number"
    )
    number = int(picked or 0)
    st.session_state["_trial"] = str(number)
    st.session_state["_trial_linked"] = str(number)
    if st.query_params.get("trial") != str(number):
        st.query_params["trial"] = str(number)

    @st.fragment(run_every=c.REFRESH_S if live else None)
    def body() -> None:
        show_trial(url, study.name, number)

    body()


def show_trial(url: str, name: str, number: int) -> None:
    storage = c._storage(url)
    study = c.load_study(url, name)
    try:
        trial = storage.get_trial(study.id, number)
    except c.TunerError:
        st.warning(f"Study {c.md(name)} has no trial {number}.")
        return
    c.heading(f"{study.name} · trial {trial.number}", 3)
    facts = {
        "state": trial.state,
        study.metric: trial.value,
        "node": trial.node or "(unknown)",
        "started": trial.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "finished": trial.finished_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        if trial.finished_at
        else "(running)",
        "duration": "(unknown)" if trial.duration_s is None else f"{trial.duration_s:.2f} s",
        "steps": trial.steps,
    }
    if trial.parent is not None:
        facts["parent"] = f"trial {trial.parent} (started from its checkpoint)"
    st.dataframe(
        pd.DataFrame({"": list(facts), "value": [str(v) for v in facts.values()]}),
        hide_index=True,
        key="trial_facts",
    )
    if trial.parent is not None:
        c.link(
            "trial", label=f"Parent: trial {trial.parent}",
            query_params={"study": name, "trial": str(trial.parent)}, icon=":material/north_west:",
        )  # fmt: skip
    if trial.error:
        st.subheader("Error")
        st.code(trial.error, language=None)
    left, right = st.columns(2)
    with left:
        st.subheader("Parameters")
        space = study.spec.get("search_space") if isinstance(study.spec, dict) else None
        names = sorted(set(trial.params) | set(space or {}))
        st.dataframe(
            pd.DataFrame({
                "parameter": names,
                "value": [repr(trial.params[n]) if n in trial.params else "(absent: inactive)"
                          for n in names],
            }),
            hide_index=True, key="trial_params",
        )  # fmt: skip
    with right:
        st.subheader("Metrics (last reported)")
        st.dataframe(
            pd.DataFrame({"metric": list(trial.metrics),
                          "value": [float(v) for v in trial.metrics.values()]}),
            hide_index=True, key="trial_metrics",
        )  # fmt: skip
    curves = storage.get_intermediate(study.id, [number]).get(number, {})
    if curves:
        st.subheader("Learning curves")
        for metric, points in sorted(curves.items()):
            frame = pd.DataFrame(points, columns=["step", "value"]).assign(number=number)
            st.plotly_chart(charts.compare_curves_fig(frame, metric), key=f"curve_{metric}")
    section = study.spec.get("artifacts") if isinstance(study.spec, dict) else None
    keep = section.get("keep") if isinstance(section, dict) else None
    show_files(study.name, number, storage.artifacts(study.id, number), keep)
    show_output(storage.trial_output(study.id, number))


def show_files(name: str, number: int, records: Sequence[ArtifactRecord], keep: Any = None) -> None:
    """The trial's stored checkpoints and model: a table, and a .zip download each."""
    st.subheader("Checkpoints and model")
    if not records:
        best = f"the best {keep}" if isinstance(keep, int) else "the best N"
        st.caption(
            f"No checkpoint or model kept for this trial (artifacts.keep keeps {best} "
            "trials' models; a running trial keeps its latest checkpoint)."
        )
        return
    st.dataframe(q.artifacts_frame(records), hide_index=True, key="trial_files")
    for a in sorted(records, key=lambda a: (a.kind != "model", a.step)):
        label = f"Download {a.kind} (step {a.step}, {q.human_bytes(a.bytes)}) as .zip"
        if a.bytes > DOWNLOAD_LIMIT:
            st.caption(
                f"The {a.kind} of step {a.step} is {q.human_bytes(a.bytes)}, too large to "
                f"download here ({q.human_bytes(DOWNLOAD_LIMIT)} at most). It lies at:"
            )
            lines = [a.uri]
            if a.kind == "model":
                lines.append(f"tuner model {shlex.quote(name)} --trial {number} -o PATH")
            st.code("\n".join(lines), language=None)
            continue
        # Built when clicked (on a thread of its own), not on every run of the page.
        top = _zip_name(name, a)
        st.download_button(
            label, data=_zip_later(a.uri, top), file_name=f"{top}.zip", mime="application/zip",
            on_click="ignore", key=f"dl_{a.kind}_{a.step}", icon=":material/download:",
        )  # fmt: skip


def _zip_name(study: str, a: ArtifactRecord) -> str:
    """The .zip's name (and its top folder's): study, trial, kind and step, in
    characters every filesystem takes."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", study).strip("._") or "study"
    return f"{safe}-trial-{a.number:05d}-{a.kind}-{a.step:08d}"


def _zip_later(uri: str, top: str) -> Callable[[], bytes]:
    """What a download button calls when clicked: the folder at ``uri`` as a .zip."""
    return lambda: zip_folder(uri, top)


def zip_folder(uri: str, top: str) -> bytes:
    """A stored folder as a .zip in memory, its files under the folder ``top``.

    Fetched through :meth:`tuner.artifacts.ArtifactStore.get_dir` (so a folder being
    written or deleted is refused) into a temporary folder, removed after.

    Raises:
        FileNotFoundError: nothing complete is stored at ``uri`` (any more).
        SpecError: the store's protocol is unknown or its package missing.
    """
    from tuner.artifacts import ArtifactStore

    store = ArtifactStore(posixpath.dirname(uri.rstrip("/")))
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="tuner-dashboard-") as tmp:
        folder = store.get_dir(uri, Path(tmp) / "folder")
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr(f"{top}/", b"")
            for path in sorted(folder.rglob("*")):
                arcname = f"{top}/{path.relative_to(folder).as_posix()}"
                if path.is_dir():
                    zf.writestr(f"{arcname}/", b"")
                else:
                    zf.write(path, arcname)
    return buffer.getvalue()


def show_output(outputs: list[TrialOutputRecord]) -> None:
    """What the trial wrote to stdout and stderr: a code block per attempt."""
    st.subheader("Output")
    if not outputs:
        st.caption("Nothing written to stdout or stderr (or the trial ran before tuner kept it).")
        return
    several = len(outputs) > 1 or outputs[0].attempt > 1
    for out in outputs:
        notes = [f"attempt {out.attempt}"] if several else []
        if out.truncated:
            notes.append(f"the last {OUTPUT_LIMIT // 1024} KiB; earlier output was dropped")
        if notes:
            st.caption(" · ".join(notes))
        st.code(out.text, language=None, height=400 if out.text.count("\n") > 20 else "content")
