"""Where every benchmark writes its table."""

from __future__ import annotations

from pathlib import Path


def append_section(out: Path | None, title: str, table: str) -> None:
    """Append a `### title` section holding `table` to `out` (nothing when out is None)."""
    if out is None:
        return
    with out.open("a", encoding="utf-8") as f:
        f.write(f"\n### {title}\n\n{table}\n")
