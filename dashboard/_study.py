"""The Study page: one chart at a time, then the trial table.

The charts (optimization history, parallel coordinates, importance, slices, contour,
learning curves, steps reached, timeline; a Population Based Training study's
population too) are behind a picker, and only the picked one is built and sent to the browser. (``st.tabs`` would not defer anything: Streamlit
builds every tab and the browser draws them all, which is what made the page take 3 s
in headless Chromium.) Figures are cached by the study's change fingerprint, so a
running study's page, refreshed every few seconds, rebuilds one only when the study
changed.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from . import _common as c
from . import charts
from . import frames as q

TABLE_ROWS = 200
"""The most rows the trial table shows (sorted and filtered by its controls); the CSV
download has every filtered row. The browser lays out every row sent: 1,000 rows cost
the study page's first draw about as much as its chart."""
HISTORY_POINTS = 250
"""The most trial markers of the optimization history (each bin's lowest and highest
value kept), the chart every visit to the page draws."""
CHARTS = (
    "Optimization history",
    "Parallel coordinates",
    "Importance",
    "Slices",
    "Contour",
    "Learning curves",
    "Steps reached",
    "Timeline",
)
"""The charts the picker offers, the first drawn by default."""
POPULATION = "Population"
"""The chart of a study whose trials start from others' checkpoints (pbt, pb2), offered
second (after the optimization history) when one has."""
MO_CHARTS = ("Pareto front", "Hypervolume", *CHARTS)
"""The charts of a study with several objectives: its front first."""


def render() -> None:
    url, study, live = c.study_page()

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
    objectives = q.objectives(study)
    goal = (
        ", ".join(f"{mode} {metric}" for metric, mode in objectives)
        if objectives
        else f"{study.mode} {study.metric}"
    )
    st.caption(
        c.md(
            f"status {study.status} · {study.algorithm} + {study.scheduler} · "
            f"{goal} · {len(frame):,} trials ("
            + ", ".join(f"{counts.get(s, 0):,} {s}" for s in q.TRIAL_STATES if counts.get(s, 0))
            + ")"
        )
    )
    if frame.empty:
        st.info("No trials yet. They appear here as the study runs.", icon=":material/info:")
        return
    # The chart first: on screen without scrolling, above the table's filters.
    charts_section(url, study, frame, fp)
    trial_table(study, frame)
    prefetch_plotly()


_PREFETCH_JS = """<script>
(() => {
  if (window.__tunerPlotly) return;
  window.__tunerPlotly = true;
  const index = document.querySelector('script[src*="/static/js/index."]');
  if (!index) return;
  const chunk = new URL(%s, index.src).href;
  const idle = window.requestIdleCallback || (f => setTimeout(f, 200));
  // Once the page's first chart is drawn, then when the browser is idle.
  const drawn = () => document.querySelector(
      '.js-plotly-plot .main-svg, [data-testid="stVegaLiteChart"] .role-mark');
  const wait = () => drawn() ? idle(() => import(chunk).catch(() => {}), {timeout: 3000})
                             : setTimeout(wait, 250);
  wait();
})();
</script>"""


@functools.cache
def _plotly_chunk() -> str | None:
    """The file name of Streamlit's Plotly component (its JavaScript chunk), if there is
    exactly one."""
    static = Path(st.__file__).parent / "static" / "static" / "js"
    found = sorted(static.glob("PlotlyChart.*.js"))
    return found[0].name if len(found) == 1 else None


def prefetch_plotly() -> None:
    """Load Streamlit's Plotly component in the browser once the page's first chart is
    drawn, when the browser is idle.

    The default chart is Vega-Lite, so a page load fetches no Plotly (4.7 MB of
    JavaScript) before it; without this, the first Plotly chart picked would wait for
    the browser to load it. The script is a constant (no user text in it); importing
    the chunk by its URL gives the module Streamlit imports, so it is evaluated once.
    """
    chunk = _plotly_chunk()
    if chunk is not None:
        st.html(_PREFETCH_JS % json.dumps(chunk), unsafe_allow_javascript=True)


