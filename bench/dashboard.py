"""How fast the dashboard's study page draws, at 1k, 10k and 100k trials.

For each size, a SQLite database is seeded in bulk (one study, 100 intermediate results
a trial; pruned trials cut short), ``tuner dashboard`` is started on it as a subprocess,
and Debian's Chromium (driven by Playwright) opens the study page. The time measured
is from navigation until the charts the page shows by default are drawn (the
optimization history: a Vega-Lite chart whose SVG has its marks; until 2026-11-28 a
Plotly chart, ``.js-plotly-plot`` with its SVG); then, in the same page, the time from a click on each other chart in the page's chart picker until that
chart is drawn, so the cost of the charts drawn on demand is measured too. The first
load is cold (a fresh server: nothing cached, heavy modules imported; a fresh browser
profile: the JavaScript downloaded); then best of 3 reloads in the same browser
profile, as a user who opens the page again.

    python -m bench.dashboard --sizes 1000 10000 100000 --out bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench._results import append_section
from tuner.dashboard._testing import CHART_TITLES, open_chart, running_dashboard, wait_until_drawn

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SPEC = {
    "name": "bench",
    "metric": "loss",
    "mode": "min",
    "search_space": {
        "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
        "depth": {"type": "int", "low": 2, "high": 10},
        "booster": {"type": "categorical", "choices": ["gbtree", "dart"]},
        "rate_drop": {"type": "float", "low": 0.0, "high": 0.3, "when": {"booster": "dart"}},
    },
}


def seed(path: Path, n_trials: int, n_steps: int = 100, name: str = "bench", seed_: int = 0) -> int:
    """Write a study of ``n_trials`` trials into the SQLite file ``path`` in bulk,
    through :meth:`Storage.import_trials`.

    80% of trials complete with ``n_steps`` results, 15% are pruned after 10 to 90
    steps, 5% fail. Returns the number of intermediate values written.
    """
    from tuner.storage import Storage, StudyState, TrialImport, TrialState

    rng = random.Random(seed_)
    start = datetime.now(UTC) - timedelta(seconds=n_trials * 2)
    written = 0

    def trials() -> Iterator[TrialImport]:
        nonlocal written
        for number in range(n_trials):
            lr = math.exp(rng.uniform(math.log(1e-4), math.log(1.0)))
            depth = rng.randint(2, 10)
            booster = rng.choice(["gbtree", "dart"])
            final = (math.log10(lr) + 2) ** 2 * 0.1 + 0.02 * abs(depth - 6) + rng.gauss(0, 0.02)
            final += 0.05 if booster == "dart" else 0.0
            u = rng.random()
            state = (
                TrialState.COMPLETED if u < 0.80 else TrialState.PRUNED if u < 0.95
                else TrialState.FAILED
            )  # fmt: skip
            steps = n_steps if state is TrialState.COMPLETED else rng.randint(10, 90)
            curve = [final + 1.0 / (1 + 0.15 * s) for s in range(1, steps + 1)]
            params: dict[str, object] = {"booster": booster, "depth": depth, "lr": lr}
            if booster == "dart":
                params["rate_drop"] = rng.uniform(0, 0.3)
            started = start + timedelta(seconds=number * 2)
            duration = steps * 0.02
            written += len(curve)
            yield TrialImport(
                number=number,
                params=params,
                state=state,
                started_at=started,
                finished_at=started + timedelta(seconds=duration),
                duration_s=duration,
                metrics={"loss": curve[-1], "accuracy": 1 - curve[-1] / 3},
                value=curve[-1] if state is TrialState.COMPLETED else None,
                curves={"loss": list(enumerate(curve, start=1))},
                error="Traceback: ValueError: diverged" if state is TrialState.FAILED else None,
                node=f"node-{number % 4}",
            )

    with Storage(f"sqlite:///{path}") as storage:
        study = storage.create_study(
            name, spec=SPEC, metric="loss", mode="min", algorithm="tpe",
            scheduler="asha", num_trials=n_trials,
        )  # fmt: skip
        storage.import_trials(study.id, trials(), batch_size=5000)
        storage.set_study_status(study.id, StudyState.COMPLETED)
    return written


def count_values(path: Path) -> int:
    """How many intermediate values the bench study in ``path`` has."""
    from tuner.storage import Storage

    with Storage(f"sqlite:///{path}", read_only=True) as storage:
        study = storage.get_study("bench")
        return sum(t.steps for t in storage.get_trials(study.id))


CHARTS_SHOWN = 1
"""Charts the study page draws by default: the optimization history."""
ON_DEMAND = dict(list(CHART_TITLES.items())[CHARTS_SHOWN:])
"""The study page's other charts: the picker's label -> the drawn chart's title."""


def measure(base: str, study: str, runs: int = 3) -> tuple[list[float], list[dict[str, float]]]:
    """Seconds from ``page.goto`` of the study page until the charts it shows by default
    are drawn, for a cold first load and ``runs`` reloads; and, in each of those page
    loads, seconds from a click on each on-demand chart in the picker until it is drawn
    (the first load's clicks build the figures; later ones find them cached)."""
    from urllib.parse import quote

    from playwright.sync_api import sync_playwright

    times = []
    clicks = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            # One browser profile, as a user has: the first visit downloads Streamlit's
            # and Plotly's JavaScript (cold), later visits load it from the cache.
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            for _ in range(runs + 1):
                page = context.new_page()
                t0 = time.perf_counter()
                page.goto(f"{base}/study?study={quote(study)}")
                wait_until_drawn(page, CHARTS_SHOWN)
                times.append(time.perf_counter() - t0)
                drawn = {}
                for label, title in ON_DEMAND.items():
                    t0 = time.perf_counter()
                    open_chart(page, label, title)
                    drawn[label] = time.perf_counter() - t0
                clicks.append(drawn)
                page.close()
            context.close()
        finally:
            browser.close()
    return times, clicks


