"""tuner's dashboard, the Streamlit script that ``tuner dashboard`` runs.

    streamlit run dashboard/app.py -- --storage sqlite:///tuner.db

(with tuner installed: this folder is the package ``tuner.dashboard``, see pyproject.toml)

It opens the storage read-only (SQLite ``mode=ro``; PostgreSQL read-only
transactions) and never writes it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from tuner.dashboard import _common, _compare, _studies, _study, _trial

# The tab's icon from a file beside this one (sent inline): a ":material/..." page icon
# is an image that the browser fetches from fonts.gstatic.com, and the dashboard makes
# no request to any host but its own (tests/dashboard/test_browser.py checks).
st.set_page_config(
    page_title="tuner dashboard", page_icon=str(Path(__file__).with_name("icon.svg")),
    layout="wide",
)  # fmt: skip

pages = {
    "studies": st.Page(_studies.render, title="Studies", url_path="studies", default=True,
                       icon=":material/list:"),
    "study": st.Page(_study.render, title="Study", url_path="study", icon=":material/insights:"),
    "compare_trials": st.Page(_compare.render_trials, title="Compare trials",
                              url_path="compare-trials", icon=":material/compare_arrows:"),
    "compare_studies": st.Page(_compare.render_studies, title="Compare studies",
                               url_path="compare-studies", icon=":material/stacked_line_chart:"),
    "trial": st.Page(_trial.render, title="Trial", url_path="trial", icon=":material/science:"),
}  # fmt: skip
_common.PAGES.update(pages)
st.navigation(list(pages.values())).run()