TABLE_HEIGHT_MAX = 35 * 21 + 3
"""The trial table's most height in pixels (20 rows); more rows scroll inside it."""


def table_height(rows: int) -> int:
    """The trial table's height for ``rows`` rows: every row without scrolling, up to
    :data:`TABLE_HEIGHT_MAX` (Streamlit's rows are 35 px, its header too, plus a border)."""
    return min(35 * (rows + 1) + 3, TABLE_HEIGHT_MAX)


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
    picked = c.selectable_table(
        shown,
        key="trials_table",
        height=table_height(len(shown)),
        column_config={
            "started": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm:ss"),
            "finished": st.column_config.DatetimeColumn("finished", format="YYYY-MM-DD HH:mm:ss"),
        },
    )
    picked_numbers = [int(n) for n in picked["number"]]
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


def charts_section(url: str, study: c.StudyRecord, frame: pd.DataFrame, fp: tuple) -> None:
    """The chart picker and the one chart it names (none when the user unpicks it)."""
    st.subheader("Charts")
    offered: tuple[str, ...] = MO_CHARTS if q.objectives(study) else CHARTS
    if c.load_parents(url, study.name, fp):  # a Population Based Training study
        at = offered.index("Optimization history") + 1
        offered = (*offered[:at], POPULATION, *offered[at:])
    chart = st.segmented_control(
        "Chart (one at a time, drawn when picked)", offered, default=offered[0], key="chart"
    )
    if chart is None:
        st.info("Pick a chart above to draw it.", icon=":material/info:")
        return
    params = q.param_columns(frame)
    if chart in ("Pareto front", "Hypervolume"):
        pareto_chart(url, study, fp, chart)
    elif chart == "Optimization history":
        history_chart(url, study, frame, fp)
    elif chart == "Timeline":
        st.plotly_chart(timeline_figure(url, study.name, fp), key="timeline")
        st.caption(
            "One row a node (host, IP and Ray node id), each trial a bar from its start "
            "to its end, coloured by its state; the latest 2,000 trials."
        )
    elif chart == POPULATION:
        st.plotly_chart(population_figure(url, study.name, fp), key="population")
        st.caption(
            "Every trial's curve of the study metric by step (cut trials grey); a dashed "
            "line joins a trial's first point to its parent's value at the checkpoint it "
            "started from, so each line of descent reads as one curve. Hover a line for "
            "the trial and its parent."
        )
    elif chart in ("Learning curves", "Steps reached"):
        curves_chart(url, study, frame, fp, chart)
    elif not params:
        st.info("This study has no parameters.", icon=":material/info:")
    elif not ((frame["state"] == "completed") & frame["value"].notna()).any():
        st.info("No completed trial with a value yet.", icon=":material/info:")
    elif chart == "Parallel coordinates":
        brush = st.toggle(
            "Brushable axes (WebGL)", key="pc_webgl",
            help="Drag along an axis to keep the trials in a range. Needs WebGL, slow in "
            "browsers without a GPU.",
        )  # fmt: skip
        st.plotly_chart(parallel_figure(url, study.name, fp, brush), key="parallel")
    elif chart == "Importance":
        imp = c.load_importance(url, study.name, fp)
        if imp.empty:
            st.info("Importance needs two completed trials and a parameter that varies.")
            return
        st.plotly_chart(charts.importance_fig(imp), key="importance")
        st.caption(
            "Mean decrease in impurity of a random forest (Optuna's evaluator) "
            "over up to 1,000 completed trials; conditional parameters left out."
        )
    elif chart == "Slices":
        st.plotly_chart(slice_figure(url, study.name, fp), key="slice")
    else:
        contour_chart(url, study, params, fp)


