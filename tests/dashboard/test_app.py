"""Each view's logic through Streamlit's AppTest, against seeded databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import HOSTILE_ERROR, HOSTILE_PARAM, HOSTILE_STUDY
from tuner.dashboard import APP_PATH
from tuner.dashboard._testing import CHART_TITLES

APP = str(APP_PATH)  # the script `tuner dashboard` runs
TIMEOUT = 60


def _app(monkeypatch: pytest.MonkeyPatch, url: str) -> AppTest:
    monkeypatch.setenv("TUNER_DASHBOARD_STORAGE", url)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    return at.run()


def _texts(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption]
    parts += (
        [e.value for e in at.error] + [e.value for e in at.info] + [e.value for e in at.warning]
    )
    parts += [e.value for e in at.title] + [e.value for e in at.subheader]
    return "\n".join(str(p) for p in parts)


def _charts(at: AppTest) -> list:
    """The page's charts: Plotly's, then Vega-Lite's."""
    return [*at.get("plotly_chart"), *at.get("vega_lite_chart")]


def test_studies_view_lists_every_study(monkeypatch: pytest.MonkeyPatch, seeded_url: str) -> None:
    at = _app(monkeypatch, seeded_url)
    assert not at.exception
    frame = at.dataframe[0].value
    assert frame["name"].tolist() == ["tpe-study", "gp-study", "random-study", HOSTILE_STUDY]
    assert {"status", "algorithm", "scheduler", "completed", "pruned", "best", "started",
            "duration_s"} <= set(frame)  # fmt: skip
    # what studies are compared by comes first (on screen at a laptop's width)
    assert list(frame.columns[:5]) == ["name", "status", "best", "trials", "duration_s"]


def _titles(at: AppTest) -> list[str]:
    """The titles of the charts the page draws (Plotly's, then Vega-Lite's)."""
    plotly = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    return plotly + [json.loads(c.proto.spec)["title"] for c in at.get("vega_lite_chart")]


def _vega_data(chart: Any) -> dict[str, pd.DataFrame]:
    """A Vega-Lite chart's named datasets, as Streamlit sends them (Arrow)."""
    import pyarrow as pa

    return {
        d.name: pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets
    }


def test_study_view_draws_the_picked_chart_only(seeded_url: str) -> None:
    def page(url: str) -> None:
        from tuner.dashboard import _study

        _study.show_study(url, "tpe-study")

    at = AppTest.from_function(page, args=(seeded_url,), default_timeout=TIMEOUT).run()
    assert not at.exception
    picker = at.segmented_control(key="chart")
    assert picker.options == list(CHART_TITLES) and picker.value == "Optimization history"
    assert _titles(at) == ["Optimization history over trials"]
    # Drawn by Vega-Lite, not Plotly: the page loads no Plotly until a chart needs it.
    assert not at.get("plotly_chart") and len(at.get("vega_lite_chart")) == 1
    at.radio(key="hist_x").set_value("wall-clock time").run()
    assert _titles(at) == ["Optimization history over time"]
    # Each chart is one click away, and only the picked one is drawn.
    for label, title in CHART_TITLES.items():
        at.segmented_control(key="chart").set_value(label).run()
        assert not at.exception, label
        assert len(_titles(at)) == 1 and _titles(at)[0].startswith(title), (label, _titles(at))
    at.segmented_control(key="chart").set_value("Learning curves").run()
    assert "pruned here" in _charts(at)[0].proto.spec
    at.segmented_control(key="chart").set_value("Parallel coordinates").run()
    assert '"type":"scatter"' in _charts(at)[0].proto.spec.replace(" ", "")  # SVG lines
    at.toggle(key="pc_webgl").set_value(True).run()  # Plotly's brushable Parcoords
    assert not at.exception
    assert '"type":"parcoords"' in _charts(at)[0].proto.spec.replace(" ", "")
    at.segmented_control(key="chart").set_value("Contour").run()
    at.selectbox(key="cx").set_value("params.depth").run()
    at.selectbox(key="cy").set_value("params.depth").run()
    assert "Pick two different parameters" in _texts(at) and not _charts(at)
    at.segmented_control(key="chart").set_value(None).run()  # unpicked: nothing drawn
    assert not _charts(at) and "Pick a chart above" in _texts(at)


