"""tuner's dashboard: a Streamlit app that reads a study database and never writes it.

The source is the repository's ``dashboard/`` folder, installed as ``tuner.dashboard``
(pyproject.toml maps it). ``tuner dashboard`` runs its ``app.py`` with Streamlit. The
app's pages are in ``_*.py``; what they show comes from :mod:`tuner.dashboard.frames`
(pure functions: the storage's read model and downsampling into pandas frames) and
:mod:`tuner.dashboard.charts` (Plotly figures from those frames), which the tests exercise
without a browser. The modules import each other relatively. Nothing here imports
Streamlit at import time except the pages.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["APP_PATH"]

APP_PATH = Path(__file__).resolve().parent / "app.py"
"""The Streamlit script that ``tuner dashboard`` runs."""
