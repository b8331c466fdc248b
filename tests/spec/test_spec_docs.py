"""docs/spec.md is the spec's reference: generated from the models, never out of date."""

from __future__ import annotations

from pathlib import Path

import yaml

from tuner.spec import load_spec
from tuner.spec._docs import render, sections

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "spec.md"


def test_the_reference_is_what_the_models_generate() -> None:
    assert REFERENCE.read_text() == render(), (
        "docs/spec.md is out of date: run python -m tuner.spec._docs docs/spec.md"
    )


def test_every_key_of_every_block_is_described() -> None:
    missing = [
        f"{path or 'top level'}.{name}"
        for path, model in sections()
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert missing == [], (
        f"keys without a description (a string literal under the field): {missing}"
    )


def _keys(data: object, path: str = "") -> set[str]:
    """Every key path of a spec, with search-space names folded to NAME."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            here = f"{path}.{key}" if path else str(key)
            if path == "search_space":
                here = "search_space.NAME"
            elif path == "trainer.params" or path.endswith(".NAME.when"):
                continue  # free-form: xgboost's params, a condition's parameter names
            found.add(here)
            found |= _keys(value, here)
    return found


def test_every_key_the_examples_use_is_in_the_reference() -> None:
    reference = REFERENCE.read_text()
    documented = set()
    for path, model in sections():
        prefix = path.split(" ")[0]
        documented.add(prefix)
        for name in model.model_fields:
            documented.add(f"{prefix}.{name}" if prefix else name)
    used: set[str] = set()
    for spec_file in sorted((ROOT / "examples").glob("*.yaml")):
        load_spec(spec_file)  # each example is a valid spec
        used |= _keys(yaml.safe_load(spec_file.read_text()))
    assert used - documented == set()
    assert (
        "## `trainer.dataset`" in reference and "## `search_space.NAME` (type: float)" in reference
    )