def test_a_pbt_studys_page_offers_its_population_and_other_pages_do_not(
    seeded_url: str,
) -> None:
    from tests.dashboard.conftest import seed_pbt_study
    from tuner.storage import Storage

    with Storage(seeded_url) as storage:
        seed_pbt_study(storage, "pbt-study")
        seed_pbt_study(storage, "pb2-study", algorithm="pb2")

    def page(url: str, name: str) -> None:
        from tuner.dashboard import _study

        _study.show_study(url, name)

    for name in ("pbt-study", "pb2-study"):
        at = AppTest.from_function(page, args=(seeded_url, name), default_timeout=TIMEOUT).run()
        assert not at.exception
        picker = at.segmented_control(key="chart")
        labels = list(CHART_TITLES)
        assert picker.options == [labels[0], "Population", *labels[1:]]
        assert picker.value == "Optimization history"  # the default stays the cheap one
        picker.set_value("Population").run()
        assert not at.exception
        assert len(_charts(at)) == 1 and _titles(at)[0].startswith("Population (5 trials")
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)
        joins = [t for t in spec["data"] if t["name"] == "from a checkpoint"]
        assert len(joins) == 1 and joins[0]["line"]["dash"] == "dash"
        assert "dashed line joins" in _texts(at)
    # a study without parents: no population chart offered
    at = AppTest.from_function(page, args=(seeded_url, "tpe-study"), default_timeout=TIMEOUT).run()
    assert at.segmented_control(key="chart").options == list(CHART_TITLES)


def test_study_views_default_chart_shows_every_trial_it_ran_and_the_best(
    seeded_url: str,
) -> None:
    def page(url: str) -> None:
        from tuner.dashboard import _study

        _study.show_study(url, "tpe-study")

    at = AppTest.from_function(page, args=(seeded_url,), default_timeout=TIMEOUT).run()
    assert not at.exception
    frame = at.dataframe[0].value.sort_values("number")
    done = frame[frame["state"] == "completed"]
    pruned = frame[frame["state"] == "pruned"]
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    data = _vega_data(at.get("vega_lite_chart")[0])
    trials, best = data["completed"], data["best"]
    # 24 trials: no downsampling, each completed trial a marker at its number
    assert trials["number"].tolist() == done["number"].tolist() == trials["x"].tolist()
    assert trials["value"].tolist() == pytest.approx(done["value"].tolist())
    # pruned trials too (6 of 24, most of an ASHA study's), at their last value
    cut = data["pruned"].sort_values("number")
    assert cut["number"].tolist() == pruned["number"].tolist() and len(cut) == 6
    assert cut["value"].tolist() == pytest.approx(pruned["metrics.loss"].tolist())
    assert spec["layer"][1]["mark"]["shape"] == "cross"
    # whole trial numbers on the x axis
    assert spec["layer"][0]["encoding"]["x"]["axis"] == {"tickMinStep": 1, "format": "d"}
    # the best-so-far line: steps down to the best completed value, where it was reached
    assert best["best"].is_monotonic_decreasing
    assert best["best"].iloc[-1] == pytest.approx(done["value"].min())
    first_best = done.loc[done["value"] == done["value"].min(), "number"].iloc[0]
    assert first_best in best["x"].tolist()
    # the switch hides the pruned trials
    at.toggle(key="hist_pruned").set_value(False).run()
    data = _vega_data(at.get("vega_lite_chart")[0])
    assert "pruned" not in data and len(data["completed"]) == len(done)
    # over wall-clock time: seconds since the first trial started (10 s apart, 5 s each)
    at.radio(key="hist_x").set_value("wall-clock time").run()
    trials = _vega_data(at.get("vega_lite_chart")[0])["completed"]
    assert trials["x"].tolist() == pytest.approx([10.0 * n + 5 for n in trials["number"]])


