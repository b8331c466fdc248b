"""tuner's dashboard: a Streamlit app that reads a study database and never writes it.

``tuner dashboard`` runs ``tuner/dashboard/app.py`` with Streamlit. The app's pages are in
``tuner/dashboard/_*.py``; what they show comes from :mod:`tuner.dashboard.queries` (pure
functions: SQL aggregates and downsampling into pandas frames) and
:mod:`tuner.dashboard.charts` (Plotly figures from those frames), which the tests exercise
without a browser. Nothing here imports Streamlit at import time except the pages.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["APP_PATH"]

APP_PATH = Path(__file__).resolve().parent / "app.py"
"""The Streamlit script that ``tuner dashboard`` runs."""
