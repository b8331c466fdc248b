"""Where every benchmark writes its table."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any


def append_section(out: Path | None, title: str, table: str) -> None:
    """Append a `### title` section holding `table` to `out` (nothing when out is None)."""
    if out is None:
        return
    with out.open("a", encoding="utf-8") as f:
        f.write(f"\n### {title}\n\n{table}\n")


def publish(out: Path | None, title: str, lines: list[str]) -> None:
    """Print a bench's table and append it to `out` as section `title`."""
    table = "\n".join(lines)
    print(table)
    append_section(out, title, table)


def timed_study(spec: dict[str, Any]) -> tuple[float, list[Any]]:
    """Run `spec` through tuner into a throwaway SQLite file: (wall seconds, trials)."""
    import tuner

    with tempfile.TemporaryDirectory() as d:
        study = tuner.create_study(spec, storage=f"sqlite:///{d}/bench.db")
        started = time.perf_counter()
        study.run(progress=False)
        seconds = time.perf_counter() - started
        return seconds, study.trials()