def floor(base: str, study: str, runs: int = 3) -> float:
    """Best time to the Studies page's table (Streamlit's own start-up, no chart)."""
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        for _ in range(runs + 1):
            page = context.new_page()
            t0 = time.perf_counter()
            page.goto(f"{base}/")
            page.locator("td", has_text=study).first.wait_for(state="attached", timeout=60_000)
            times.append(time.perf_counter() - t0)
            page.close()
        browser.close()
    return min(times[1:])


def server_time(url: str, study: str) -> tuple[float, float]:
    """Seconds the study page's script takes in-process: cold (first run in a fresh
    process: nothing cached) and warm (a reload: cached frames)."""
    code = f"""
import time
from streamlit.testing.v1 import AppTest
def page(url, name):
    from tuner.dashboard import _study
    _study.show_study(url, name)
at = AppTest.from_function(page, args=({url!r}, {study!r}), default_timeout=300)
times = []
for _ in range(3):
    t0 = time.perf_counter(); at.run(); times.append(time.perf_counter() - t0)
    assert not at.exception, at.exception
print(times[0], min(times[1:]))
"""
    import tempfile

    # AppTest.from_function reads the function's source: it must live in a file.
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
    try:
        out = subprocess.run(
            [sys.executable, f.name], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout.split()
    finally:
        os.unlink(f.name)
    return float(out[-2]), float(out[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path("/tmp/tuner-dashboard-bench"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        path = args.data / f"bench-{n}-{args.steps}.db"
        if not path.exists():
            t0 = time.perf_counter()
            values = seed(path, n, args.steps)
            print(f"seeded {n} trials, {values} values in {time.perf_counter() - t0:.0f} s")
        values = count_values(path)
        load = os.getloadavg()[0]
        log = Path(os.environ["DASH_LOG"]) if os.environ.get("DASH_LOG") else None
        with running_dashboard(f"sqlite:///{path}", log=log) as base:
            times, clicks = measure(base, "bench", args.runs)
            bare = floor(base, "bench", args.runs)
        cold, warm = server_time(f"sqlite:///{path}", "bench")
        load = max(load, os.getloadavg()[0])
        print(
            f"{n} trials: {', '.join(f'{t:.2f}' for t in times)} s; studies page {bare:.2f} s; "
            f"script {cold:.2f}/{warm:.2f} s (load {load:.2f})"
        )
        for i, drawn in enumerate(clicks):
            print(f"  clicks, load {i}: " + ", ".join(f"{k} {v:.2f}" for k, v in drawn.items()))
        rows.append((n, values, path.stat().st_size / 2**20, times, clicks, bare, cold, warm, load))
    table = [
        "| trials | intermediate values | db MiB | first (cold) load s | best of "
        f"{args.runs} reloads s | a chart after a click, first load: median / slowest s "
        f"| after a click, best of {args.runs} reloads: median / slowest s "
        "| Studies page (no chart) s | page script cold / warm s | load avg (1 min, max) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, values, mib, times, clicks, bare, cold, warm, load in rows:
        best = min(times[1:])
        first = _spread(clicks[0])
        again = _spread({k: min(c[k] for c in clicks[1:]) for k in ON_DEMAND})
        table.append(
            f"| {n:,} | {values:,} | {mib:.0f} | {times[0]:.2f} | **{best:.2f}** | {first} "
            f"| {again} | {bare:.2f} | {cold:.2f} / {warm:.2f} | {load:.2f} |"
        )
    print("\n".join(table))
    append_section(
        args.out,
        f"Dashboard study page, time to charts drawn ({datetime.now(UTC):%Y-%m-%d})",
        f"`python -m bench.dashboard --sizes {' '.join(map(str, args.sizes))} "
        f"--runs {args.runs}`: SQLite, one study, {args.steps} results a trial (pruned "
        "trials fewer), Debian's Chromium (headless, software WebGL) via Playwright; time "
        "from `page.goto` of the study page until the chart it shows by default "
        "(optimization history) is drawn, below the trial table. Then, in the same page, "
        f"each of the {len(ON_DEMAND)} other charts is picked in turn: the time from the "
        "click until it is drawn (median and slowest of them). The first load is a fresh "
        "server (its clicks build the figures) and browser profile; reloads reuse both. "
        "For scale: the Studies page (a table, no chart) and the study page's Python "
        "script alone (Streamlit AppTest, in-process).\n\n" + "\n".join(table),
    )


def _spread(drawn: dict[str, float]) -> str:
    """``median / slowest (its name)`` of click-to-drawn times."""
    ordered = sorted(drawn.values())
    median = ordered[len(ordered) // 2]
    slowest = max(drawn, key=lambda k: drawn[k])
    return f"{median:.2f} / {drawn[slowest]:.2f} ({slowest.lower()})"


if __name__ == "__main__":
    main()
