"""The Trial page: one trial's parameters, metrics, node, duration, error, curves and
what it wrote to stdout and stderr."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tuner._output import OUTPUT_LIMIT
from tuner.storage import TrialOutputRecord

from . import _common as c
from . import charts


def render() -> None:
    url, study, live = c.study_page()
    st.title("Trial")
    raw = st.query_params.get("trial") or st.session_state.get("_trial", "0")
    try:
        initial = max(int(raw), 0)
    except ValueError:
        initial = 0
    number = int(
        st.number_input("Trial number", min_value=0, value=initial, step=1, key="trial_number")
    )
    st.session_state["_trial"] = str(number)
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
    st.dataframe(
        pd.DataFrame({"": list(facts), "value": [str(v) for v in facts.values()]}),
        hide_index=True,
        key="trial_facts",
    )
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
    show_output(storage.trial_output(study.id, number))


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
