"""The Study page: trial table, optimization history, parameters, learning curves."""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from tuner.dashboard import _common as c
from tuner.dashboard import charts
from tuner.dashboard import queries as q

TABLE_ROWS = 1000
"""The most rows the trial table shows; the CSV download has every filtered row."""


def render() -> None:
    url = c.storage_url()
    c.storage_or_stop(url)
    studies = c.studies_or_stop(url)
    study = c.pick_study(studies)
    live = c.is_live(study, studies)

    @st.fragment(run_every=c.REFRESH_S if live else None)
    def body() -> None:
        show_study(url, study.name)

    body()


def show_study(url: str, name: str) -> None:
    """The whole study page (also what AppTest renders)."""
    try:
        study = c.load_study(url, name)
        fp = c.load_fingerprint(url, study.id)
        frame = c.load_trials(url, name, fp)
    except c.TunerError as e:
        c.fail(e)
        return
    c.heading(study.name, 1)
    counts = frame["state"].value_counts()
    st.caption(
        c.md(
            f"status {study.status} · {study.algorithm} + {study.scheduler} · "
            f"{study.mode} {study.metric} · {len(frame):,} trials ("
            + ", ".join(f"{counts.get(s, 0):,} {s}" for s in q.TRIAL_STATES if counts.get(s, 0))
            + ")"
        )
    )
    if frame.empty:
        st.info("No trials yet. They appear here as the study runs.", icon=":material/info:")
        return
    trial_table(study, frame)
    history_section(study, frame)
    parameter_section(url, study, frame, fp)
    curves_section(url, study, frame, fp)


def trial_table(study: c.StudyRecord, frame: pd.DataFrame) -> None:
    st.subheader("Trials")
    present = [s for s in q.TRIAL_STATES if (frame["state"] == s).any()]
    numeric = [
        "value",
        *(
            col
            for col in [*q.param_columns(frame), *q.metric_columns(frame), "duration_s", "steps"]
            if q.is_numeric(frame[col])
        ),
    ]
    cols = st.columns([3, 2, 3, 2, 1])
    states = cols[0].multiselect("State", present, default=present, key="f_states")
    range_col = cols[1].selectbox("Range filter", ["(none)", *numeric], key="f_range_col")
    ranges: dict[str, tuple[float, float]] = {}
    if range_col != "(none)":
        values = pd.to_numeric(frame[range_col], errors="coerce").dropna()
        if len(values) and values.min() < values.max():
            low, high = float(values.min()), float(values.max())
            picked = cols[2].slider(
                "Range", low, high, (low, high), key=f"f_range_{range_col}", format="%.4g"
            )
            ranges[range_col] = (float(picked[0]), float(picked[1]))
    sortable = ["number", *numeric, "state", "started"]
    sort_by = cols[3].selectbox("Sort by", sortable, key="f_sort")
    ascending = cols[4].toggle(
        "Asc.", value=not (sort_by == "value" and study.mode == "max"), key="f_asc"
    )
    filtered = q.filter_trials(frame, states, ranges, sort_by, ascending)
    shown = c.display_frame(filtered.head(TABLE_ROWS))
    event = st.dataframe(
        shown,
        hide_index=True,
        on_select="rerun",
        selection_mode="multi-row",
        key="trials_table",
        height=320,
        column_config={
            "started": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm:ss"),
            "finished": st.column_config.DatetimeColumn("finished", format="YYYY-MM-DD HH:mm:ss"),
        },
    )
    rows = list(event.selection.rows) if event is not None else []
    picked_numbers = [int(n) for n in shown.iloc[rows]["number"]] if rows else []
    note = f"{len(filtered):,} of {len(frame):,} trials match"
    if len(filtered) > TABLE_ROWS:
        note += f"; the table shows the first {TABLE_ROWS:,}, the CSV has them all"
    st.caption(
        note + ". Select rows to open or compare trials. Absent parameters are "
        "inactive conditional ones."
    )
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", study.name) or "study"
    bcols = st.columns(3)
    bcols[0].download_button(
        "Download CSV", data=lambda: filtered.to_csv(index=False), file_name=f"{safe}-trials.csv",
        mime="text/csv", icon=":material/download:", key="csv",
    )  # fmt: skip
    with bcols[1]:
        if len(picked_numbers) == 1:
            c.link(
                "trial",
                label=f"Open trial {picked_numbers[0]}",
                query_params={"study": study.name, "trial": str(picked_numbers[0])},
            )
    with bcols[2]:
        if 2 <= len(picked_numbers) <= 5:
            c.link(
                "compare_trials",
                label="Compare the selected trials",
                query_params={"study": study.name, "trials": ",".join(map(str, picked_numbers))},
            )
        elif len(picked_numbers) > 5:
            st.caption("Select two to five trials to compare them.")


