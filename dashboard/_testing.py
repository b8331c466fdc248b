"""What the browser tests and ``bench.dashboard`` share: ``tuner dashboard`` started as a
subprocess, and waits for the charts (Plotly's and Vega-Lite's) a page draws in a
Playwright page.

Nothing here imports Streamlit or Playwright; ``page`` arguments are Playwright pages.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_CHARTS_JS = """const charts = () => [
    ...[...document.querySelectorAll('.js-plotly-plot')].map(p => ({
        drawn: !!p.querySelector('.main-svg'),
        titles: [...p.querySelectorAll('.gtitle')].map(g => g.textContent)})),
    ...[...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].map(v => ({
        drawn: !!v.querySelector('.marks .role-mark path'),
        titles: [...v.querySelectorAll('.role-title-text')].map(g => g.textContent)})),
];"""
"""The page's charts: Plotly's (drawn once it has its SVG) and Vega-Lite's (drawn once
its SVG has a mark), each with its titles."""

DRAWN_JS = f"""n => {{ {_CHARTS_JS}
    const all = charts();
    return all.length >= n && all.every(c => c.drawn);
}}"""
"""True once at least ``n`` charts are in the page and each is drawn."""

ONLY_CHART_JS = f"""t => {{ {_CHARTS_JS}
    const all = charts();
    return all.length === 1 && all[0].drawn && all[0].titles.some(g => g.includes(t));
}}"""
"""True once the page's only chart is drawn and has a title containing ``t`` (the chart
it replaced, kept while Streamlit reruns the page, is gone)."""

CHART_TITLES = {
    "Optimization history": "Optimization history",
    "Parallel coordinates": "Parallel coordinates",
    "Importance": "Parameter importance",
    "Slices": "Slice plots",
    "Contour": "Contour of",
    "Learning curves": "Learning curves",
    "Steps reached": "Trials still going",
    "Timeline": "Trials by node",
}
"""The study page's chart picker: each label -> the start of that chart's title. The
first is drawn by default; the others when picked."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_dashboard(
    url: str,
    port: int | None = None,
    log: Path | None = None,
    timeout_s: float = 60,
    *,
    tuner: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[str]:
    """``tuner dashboard --storage URL --port PORT`` as a subprocess, with this
    process's environment (so ``PYTHONPATH`` picks the same ``tuner``); yields its base
    URL once it listens, and stops it on exit.

    Args:
        url: the storage URL.
        port: the port; a free one when None.
        log: where the server's output goes (discarded when None).
        timeout_s: how long to wait for the server to listen.
        tuner: the `tuner` script to run (default: the one beside this Python).
        env: the server's environment (default: this process's).
        cwd: the server's folder (default: this process's).

    Raises:
        RuntimeError: the server exited, or did not listen within ``timeout_s``.
    """
    port = port or free_port()
    tuner = tuner or Path(sys.executable).with_name("tuner")
    with open(log or os.devnull, "w") as out:
        proc = subprocess.Popen(
            [str(tuner), "dashboard", "--storage", url, "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
            env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                output = log.read_text() if log else ""
                raise RuntimeError(f"tuner dashboard exited with {proc.returncode}: {output}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"tuner dashboard did not listen within {timeout_s:.0f} s"
                    ) from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_until_drawn(page: Any, charts: int, timeout_ms: int = 120_000) -> None:
    """Wait until ``charts`` charts (Plotly's or Vega-Lite's) are in the page, each
    drawn."""
    page.wait_for_function(DRAWN_JS, arg=charts, timeout=timeout_ms, polling=50)


def open_chart(page: Any, label: str, title: str, timeout_ms: int = 120_000) -> None:
    """Click ``label`` in the study page's chart picker and wait until the chart titled
    ``title`` is drawn, in place of the one shown before."""
    picker = page.locator('[data-testid="stButtonGroup"]')
    picker.get_by_role("radio", name=label, exact=True).click()
    page.wait_for_function(ONLY_CHART_JS, arg=title, timeout=timeout_ms, polling=50)
