"""The built-in search spaces: one YAML file per model family, ``search_space: NAME``.

This folder sits at the repository root and is installed as ``tuner.search_spaces``
(pyproject.toml maps it), so a source checkout, an editable install and a wheel all find
the files beside this module.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DIRECTORY"]

DIRECTORY = Path(__file__).resolve().parent
"""The folder holding the ``NAME.yaml`` files."""