def history_section(study: c.StudyRecord, frame: pd.DataFrame) -> None:
    st.subheader("Optimization history")
    points, best = q.history(frame, study.mode)
    if points.empty:
        st.info("No completed trial with a value yet.", icon=":material/info:")
        return
    if len(points) < (frame["state"] == "completed").sum():
        st.caption(
            f"Downsampled to {len(points):,} points (each bin's lowest and highest); "
            "the best-so-far line is exact."
        )
    over = st.radio("Over", ["trial number", "wall-clock time"], horizontal=True, key="hist_x")
    x = "number" if over == "trial number" else "elapsed_s"
    st.plotly_chart(charts.history_fig(points, best, study.metric, x), key="history")


def parameter_section(url: str, study: c.StudyRecord, frame: pd.DataFrame, fp: tuple) -> None:
    params = q.param_columns(frame)
    st.subheader("Parameters")
    if not params:
        st.info("This study has no parameters.", icon=":material/info:")
        return
    sample = q.parallel_frame(frame, study.mode)
    if sample.empty:
        st.info("No completed trial with a value yet.", icon=":material/info:")
        return
    log = q.log_params(study)
    brush = st.toggle(
        "Brushable axes (WebGL)", key="pc_webgl",
        help="Drag along an axis to keep the trials in a range. Needs WebGL, slow in "
        "browsers without a GPU.",
    )  # fmt: skip
    fig = (charts.parallel_fig if brush else charts.parallel_svg_fig)(
        sample, params, study.metric, log
    )
    st.plotly_chart(fig, key="parallel")
    imp = c.load_importance(url, study.name, fp)
    left, right = st.columns([1, 2])
    with left:
        if imp.empty:
            st.info("Importance needs two completed trials and a parameter that varies.")
        else:
            st.plotly_chart(charts.importance_fig(imp), key="importance")
            st.caption(
                "Mean decrease in impurity of a random forest (Optuna's evaluator) "
                "over up to 1,000 completed trials; conditional parameters left out."
            )
    with right:
        st.plotly_chart(charts.slice_fig(sample, params, study.metric, log), key="slice")
    if len(params) >= 2:
        names = {col: col.split(".", 1)[1] for col in params}
        # Default to the two most important parameters.
        ranked = [f"params.{p}" for p in imp["param"] if f"params.{p}" in params]
        ranked += [p for p in params if p not in ranked]
        ix, iy = params.index(ranked[0]), params.index(ranked[1])
        cols = st.columns(2)
        x = cols[0].selectbox(
            "Contour x", params, index=ix, format_func=lambda col: names[col], key="cx"
        )
        y = cols[1].selectbox(
            "Contour y", params, index=iy, format_func=lambda col: names[col], key="cy"
        )
        if x == y:
            st.info("Pick two different parameters for the contour.")
        else:
            xs, ys, z, pts = c.load_contour(url, study.name, fp, x, y, tuple(sorted(log)))
            st.plotly_chart(
                charts.contour_fig(xs, ys, z, pts, x, y, study.metric, log), key="contour"
            )


def curves_section(url: str, study: c.StudyRecord, frame: pd.DataFrame, fp: tuple) -> None:
    st.subheader("Learning curves")
    numbers = q.curve_sample(frame, study.mode)
    curves = c.load_curves(url, study.id, study.metric, tuple(numbers), fp)
    done = frame[(frame["state"] == "completed") & frame["value"].notna()]
    best = done.nsmallest(10, "value") if study.mode == "min" else done.nlargest(10, "value")
    states = dict(zip(frame["number"], frame["state"], strict=True))
    left, right = st.columns(2)
    left.plotly_chart(
        charts.curves_fig(curves, states, best["number"].tolist(), study.metric), key="curves"
    )
    right.plotly_chart(charts.steps_reached_fig(q.steps_reached(frame)), key="reached")
    st.caption(
        "Left: the intermediate metric by step for the 10 best trials and a sample of "
        "the others; a red cross marks where a pruned trial was stopped. Right: how "
        "many trials of each final state reached each step, over all trials."
    )
