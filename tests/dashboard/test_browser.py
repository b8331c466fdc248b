"""The dashboard in a real browser: `tuner dashboard` as a subprocess, Debian's Chromium
driven by Playwright. Screenshots of each view go to test-artifacts/dashboard/.

Run only these with ``pytest -m browser``. Without /usr/bin/chromium they are skipped,
except where CI=true: there they fail (``make test`` installs Chromium).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests._optional import missing, require
from tests.dashboard.conftest import (
    ARTIFACTS,
    HOSTILE_ERROR,
    HOSTILE_STUDY,
    seed_mo_study,
    seed_study,
)
from tuner.dashboard._testing import CHART_TITLES, open_chart, running_dashboard, wait_until_drawn
from tuner.storage import Storage, TrialFinished, TrialResult, TrialStarted

pytestmark = pytest.mark.browser
expect = require("playwright.sync_api").expect  # retrying assertions

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 60_000
PLOTLY_LOADED_JS = """() => performance.getEntriesByType('resource')
    .some(e => e.name.includes('/PlotlyChart.') && e.responseEnd > 0)"""
ON_DEMAND = dict(list(CHART_TITLES.items())[1:])
"""The study page's charts drawn when picked: the picker's label -> the chart's title."""


@pytest.fixture(scope="module")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        missing(f"{CHROMIUM} is missing: apt-get install -y chromium (make test does)")
    return CHROMIUM


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'dash.db'}"
    with Storage(url) as storage:
        seed_study(storage, "tpe-study", algorithm="tpe", seed=1)
        seed_study(storage, "random-study", algorithm="random", seed=3)
        seed_study(storage, "tpe-twin", algorithm="tpe", seed=1)  # tpe-study's very curve
        seed_study(storage, HOSTILE_STUDY, n_trials=8, seed=4,
                   extra_param="'; drop table trials; --", error=HOSTILE_ERROR)  # fmt: skip
        seed_study(storage, "live-study", n_trials=5, status="running", seed=5)
        seed_mo_study(storage, "mo-study", seed=6)
        seed_mo_study(storage, "mo-study-2", seed=7)
    return url


@pytest.fixture(scope="module")
def dashboard(db_url: str, chromium: str) -> Iterator[str]:
    """`tuner dashboard --storage URL --port P` running; yields its base URL."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_dashboard(db_url, log=ARTIFACTS / "dashboard-server.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield b
        b.close()


OWN_HOSTS = {"127.0.0.1", "localhost"}
ELSEWHERE = re.compile(r"^(?!(https?|wss?)://(127\.0\.0\.1|localhost)[:/])[a-z]+://")
"""Any URL of another host: blocked, so that a test never sends traffic out."""


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page of its own browser context. Every test fails when a script ran in it or
    when it asked for anything from a host other than the dashboard's own: the
    dashboard must work offline and tell no one what its users look at."""
    context = browser.new_context(viewport={"width": 1400, "height": 2600})
    left: list[str] = []
    # Only other hosts' URLs are routed (the pattern goes to the browser), so the
    # dashboard's own hundreds of requests are not slowed down.
    context.route(ELSEWHERE, lambda route: (left.append(route.request.url), route.abort()))
    page = context.new_page()
    page.on("request", lambda r: _note_host(r.url, left))
    page.on("websocket", lambda ws: _note_host(ws.url, left))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    page.left_host = left
    yield page
    context.close()
    assert not dialogs, f"a script ran in the page: {dialogs}"
    assert not left, f"the page asked another host: {sorted(set(left))}"


def _note_host(url: str, left: list[str]) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("data", "blob") and parts.hostname not in OWN_HOSTS:
        left.append(url)


def test_the_pattern_blocks_every_other_host() -> None:
    blocked = ["https://fonts.gstatic.com/s/i/x.svg", "http://cdn.plot.ly/a.js",
               "wss://example.com/ws", "http://127.0.0.1.evil.com/x"]  # fmt: skip
    own = ["http://127.0.0.1:8501/static/js/a.js", "ws://127.0.0.1:8501/_stcore/stream",
           "http://localhost:8501/"]  # fmt: skip
    assert all(ELSEWHERE.match(u) for u in blocked)
    assert not any(ELSEWHERE.match(u) for u in own)


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _no_exception(page: Any) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()