def pareto_chart(url: str, study: c.StudyRecord, fp: tuple, chart: str) -> None:
    objectives = q.objectives(study)
    points = pareto_points(url, study.name, fp)
    if points.empty:
        st.info("No completed trial has reported every objective yet.", icon=":material/info:")
        return
    n_feasible = int(points["feasible"].sum())
    if n_feasible == 0:
        st.warning(
            f"No trial is feasible: none of the {len(points):,} completed trials meets "
            "every constraint, so the study has no Pareto front yet.",
            icon=":material/warning:",
        )
    if chart == "Pareto front":
        st.plotly_chart(charts.pareto_fig(points, objectives), key="pareto")
        infeasible = len(points) - n_feasible
        st.caption(
            "The front: completed, feasible trials that no other feasible trial beats on "
            "every objective."
            + (
                f" {infeasible:,} infeasible trials (grey crosses) break a constraint."
                if infeasible
                else ""
            )
        )
        return
    hv, ref = hypervolume_curve(url, study.name, fp)
    if hv.empty:
        return
    st.plotly_chart(charts.hypervolume_fig(hv), key="hypervolume")
    shown = ", ".join(f"{m} {v:.4g}" for (m, _), v in zip(objectives, ref, strict=True))
    st.caption(
        f"The volume of objective space the feasible front dominates, up to the "
        f"reference point ({shown}: each objective's worst feasible value plus a tenth of "
        "its range). It grows each time a trial extends the front."
    )


def history_chart(url: str, study: c.StudyRecord, frame: pd.DataFrame, fp: tuple) -> None:
    cols = st.columns([3, 2])
    over = cols[0].radio("Over", ["trial number", "wall-clock time"], horizontal=True,
                         key="hist_x")  # fmt: skip
    n_pruned = int((frame["state"] == "pruned").sum())
    pruned = n_pruned > 0 and cols[1].toggle(
        f"Pruned trials ({n_pruned:,})", value=True, key="hist_pruned",
        help="Trials early stopping cut, at their last reported value (red crosses). "
        "The best-so-far line counts completed trials only.",
    )  # fmt: skip
    spec, shown, total = history_spec(
        url, study.name, fp, "number" if over == "trial number" else "elapsed_s", pruned
    )
    if spec is None:
        st.info("No completed or pruned trial with a value yet.", icon=":material/info:")
        return
    st.vega_lite_chart(spec=spec, width="stretch", key="history")
    if shown < total:
        st.caption(
            f"Downsampled to {shown:,} of {total:,} points (each bin's lowest and highest); "
            "the best-so-far line is exact."
        )


def contour_chart(url: str, study: c.StudyRecord, params: list[str], fp: tuple) -> None:
    if len(params) < 2:
        st.info("The contour needs two parameters; this study has one.")
        return
    names = {col: col.split(".", 1)[1] for col in params}
    # Default to the two most important parameters.
    imp = c.load_importance(url, study.name, fp)
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
        return
    st.plotly_chart(contour_figure(url, study.name, fp, x, y), key="contour")


def curves_chart(
    url: str, study: c.StudyRecord, frame: pd.DataFrame, fp: tuple, chart: str
) -> None:
    if chart == "Steps reached":
        st.plotly_chart(steps_figure(url, study.name, fp), key="reached")
        st.caption(
            "How many trials of each final state reached each step, over all trials: "
            "where early stopping cut them."
        )
        return
    st.plotly_chart(curves_figure(url, study.name, fp), key="curves")
    st.caption(
        "The intermediate metric by step for the 10 best trials and a sample of the "
        "others; a red cross marks where a pruned trial was stopped."
    )


# Figures are cached by the study's fingerprint (and the chart's options): a running
# study's page, refreshed every few seconds, rebuilds a figure only when the study
# changed, and going back to a chart already drawn costs no query.


@st.cache_data(max_entries=32, show_spinner=False)
def timeline_figure(url: str, name: str, fp: tuple) -> Any:
    """Trials as bars on one row per node (running ones drawn up to now)."""
    return charts.timeline_fig(c.load_trials(url, name, fp), pd.Timestamp.now(tz="UTC"))