def test_study_view_filters_and_sorts_the_trial_table(seeded_url: str) -> None:
    def page(url: str) -> None:
        from tuner.dashboard import _study

        _study.show_study(url, "tpe-study")

    at = AppTest.from_function(page, args=(seeded_url,), default_timeout=TIMEOUT).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 24 and "params.rate_drop" in table
    # filter to completed trials, sort by value
    at.multiselect(key="f_states").set_value(["completed"]).run()
    at.selectbox(key="f_sort").set_value("value").run()
    table = at.dataframe[0].value
    assert set(table["state"]) == {"completed"} and table["value"].is_monotonic_increasing
    at.selectbox(key="f_range_col").set_value("params.depth").run()
    at.slider(key="f_range_params.depth").set_value((4.0, 6.0)).run()
    assert at.dataframe[0].value["params.depth"].between(4, 6).all()
    assert not at.exception


def test_compare_trials_view_shows_both(seeded_url: str) -> None:
    def page(url: str) -> None:
        from tuner.dashboard import _compare

        _compare.show_trials(url, "tpe-study", [0, 1])

    at = AppTest.from_function(page, args=(seeded_url,), default_timeout=TIMEOUT).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert {"#0", "#1", "differs"} <= set(table)
    rate_drop = table[table["name"] == "rate_drop"].iloc[0]
    assert pd.isna(rate_drop["#0"]) and bool(rate_drop["differs"])  # absent, not 0
    assert len(_charts(at)) == 1


def test_compare_studies_view(seeded_url: str) -> None:
    def page(url: str) -> None:
        from tuner.dashboard import _compare

        _compare.show_studies(url, ["tpe-study", "gp-study", "random-study"])

    at = AppTest.from_function(page, args=(seeded_url,), default_timeout=TIMEOUT).run()
    assert not at.exception
    chart = _charts(at)[0]
    assert "tpe-study" in chart.proto.spec and "random-study" in chart.proto.spec
    best = at.dataframe[0].value
    assert {"tpe-study", "gp-study", "random-study"} <= set(best.columns)


def test_compare_studies_keeps_coinciding_curves_visible() -> None:
    """Two studies with one curve (same seed): each line in its own width and dashes,
    each marker its own symbol and size, so neither hides the other."""
    from tuner.dashboard import charts

    curve = pd.DataFrame({"number": [0, 1, 2], "best": [3.0, 2.0, 2.0]})
    both = pd.concat([curve.assign(study="a"), curve.assign(study="b")], ignore_index=True)
    fig = charts.compare_studies_fig(both)
    looks = [(t.line.dash, t.line.width, t.marker.symbol, t.marker.size) for t in fig.data]
    assert [t.name for t in fig.data] == ["a", "b"]
    assert all(len({look[k] for look in looks}) == 2 for k in range(4)), looks
    # the one drawn on top is the narrower, with the smaller markers
    assert looks[1][1] < looks[0][1] and looks[1][3] < looks[0][3]


def test_the_trial_table_gets_a_row_of_height_per_row_up_to_a_cap() -> None:
    from tuner.dashboard import _study

    assert _study.table_height(8) < _study.table_height(20) == _study.TABLE_HEIGHT_MAX
    assert _study.table_height(200) == _study.TABLE_HEIGHT_MAX
    assert _study.table_height(20) >= 35 * 21  # 20 rows and the header, no scrolling


