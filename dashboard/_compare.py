"""Compare trials (two to five of one study) and compare studies (best so far)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from . import _common as c
from . import charts
from . import frames as q
from ._study import pareto_points


def render_trials() -> None:
    url, study, live = c.study_page()
    st.title("Compare trials")
    c.heading(study.name, 3)
    default = st.query_params.get("trials") or st.session_state.get("_cmp_trials", "")
    if not default:
        frame = c.load_trials(url, study.name, c.load_fingerprint(url, study.id))
        done = frame[(frame["state"] == "completed") & frame["value"].notna()]
        top = done.nsmallest(2, "value") if study.mode == "min" else done.nlargest(2, "value")
        default = ", ".join(str(n) for n in top["number"])
    raw = st.text_input(
        "Trial numbers (two to five)",
        value=default,
        key="cmp_trials",
        help="e.g. 3, 17, 42; or select rows in the Study page's table",
    )
    try:
        numbers = c.parse_numbers(raw)
    except ValueError as e:
        st.warning(c.md(e))
        return
    st.session_state["_cmp_trials"] = raw
    if not 2 <= len(numbers) <= 5:
        st.info("Give two to five trial numbers.", icon=":material/info:")
        return

    @st.fragment(run_every=c.REFRESH_S if live else None)
    def body() -> None:
        show_trials(url, study.name, numbers)

    body()


def show_trials(url: str, name: str, numbers: list[int]) -> None:
    study = c.load_study(url, name)
    fp = c.load_fingerprint(url, study.id)
    frame = c.load_trials(url, name, fp)
    missing = [n for n in numbers if n not in set(frame["number"])]
    if missing:
        st.warning(f"No trial {', '.join(map(str, missing))} in this study.")
        numbers = [n for n in numbers if n not in missing]
    if not numbers:
        return
    table = q.compare_params(frame, numbers)
    st.subheader("Parameters and final metrics")
    st.caption(
        "Rows where the trials differ are marked; an absent parameter (None) was "
        "inactive in that trial."
    )
    shown = table.copy()
    for col in [col for col in shown if col.startswith("#")]:
        shown[col] = shown[col].map(c.cell).astype(object)
    styled = shown.style.apply(
        lambda row: ["background-color: #fff3cd" if row["differs"] else "" for _ in row], axis=1
    )
    st.dataframe(styled, hide_index=True, key="cmp_table")
    st.subheader("Learning curves")
    curves = c.load_curves(url, study.id, study.metric, tuple(numbers), fp)
    if curves.empty:
        st.info("These trials have no intermediate results.")
    else:
        st.plotly_chart(charts.compare_curves_fig(curves, study.metric), key="cmp_curves")
    links = st.columns(len(numbers))
    for col, n in zip(links, numbers, strict=True):
        with col:
            c.link("trial", label=f"Trial {n}", query_params={"study": name, "trial": str(n)})


def render_studies() -> None:
    url = c.storage_url()
    studies = c.studies_or_stop(url)
    st.title("Compare studies")
    names = studies["name"].tolist()
    wanted = [n for n in st.query_params.get_all("studies") if n in names]
    if not wanted:
        wanted = names[-3:]
    picked = st.multiselect("Studies", names, default=wanted, key="cmp_studies")
    if len(picked) < 1:
        st.info("Pick the studies to compare.", icon=":material/info:")
        return
    metrics = studies.set_index("name").loc[picked, "metric"].unique()
    if len(metrics) > 1:
        st.warning(
            "These studies optimise different metrics ("
            + ", ".join(c.md(m) for m in metrics)
            + "); their values are not comparable."
        )
    live = bool((studies.set_index("name").loc[picked, "status"] == "running").any())

    @st.fragment(run_every=c.REFRESH_S if live else None)
    def body() -> None:
        show_studies(url, picked)

    body()


def show_fronts(url: str, names: list[str]) -> bool:
    """The studies' Pareto fronts on one chart, where every one has several objectives
    and they share their first two (by metric and mode). Whether it drew them."""
    studies = [c.load_study(url, name) for name in names]
    objectives = [q.objectives(s) for s in studies]
    if not all(objectives) or len({tuple(o[:2]) for o in objectives}) != 1:
        return False
    fronts = {s.name: pareto_points(url, s.name, c.load_fingerprint(url, s.id)) for s in studies}
    st.plotly_chart(charts.compare_fronts_fig(fronts, objectives[0]), key="cmp_fronts")
    st.caption(
        "Each study's front over its first two objectives: the completed, feasible "
        "trials that no other trial of the same study beats on both."
    )
    return True


def show_studies(url: str, names: list[str]) -> None:
    if show_fronts(url, names):
        return
    curves = []
    bests = []
    for name in names:
        study = c.load_study(url, name)
        fp = c.load_fingerprint(url, study.id)
        curves.append(c.load_best_curve(url, name, fp))
        best = c._storage(url).best_trial(study.id)
        row: dict[str, Any] = {
            "study": name,
            "algorithm": study.algorithm,
            "scheduler": study.scheduler,
            "metric": study.metric,
            "mode": study.mode,
        }
        if best is not None:
            row.update(
                {
                    "best trial": best.number,
                    "value": best.value,
                    "node": best.node,
                    "duration_s": best.duration_s,
                }
            )
            row.update({f"params.{k}": v for k, v in best.params.items()})
        bests.append(row)
    all_curves = pd.concat(curves, ignore_index=True)
    x = st.radio("Over", ["trial number", "time"], horizontal=True, key="cmp_x")
    st.plotly_chart(
        charts.compare_studies_fig(all_curves, "number" if x == "trial number" else "elapsed_s"),
        key="cmp_studies_chart",
    )
    st.subheader("Best trials side by side")
    table = pd.DataFrame(bests).set_index("study").T.reset_index(names="")
    shown = table.map(lambda v: c.cell(v) or "(absent)")
    st.dataframe(shown, hide_index=True, key="cmp_best", height=35 * len(shown) + 40)