def test_studies_view_lists_the_seeded_studies(dashboard: str, page: Any) -> None:
    page.goto(dashboard + "/")
    page.get_by_text("Studies", exact=True).first.wait_for(timeout=TIMEOUT_MS)
    grid = page.locator('[data-testid="stDataFrame"]')
    grid.wait_for(timeout=TIMEOUT_MS)
    # Glide's grid draws on a canvas; its accessible table holds the visible cells.
    for name in ("tpe-study", "random-study", "live-study", HOSTILE_STUDY):
        page.locator("td", has_text=name).first.wait_for(state="attached", timeout=TIMEOUT_MS)
    # What studies are compared by is on screen at 1400 px, without scrolling sideways:
    # the grid's accessible table holds the columns it draws.
    headers = grid.locator('[role="columnheader"]')
    expect(headers.first).to_be_attached(timeout=TIMEOUT_MS)
    names = [h.strip() for h in headers.all_inner_texts()]
    assert names[:5] == ["name", "status", "best", "trials", "duration (s)"], names
    _no_exception(page)
    _shot(page, "studies")


def test_study_view_draws_its_charts(dashboard: str, page: Any) -> None:
    page.goto(dashboard + "/study?study=tpe-study")
    wait_until_drawn(page, 1, TIMEOUT_MS)  # by default, the optimization history only
    assert page.locator("h1").first.inner_text() == "tpe-study"
    history = page.locator('[data-testid="stVegaLiteChart"] .role-title-text')
    assert history.all_text_contents() == ["Optimization history over trials"]
    assert page.locator(".js-plotly-plot").count() == 0  # Vega-Lite's, not Plotly's
    # a marker for each completed trial (15 of 24) and each pruned one (6, at its last
    # value), and the best-so-far line
    markers = page.locator(".mark-symbol.role-mark path")
    assert markers.count() == 21
    assert page.locator(".mark-line.role-mark path").count() == 1
    ticks = page.locator('g.role-axis[aria-label^="X-axis"] .role-axis-label text')
    assert all(t.isdigit() for t in ticks.all_text_contents()), ticks.all_text_contents()
    # the trial table has the room: 24 rows, up to its cap, not an 8-row box
    table = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
    assert table is not None and table["height"] >= 700, table
    # Playwright's expect retries: Streamlit may still be sending the picker after the chart
    picker = page.locator('[data-testid="stButtonGroup"]').get_by_role("radio")
    expect(picker).to_have_text(["Optimization history", *ON_DEMAND], timeout=TIMEOUT_MS)
    page.locator("td", has_text="completed").first.wait_for(state="attached")  # the table
    _no_exception(page)
    # Streamlit's Plotly component is loaded once the first chart is drawn, before any
    # Plotly chart is picked (so the first one picked does not wait for it)
    page.wait_for_function(PLOTLY_LOADED_JS, timeout=TIMEOUT_MS, polling=100)
    assert page.locator(".js-plotly-plot").count() == 0
    page.wait_for_timeout(300)
    _shot(page, "study")
    page.get_by_text("Pruned trials (6)").click()  # the switch hides them
    expect(markers).to_have_count(15, timeout=TIMEOUT_MS)
    for label, title in ON_DEMAND.items():
        open_chart(page, label, title, TIMEOUT_MS)
        titles = page.locator(".gtitle").all_text_contents()
        assert len(titles) == 1 and titles[0].startswith(title), (label, titles)
        if label == "Learning curves":
            assert page.locator(".legendtext", has_text="pruned here").count() == 1
        _no_exception(page)
        _shot(page, "study-" + label.lower().replace(" ", "-"))
    # every chart drawn, no request left 127.0.0.1 (Streamlit's ":material/..." page
    # icon is fetched from fonts.gstatic.com, for one)
    assert not page.left_host, page.left_host


def test_comparing_two_trials_shows_both(dashboard: str, page: Any) -> None:
    page.goto(dashboard + "/compare-trials?study=tpe-study&trials=0,1")
    wait_until_drawn(page, 1, TIMEOUT_MS)
    legend = page.locator(".legendtext").all_text_contents()
    assert legend == ["#0", "#1"]
    page.locator("th", has_text="#0").first.wait_for(state="attached")
    page.locator("th", has_text="#1").first.wait_for(state="attached")
    _no_exception(page)
    _shot(page, "compare-trials")