def test_trial_view_shows_error_node_and_absent_params(seeded_url: str) -> None:
    def page(url: str) -> None:
        from tuner.dashboard import _trial

        _trial.show_trial(url, "tpe-study", 6)  # every 7th trial failed

    at = AppTest.from_function(page, args=(seeded_url,), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.code[0].value == "ValueError: the loss diverged"
    facts = at.dataframe[0].value.set_index("")["value"]
    assert facts["state"] == "failed" and facts["node"] == "node-0"
    assert facts["duration"] == "5.00 s"
    params = at.dataframe[1].value.set_index("parameter")["value"]
    assert params["rate_drop"] == "(absent: inactive)"  # trial 6 is gbtree


def test_trial_view_shows_each_attempts_output(seeded_url: str) -> None:
    from tuner.storage import Storage, TrialOutput

    with Storage(seeded_url) as storage:
        study = storage.get_study("tpe-study")
        storage.write(
            [
                TrialOutput(study.id, 6, 1, "loading data\nepoch 0 loss=nan\n"),
                TrialOutput(study.id, 6, 2, "x" * 70_000 + "\nepoch 0 loss=inf\n"),
            ]
        )

    def page(url: str) -> None:
        from tuner.dashboard import _trial

        _trial.show_trial(url, "tpe-study", 6)
        _trial.show_output([])  # a trial that wrote nothing

    at = AppTest.from_function(page, args=(seeded_url,), default_timeout=TIMEOUT).run()
    assert not at.exception
    codes = [c.value for c in at.code]
    assert codes[1].rstrip("\n") == "loading data\nepoch 0 loss=nan"
    assert codes[2].rstrip("\n").endswith("x\nepoch 0 loss=inf")
    assert 60_000 < len(codes[2]) <= 64 * 1024
    captions = [c.value for c in at.caption]
    assert "attempt 1" in captions
    assert "attempt 2 · the last 64 KiB; earlier output was dropped" in captions
    assert any(c.startswith("Nothing written to stdout") for c in captions)


def _files_study(url: str, tmp_path: Path) -> str:
    """Trial 0 of tpe-study with its model (step 12) and a checkpoint (step 6) stored
    in a store under ``tmp_path``, a checkpoint too large to download (no folder), and
    a trial 24 started from trial 0's checkpoint. Returns the large one's URI."""
    from datetime import UTC, datetime

    from tuner.artifacts import ArtifactStore
    from tuner.storage import ArtifactSaved, Storage, TrialStarted

    store = ArtifactStore(tmp_path / "store")
    src = tmp_path / "weights"
    (src / "sub").mkdir(parents=True)
    (src / "model.bin").write_bytes(b"w" * 3000)
    (src / "sub" / "config.json").write_text("{}")
    with Storage(url) as storage:
        study = storage.get_study("tpe-study")
        events: list[Any] = []
        for kind, step in (("checkpoint", 6), ("model", 12)):
            uri = store.trial_key("tpe-study", 0, kind, step)
            events.append(ArtifactSaved(study.id, 0, step, kind, uri, store.put_dir(src, uri)))
        large = store.trial_key("tpe-study", 0, "checkpoint", 9)
        events.append(ArtifactSaved(study.id, 0, 9, "checkpoint", large, 600 * 1024**2))
        params = {"lr": 0.01, "depth": 4, "booster": "gbtree"}
        events.append(TrialStarted(study.id, 24, params, datetime.now(UTC), parent=0))
        storage.write(events)
    return large


def test_trial_view_lists_its_checkpoints_and_model_with_downloads(
    seeded_url: str, tmp_path: Path
) -> None:
    import io
    import zipfile

    large = _files_study(seeded_url, tmp_path)

    def page(url: str, number: int) -> None:
        from tuner.dashboard import _trial

        _trial.show_trial(url, "tpe-study", number)

    at = AppTest.from_function(page, args=(seeded_url, 0), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "Checkpoints and model" in _texts(at)
    files = at.dataframe[3].value  # facts, parameters, metrics, files
    assert files[["kind", "step"]].values.tolist() == [
        ["model", 12], ["checkpoint", 6], ["checkpoint", 9]
    ]  # fmt: skip
    assert files["size"].tolist() == ["2.9 KiB", "2.9 KiB", "600.0 MiB"]
    assert files["saved"].str.endswith(" UTC").all()
    buttons = at.get("download_button")
    assert [b.proto.label for b in buttons] == [
        "Download model (step 12, 2.9 KiB) as .zip",
        "Download checkpoint (step 6, 2.9 KiB) as .zip",
    ]
    assert all(b.proto.HasField("deferred_file_id") for b in buttons)  # built on click
    # too large to zip here: its URI instead of a button
    assert any(large in c.value for c in at.code)
    assert "too large to download here" in _texts(at)
    # what a click builds: the folder as a .zip, without the store's marker
    from tuner.dashboard import _trial

    data = _trial.zip_folder(str(tmp_path / "store" / "tpe-study" / "trial-00000" /
                                 "model-00000012"), "tpe-study-trial-00000-model-00000012")  # fmt: skip
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = sorted(zf.namelist())
        top = "tpe-study-trial-00000-model-00000012/"
        assert names == [top, f"{top}model.bin", f"{top}sub/", f"{top}sub/config.json"]
        assert zf.read(f"{top}model.bin") == b"w" * 3000
    # trial 24 went on from trial 0's checkpoint, and kept nothing
    at = AppTest.from_function(page, args=(seeded_url, 24), default_timeout=TIMEOUT).run()
    assert not at.exception
    facts = at.dataframe[0].value.set_index("")["value"]
    assert facts["parent"] == "trial 0 (started from its checkpoint)"
    assert not at.get("download_button")
    assert "No checkpoint or model kept for this trial" in _texts(at)


def test_the_trial_page_links_to_the_parent_and_follows_the_link(
    monkeypatch: pytest.MonkeyPatch, seeded_url: str, tmp_path: Path
) -> None:
    _files_study(seeded_url, tmp_path)
    at = _app(monkeypatch, seeded_url)
    # AppTest switches pages by file only: the Trial page is a function (st.Page)
    at._page_hash = next(
        h for h, page in at._registered_pages.items() if page.get("url_pathname") == "trial"
    )
    at.query_params.update({"study": "tpe-study", "trial": "24"})
    at.run()
    assert not at.exception and at.number_input(key="trial_number").value == 24
    link = at.get("page_link")[-1].proto
    assert link.label == "Parent: trial 0" and link.page == "trial"
    assert link.query_string == "study=tpe-study&trial=0"
    # following it: the link's trial wins over the number the box kept
    at.query_params["trial"] = "0"
    at.run()
    assert at.number_input(key="trial_number").value == 0
    assert len(at.get("download_button")) == 2
    at.number_input(key="trial_number").set_value(6).run()  # typing still works
    assert at.query_params["trial"] == "6" and at.code[0].value == "ValueError: the loss diverged"
    assert not at.exception and not at.warning


def test_hostile_names_are_text(seeded_url: str) -> None:
    def page(url: str, name: str) -> None:
        from tuner.dashboard import _study, _trial

        _study.show_study(url, name)
        _trial.show_trial(url, name, 6)

    at = AppTest.from_function(
        page, args=(seeded_url, HOSTILE_STUDY), default_timeout=TIMEOUT
    ).run()
    assert not at.exception
    heading = at.markdown[0].value
    assert "<script>" not in heading and "\\<script\\>" in heading  # markdown-escaped
    assert HOSTILE_ERROR in [c.value for c in at.code]
    assert f"params.{HOSTILE_PARAM}" in at.dataframe[0].value.columns


def test_a_study_without_trials_says_so(empty_url: str) -> None:
    from tuner.storage import Storage

    with Storage(empty_url) as storage:
        storage.create_study(
            "new", spec={}, metric="loss", mode="min", algorithm="tpe", scheduler="fifo",
            num_trials=10,
        )  # fmt: skip

    def page(url: str) -> None:
        from tuner.dashboard import _study

        _study.show_study(url, "new")

    at = AppTest.from_function(page, args=(empty_url,), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "No trials yet" in _texts(at)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        ("missing", "There is no database file"),
        ("empty", "no studies yet"),
        ("bare", "no tuner tables"),
        ("unreachable", "cannot open database"),
    ],
)
def test_clear_messages_instead_of_tracebacks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, empty_url: str, make: str, expected: str
) -> None:
    import sqlite3

    url = {
        "missing": f"sqlite:///{tmp_path / 'missing.db'}",
        "empty": empty_url,
        "bare": f"sqlite:///{tmp_path / 'bare.db'}",
        "unreachable": "postgresql://nobody@127.0.0.1:1/none",
    }[make]
    if make == "bare":
        sqlite3.connect(tmp_path / "bare.db").close()
    at = _app(monkeypatch, url)
    assert not at.exception
    assert expected in _texts(at).replace("\\", "")
