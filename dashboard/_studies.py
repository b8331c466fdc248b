"""The Studies page: every study in the storage; pick one or several."""

from __future__ import annotations

import streamlit as st

from . import _common as c
from .frames import TRIAL_STATES

FIRST_COLUMNS = ("name", "status", "best", "trials", "duration_s", "metric", "mode")
"""The Studies table's first columns: what a comparison of studies starts with."""


def render() -> None:
    url = c.storage_url()
    st.title("Studies")
    st.caption(f"Database (read-only): {c.md(c.storage_or_stop(url).url)}")
    studies = c.studies_or_stop(url)
    live = bool((studies["status"] == "running").any() or (studies["running"] > 0).any())

    @st.fragment(run_every=c.REFRESH_S if live else None)
    def table() -> None:
        frame = c.load_studies(url)
        # What people compare first, on screen at a laptop's width; the rest after.
        first = [col for col in FIRST_COLUMNS if col in frame]
        shown = frame[first + [col for col in frame if col not in first and col != "id"]]
        picked = c.selectable_table(
            shown,
            key="studies_table",
            column_config={
                "best": st.column_config.NumberColumn("best", format="%.6g"),
                "started": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm"),
                "duration_s": st.column_config.NumberColumn("duration (s)", format="%.0f"),
                **{s: st.column_config.NumberColumn(s, width="small") for s in TRIAL_STATES},
            },
        )
        names = picked["name"].tolist()
        st.caption(
            "Select one study to open it, or several to compare them. "
            + ("Refreshing every few seconds while a study runs." if live else "")
        )
        cols = st.columns(3)
        with cols[0]:
            if len(names) == 1:
                c.link(
                    "study",
                    label="Open the selected study",
                    icon=":material/insights:",
                    query_params={"study": names[0]},
                )
            else:
                st.button("Open the selected study", disabled=True, key="open_study_disabled")
        with cols[1]:
            if len(names) >= 2:
                c.link(
                    "compare_studies",
                    label="Compare the selected studies",
                    icon=":material/stacked_line_chart:",
                    query_params={"studies": names},
                )
            else:
                st.button("Compare the selected studies", disabled=True, key="cmp_disabled")

    table()