def test_compare_studies_and_trial_views(dashboard: str, page: Any) -> None:
    studies = ("tpe-study", "tpe-twin", "random-study")
    page.goto(dashboard + "/compare-studies?" + "&".join(f"studies={s}" for s in studies))
    wait_until_drawn(page, 1, TIMEOUT_MS)
    legend = set(page.locator(".legendtext").all_text_contents())
    assert legend == set(studies)
    # tpe-twin's curve is tpe-study's: each line is drawn in its own width and dashes,
    # so the one on top leaves the one below showing
    lines = page.locator(".scatterlayer .trace path.js-line")
    styles = lines.evaluate_all(
        "ps => ps.map(p => [p.style.strokeDasharray, p.style.strokeWidth].join(' '))"
    )
    assert len(styles) == 3 and len(set(styles)) == 3, styles
    _shot(page, "compare-studies")
    page.goto(dashboard + "/trial?study=tpe-study&trial=6")
    page.get_by_text("ValueError: the loss diverged").wait_for(timeout=TIMEOUT_MS)
    _no_exception(page)
    _shot(page, "trial")


def test_a_running_studys_new_trial_appears_without_reload(
    dashboard: str, db_url: str, page: Any
) -> None:
    page.goto(dashboard + "/study?study=live-study")
    page.get_by_text("5 trials (").wait_for(timeout=TIMEOUT_MS)
    with Storage(db_url) as writer:
        study = writer.get_study("live-study")
        now = datetime.now(UTC)
        writer.write([
            TrialStarted(study.id, 5, {"lr": 0.01, "depth": 3, "booster": "gbtree"},
                         started_at=now, node="node-live"),
            TrialResult(study.id, 5, 1, {"loss": 0.5}),
            TrialFinished(study.id, 5, "completed", finished_at=now, duration_s=0.1,
                          metrics={"loss": 0.01}, value=0.01),
        ])  # fmt: skip
    # no reload: the page's fragment refreshes every few seconds
    page.get_by_text("6 trials (").wait_for(timeout=20_000)
    _no_exception(page)
    _shot(page, "live-study-after-new-trial")


def test_hostile_names_render_as_text(dashboard: str, page: Any) -> None:
    page.goto(dashboard + f"/study?study={quote(HOSTILE_STUDY)}")
    wait_until_drawn(page, 1, TIMEOUT_MS)
    assert page.locator("h1").first.inner_text() == HOSTILE_STUDY
    open_chart(page, "Parallel coordinates", "Parallel coordinates", TIMEOUT_MS)
    assert page.locator("script", has_text="alert(").count() == 0
    axes = page.locator(".annotation-text").all_text_contents()
    assert "'; drop table trials; --" in axes  # parallel coordinates' axis title
    _shot(page, "hostile-study")
    page.goto(dashboard + f"/trial?study={quote(HOSTILE_STUDY)}&trial=6")
    page.get_by_text(HOSTILE_ERROR).wait_for(timeout=TIMEOUT_MS)
    assert page.locator("img[src=x]").count() == 0
    _no_exception(page)
    _shot(page, "hostile-trial")


def test_pareto_view_of_a_two_objective_study(dashboard: str, page: Any) -> None:
    page.goto(dashboard + "/study?study=mo-study")
    wait_until_drawn(page, 1, TIMEOUT_MS)  # the front is the default chart
    picker = page.locator('[data-testid="stButtonGroup"]').get_by_role("radio")
    expect(picker.nth(0)).to_have_text("Pareto front", timeout=TIMEOUT_MS)
    expect(picker.nth(1)).to_have_text("Hypervolume", timeout=TIMEOUT_MS)
    title = page.locator(".gtitle").first.text_content()
    assert title.startswith("Pareto front: ") and "of 27 completed trials" in title
    legend = set(page.locator(".legendtext").all_text_contents())
    assert {"Pareto front", "dominated", "infeasible", "front"} <= legend
    page.get_by_text("infeasible trials (grey crosses)").wait_for(timeout=TIMEOUT_MS)
    _no_exception(page)
    page.wait_for_timeout(300)
    _shot(page, "study-pareto")
    open_chart(page, "Hypervolume", "Hypervolume of the front", TIMEOUT_MS)
    page.get_by_text("reference point (error").wait_for(timeout=TIMEOUT_MS)
    _no_exception(page)
    _shot(page, "study-hypervolume")
    page.goto(dashboard + "/compare-studies?studies=mo-study&studies=mo-study-2")
    wait_until_drawn(page, 1, TIMEOUT_MS)
    assert page.locator(".gtitle").first.text_content() == "Pareto fronts"
    assert set(page.locator(".legendtext").all_text_contents()) == {"mo-study", "mo-study-2"}
    _no_exception(page)
    _shot(page, "compare-fronts")