@st.cache_data(max_entries=32, show_spinner=False)
def history_spec(
    url: str, name: str, fp: tuple, x: str, pruned: bool = True
) -> tuple[dict[str, Any] | None, int, int]:
    """The history's Vega-Lite spec (None without a trial to mark), how many trial
    markers it has, and how many trials it stands for (before downsampling)."""
    study = c.load_study(url, name)
    frame = c.load_trials(url, name, fp)
    points, best = q.history(frame, study.mode, HISTORY_POINTS, metric=study.metric,
                             pruned=pruned)  # fmt: skip
    if points.empty:
        return None, 0, 0
    total, _ = q.history(frame, study.mode, len(frame) + 1, metric=study.metric, pruned=pruned)
    return charts.history_spec(points, best, study.metric, x), len(points), len(total)


@st.cache_data(max_entries=16, show_spinner=False)
def pareto_points(url: str, name: str, fp: tuple) -> pd.DataFrame:
    """The completed trials in objective space, with feasible and pareto flags."""
    return q.pareto_frame(c._storage(url), c.load_study(url, name))


@st.cache_data(max_entries=16, show_spinner=False)
def hypervolume_curve(url: str, name: str, fp: tuple) -> tuple[pd.DataFrame, list[float]]:
    study = c.load_study(url, name)
    return q.pareto_hypervolume(pareto_points(url, name, fp), q.objectives(study))


@st.cache_data(max_entries=16, show_spinner=False)
def parallel_figure(url: str, name: str, fp: tuple, webgl: bool) -> Any:
    study = c.load_study(url, name)
    frame = c.load_trials(url, name, fp)
    sample = q.parallel_frame(frame, study.mode)
    draw = charts.parallel_fig if webgl else charts.parallel_svg_fig
    return draw(sample, q.param_columns(frame), study.metric, q.log_params(study))


@st.cache_data(max_entries=16, show_spinner=False)
def slice_figure(url: str, name: str, fp: tuple) -> Any:
    study = c.load_study(url, name)
    frame = c.load_trials(url, name, fp)
    sample = q.parallel_frame(frame, study.mode)
    return charts.slice_fig(sample, q.param_columns(frame), study.metric, q.log_params(study))


@st.cache_data(max_entries=32, show_spinner=False)
def contour_figure(url: str, name: str, fp: tuple, x: str, y: str) -> Any:
    study = c.load_study(url, name)
    log = q.log_params(study)
    xs, ys, z, pts = c.load_contour(url, name, fp, x, y, tuple(sorted(log)))
    return charts.contour_fig(xs, ys, z, pts, x, y, study.metric, log)


@st.cache_data(max_entries=16, show_spinner=False)
def curves_figure(url: str, name: str, fp: tuple) -> Any:
    study = c.load_study(url, name)
    frame = c.load_trials(url, name, fp)
    numbers = q.curve_sample(frame, study.mode)
    curves = c.load_curves(url, study.id, study.metric, tuple(numbers), fp)
    done = frame[(frame["state"] == "completed") & frame["value"].notna()]
    best = done.nsmallest(10, "value") if study.mode == "min" else done.nlargest(10, "value")
    states = dict(zip(frame["number"], frame["state"], strict=True))
    return charts.curves_fig(curves, states, best["number"].tolist(), study.metric)


@st.cache_data(max_entries=16, show_spinner=False)
def population_figure(url: str, name: str, fp: tuple) -> Any:
    study = c.load_study(url, name)
    frame = c.load_trials(url, name, fp)
    parents = c.load_parents(url, name, fp)
    numbers = q.lineage_sample(frame, parents, study.mode)
    curves = c.load_curves(url, study.id, study.metric, tuple(numbers), fp)
    states = dict(zip(frame["number"], frame["state"], strict=True))
    return charts.population_fig(curves, q.lineage(curves, parents), states, parents, study.metric)


@st.cache_data(max_entries=16, show_spinner=False)
def steps_figure(url: str, name: str, fp: tuple) -> Any:
    return charts.steps_reached_fig(q.steps_reached(c.load_trials(url, name, fp)))
