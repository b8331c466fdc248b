"""tuner.dashboard.frames and tuner.dashboard.charts against seeded databases (no Streamlit)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.dashboard.conftest import (
    HOSTILE_PARAM,
    HOSTILE_STUDY,
    seed_mo_study,
    seed_pbt_study,
    seed_study,
)
from tuner.dashboard import charts
from tuner.dashboard import frames as q
from tuner.exceptions import StorageError
from tuner.storage import Storage, TrialStarted


def test_studies_frame_lists_every_study_with_counts_and_best(seeded_url: str) -> None:
    storage = q.open_storage(seeded_url)
    frame = q.studies_frame(storage)
    assert frame["name"].tolist() == ["tpe-study", "gp-study", "random-study", HOSTILE_STUDY]
    tpe = frame.iloc[0]
    assert (tpe["algorithm"], tpe["scheduler"], tpe["status"]) == ("tpe", "asha", "completed")
    assert tpe["trials"] == 24
    assert tpe["completed"] + tpe["pruned"] + tpe["failed"] == 24
    assert tpe["pruned"] > 0 and tpe["failed"] > 0
    assert np.isfinite(tpe["best"]) and tpe["duration_s"] >= 0


def test_trials_frame_pivots_params_and_keeps_conditional_ones_absent(
    storage_url: str,
) -> None:
    with Storage(storage_url) as writer:
        study_id = seed_study(writer, "s", n_trials=10)
    storage = q.open_storage(storage_url)
    study = storage.get_study("s")
    frame = q.trials_frame(storage, study)
    assert frame["number"].tolist() == list(range(10))
    assert {"params.lr", "params.depth", "params.booster", "params.rate_drop"} <= set(frame)
    gbtree = frame[frame["params.booster"] == "gbtree"]
    dart = frame[frame["params.booster"] == "dart"]
    assert gbtree["params.rate_drop"].isna().all()  # absent, not 0
    assert dart["params.rate_drop"].notna().all()
    assert str(frame["params.depth"].dtype) == "Int64"
    records = {t.number: t for t in storage.get_trials(study_id)}
    for row in frame.itertuples():
        assert row.state == records[row.Index].state
    assert frame["metrics.loss"].notna().all() and "metrics.acc" in frame


def test_open_storage_is_read_only_and_explains_missing_and_empty(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(q.DashboardError, match="no database file"):
        q.open_storage(f"sqlite:///{missing}")
    assert not missing.exists()  # opening never creates it
    bare = tmp_path / "bare.db"
    sqlite3.connect(bare).close()
    with pytest.raises(q.DashboardError, match="no tuner tables"):
        q.open_storage(f"sqlite:///{bare}")
    with pytest.raises(q.DashboardError, match="unsupported database URL"):
        q.open_storage("mysql://x@y/z")


def test_the_dashboards_connection_refuses_writes(storage_url: str) -> None:
    with Storage(storage_url) as writer:
        seed_study(writer, "s", n_trials=3)
    storage = q.open_storage(storage_url)
    assert storage.read_only
    with pytest.raises(StorageError, match="read-only"):
        storage.delete_study("s")
    with pytest.raises(StorageError, match="read-only"):
        storage.write([TrialStarted(1, 99, {}, started_at=pd.Timestamp.now(tz="UTC"))])
    assert len(storage.get_trials(storage.get_study("s").id)) == 3


def test_filters_sort_and_ranges(seeded_url: str) -> None:
    storage = q.open_storage(seeded_url)
    frame = q.trials_frame(storage, storage.get_study("tpe-study"))
    done = q.filter_trials(frame, ["completed"], sort_by="value")
    assert set(done["state"]) == {"completed"}
    assert done["value"].is_monotonic_increasing
    ranged = q.filter_trials(frame, None, {"params.rate_drop": (0.0, 0.15)})
    assert ranged["params.rate_drop"].between(0, 0.15).all()
    assert (ranged["params.booster"] == "dart").all()  # absent rate_drop is out of range


def test_downsample_keeps_the_extremes_and_bounds_the_points() -> None:
    x = np.arange(100_000)
    y = np.sin(x / 1000.0)
    y[54_321] = -50.0
    idx = q.downsample(x, y, 1000)
    assert len(idx) <= 1000
    assert 54_321 in idx
    assert len(q.downsample(x[:10], y[:10], 1000)) == 10


def test_history_best_so_far_is_exact_and_downsampled(seeded_url: str) -> None:
    storage = q.open_storage(seeded_url)
    study = storage.get_study("tpe-study")
    frame = q.trials_frame(storage, study)
    points, best = q.history(frame, "min", max_points=4)
    assert len(points) <= 4
    done = frame[frame["state"] == "completed"]
    assert best["best"].iloc[-1] == done["value"].min()
    assert best["best"].is_monotonic_decreasing
    assert (best["elapsed_s"] >= 0).all()


def test_history_draws_pruned_trials_at_their_last_value(seeded_url: str) -> None:
    storage = q.open_storage(seeded_url)
    study = storage.get_study("tpe-study")
    frame = q.trials_frame(storage, study)
    only_done, _ = q.history(frame, "min")
    points, best = q.history(frame, "min", metric="loss", pruned=True)
    pruned = frame[frame["state"] == "pruned"]
    assert set(only_done["state"]) == {"completed"}
    assert len(points) == len(only_done) + len(pruned)
    cut = points[points["state"] == "pruned"].sort_values("number")
    assert cut["number"].tolist() == sorted(pruned["number"])
    assert cut["value"].tolist() == pruned.sort_values("number")["metrics.loss"].tolist()
    # the best so far counts completed trials only
    assert set(best["number"]) <= set(only_done["number"])


def test_curve_sample_has_the_best_and_pruned_trials(seeded_url: str) -> None:
    storage = q.open_storage(seeded_url)
    study = storage.get_study("tpe-study")
    frame = q.trials_frame(storage, study)
    numbers = q.curve_sample(frame, "min", n_best=2, n_other=6)
    done = frame[frame["state"] == "completed"]
    assert set(done.nsmallest(2, "value")["number"]) <= set(numbers)
    states = set(frame.set_index("number").loc[numbers, "state"])
    assert "pruned" in states
    curves = q.learning_curves(storage, study.id, "loss", numbers)
    assert set(curves["number"]) == set(numbers)
    steps = curves.groupby("number")["step"].max()
    pruned = frame[frame["state"] == "pruned"]["number"]
    assert (steps[steps.index.isin(pruned)] == 6).all()  # cut short
    assert (steps[steps.index.isin(done["number"])] == 12).all()
    short = q.learning_curves(storage, study.id, "loss", numbers, max_points_per_curve=3)
    assert short.groupby("number").size().max() <= 3


def test_steps_reached_counts_every_trial(seeded_url: str) -> None:
    storage = q.open_storage(seeded_url)
    frame = q.trials_frame(storage, storage.get_study("tpe-study"))
    reached = q.steps_reached(frame)
    at_one = reached[reached["step"] == 1].set_index("state")["trials"]
    assert at_one.sum() == 24
    at_last = reached[reached["step"] == 12].set_index("state")["trials"]
    assert at_last.get("pruned", 0) == 0 and at_last["completed"] > 0


def test_importance_and_contour(seeded_url: str) -> None:
    storage = q.open_storage(seeded_url)
    study = storage.get_study("tpe-study")
    frame = q.trials_frame(storage, study)
    imp = q.importance(frame, study)
    assert "rate_drop" not in set(imp["param"])  # conditional: left out
    assert {"lr", "depth"} <= set(imp["param"])
    assert imp["importance"].sum() == pytest.approx(1.0)
    xs, ys, z, points = q.contour_grid(
        frame, "params.lr", "params.depth", size=10, log=["params.lr"]
    )
    assert z.shape == (10, 10) and len(points) > 3
    assert xs.min() == pytest.approx(frame["params.lr"].min())  # in lr's units
    assert ys.max() == frame["params.depth"].max()


def _curve(number: int, steps: range) -> pd.DataFrame:
    return pd.DataFrame(
        {"number": number, "step": list(steps), "value": [number * 100.0 + s for s in steps]}
    )


def test_lineage_joins_each_child_to_its_parents_checkpoint() -> None:
    curves = pd.concat(
        [
            _curve(0, range(8)),  # a founder: steps 0..7
            _curve(1, range(4)),  # a founder cut at step 3
            _curve(2, range(4, 12)),  # from 0's checkpoint at step 3
            _curve(3, range(10, 14)),  # from 2's at step 9, which its curve lacks
            _curve(4, range(8, 12)),  # from 9's: not drawn
            _curve(5, range(0, 3)),  # from 1's, with no point before its first
        ],
        ignore_index=True,
    )
    curves = curves[~((curves["number"] == 2) & (curves["step"] == 9))]
    parents = {2: 0, 3: 2, 4: 9, 5: 1}
    got = q.lineage(curves.sample(frac=1, random_state=0), parents)
    assert got.columns.tolist() == ["number", "parent", "from_step", "from_value", "step", "value"]
    assert got.to_dict("records") == [
        {"number": 2, "parent": 0, "from_step": 3, "from_value": 3.0, "step": 4, "value": 204.0},
        {"number": 3, "parent": 2, "from_step": 8, "from_value": 208.0, "step": 10,
         "value": 310.0},
    ]  # fmt: skip
    # trials without a parent get no connector, nor does a study without children
    assert not set(got["number"]) & {0, 1}
    assert q.lineage(curves, {}).empty and q.lineage(curves.iloc[:0], parents).empty


def test_lineage_sample_keeps_the_best_lines_of_descent() -> None:
    frame = pd.DataFrame(
        {
            "number": range(8),
            "state": ["pruned"] * 4 + ["completed"] * 4,
            "value": [None] * 4 + [0.5, 0.1, 0.4, 0.3],
            "steps": [4, 4, 4, 4, 4, 4, 4, 0],
        }
    )
    parents = {4: 0, 5: 2, 2: 1, 6: 3}
    assert q.lineage_sample(frame, parents, "min") == list(range(7))  # under the cap: all
    # trial 5 is best; it came from 2, which came from 1; then the latest
    assert q.lineage_sample(frame, parents, "min", most=4, n_best=1) == [1, 2, 5, 6]


def test_population_chart_of_a_pbt_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pbt.db'}"
    with Storage(url) as writer:
        seed_pbt_study(writer, "pbt")
        seed_study(writer, "tpe", n_trials=4)
    storage = q.open_storage(url)
    study = storage.get_study("pbt")
    parents = q.parents(storage, study)
    assert parents == {2: 0, 3: 1, 4: 2}
    assert q.parents(storage, storage.get_study("tpe")) == {}
    frame = q.trials_frame(storage, study)
    numbers = q.lineage_sample(frame, parents, study.mode)
    assert numbers == [0, 1, 2, 3, 4]
    curves = q.learning_curves(storage, study.id, "loss", numbers)
    connectors = q.lineage(curves, parents)
    assert connectors[["number", "parent", "from_step", "step"]].values.tolist() == [
        [2, 0, 3, 4], [3, 1, 7, 8], [4, 2, 7, 8],
    ]  # fmt: skip
    states = dict(zip(frame["number"], frame["state"], strict=True))
    fig = charts.population_fig(curves, connectors, states, parents, "loss")
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"cut", "completed", "from a checkpoint"}
    assert traces["cut"].line.color == charts.CUT_COLOR
    # one trace for every connector: two points and a gap each, dashed
    joins = traces["from a checkpoint"]
    assert joins.line.dash == "dash" and list(joins.x) == [3, 4, None, 7, 8, None, 7, 8, None]
    assert [list(c) for c in joins.customdata if c is not None][::2] == [[2, 0], [3, 1], [4, 2]]
    # hovering a curve names the trial and its parent
    hover = {tuple(c) for c in traces["completed"].customdata if c is not None}
    assert hover == {(1, "none"), (3, "trial 1"), (4, "trial 2")}
    assert "parent" in traces["completed"].hovertemplate
    assert fig.layout.title.text.startswith("Population (5 trials")


def test_compare_params_marks_differences_and_absence(seeded_url: str) -> None:
    storage = q.open_storage(seeded_url)
    frame = q.trials_frame(storage, storage.get_study("tpe-study"))
    table = q.compare_params(frame, [0, 1]).set_index("name")
    assert table.loc["booster", "#0"] == "gbtree" and table.loc["booster", "#1"] == "dart"
    assert table.loc["rate_drop", "#0"] is None  # absent, not 0
    assert bool(table.loc["rate_drop", "differs"])
    assert not bool(table.loc["steps", "differs"])


def test_best_curve_per_study(seeded_url: str) -> None:
    storage = q.open_storage(seeded_url)
    curve = q.best_curve(storage, storage.get_study("gp-study"))
    assert curve["best"].is_monotonic_decreasing
    assert (curve["study"] == "gp-study").all()


def test_charts_escape_user_text(seeded_url: str) -> None:
    storage = q.open_storage(seeded_url)
    study = storage.get_study(HOSTILE_STUDY)
    frame = q.trials_frame(storage, study)
    fig = charts.parallel_fig(frame[frame["value"].notna()], q.param_columns(frame), "<b>m</b>")
    labels = [d["label"] for d in fig.to_dict()["data"][0]["dimensions"]]
    assert charts.esc(HOSTILE_PARAM) in labels
    assert "&lt;b&gt;m&lt;/b&gt;" in labels
    svg = charts.parallel_svg_fig(
        frame[frame["value"].notna()], q.param_columns(frame), "<b>m</b>"
    ).to_dict()
    titles = [a["text"] for a in svg["layout"]["annotations"]]
    assert f"<b>{charts.esc(HOSTILE_PARAM)}</b>" in titles
    assert "<b>&lt;b&gt;m&lt;/b&gt;</b>" in titles
    curves = pd.DataFrame(
        {"study": [HOSTILE_STUDY], "number": [0], "elapsed_s": [0.0], "best": [1.0]}
    )
    assert "<script>" not in charts.compare_studies_fig(curves).to_json()


def test_every_query_on_both_backends(storage_url: str) -> None:
    with Storage(storage_url) as writer:
        study_id = seed_study(writer, "s", n_trials=12, status="running")
    storage = q.open_storage(storage_url)
    study = storage.get_study("s")
    before = q.fingerprint(storage, study_id)
    assert before[-1] == "running"
    assert q.studies_frame(storage)["name"].tolist() == ["s"]
    frame = q.trials_frame(storage, study)
    curves = q.learning_curves(storage, study_id, "loss", q.curve_sample(frame, "min"))
    assert not curves.empty
    assert not q.best_curve(storage, study).empty
    assert not q.importance(frame, study).empty
    with Storage(storage_url) as writer:
        writer.write(
            [TrialStarted(study_id, 12, {"lr": 0.1}, started_at=pd.Timestamp.now(tz="UTC"))]
        )
    assert q.fingerprint(storage, study_id) != before  # a new trial changes it


def test_timeline_has_a_row_per_node_and_a_bar_per_trial(seeded_url: str) -> None:
    storage = q.open_storage(seeded_url)
    frame = q.trials_frame(storage, storage.get_study("tpe-study"))
    now = frame["started"].max() + pd.Timedelta(seconds=60)
    fig = charts.timeline_fig(frame, now)
    bars = [(trace.name, y, x) for trace in fig.data for y, x in zip(trace.y, trace.x, strict=True)]
    assert len(bars) == len(frame)  # every trial, once
    assert {y for _, y, _ in bars} == set(frame["node"].fillna("unknown"))  # a row per node
    assert {name for name, _, _ in bars} == set(frame["state"].astype(str))  # coloured by state
    assert all(x > 0 for _, _, x in bars)
    longest = frame["duration_s"].max() * 1000
    assert max(x for _, _, x in bars) == pytest.approx(longest, rel=1e-6)
    # A running trial's bar reaches `now`.
    running = frame.iloc[[0]].assign(state="running", duration_s=None)
    (trace,) = charts.timeline_fig(running, now).data
    expected = (now - running["started"].iloc[0]).total_seconds() * 1000
    assert trace.x[0] == pytest.approx(expected)


def test_pareto_frame_flags_the_feasible_non_dominated_trials(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mo.db'}"
    with Storage(url) as storage:
        seed_mo_study(storage, "mo", n_trials=40, seed=2)
        seed_mo_study(storage, "mo3", n_trials=12, objectives=[
            {"metric": "error", "mode": "min"}, {"metric": "size_mb", "mode": "min"},
            {"metric": "latency_ms", "mode": "min"}])  # fmt: skip
        seed_mo_study(storage, "mo4", n_trials=12, objectives=[
            {"metric": "error", "mode": "min"}, {"metric": "size_mb", "mode": "min"},
            {"metric": "latency_ms", "mode": "min"}, {"metric": "energy_j", "mode": "max"}])  # fmt: skip
        seed_study(storage, "single", n_trials=6)
        study = storage.get_study("mo")
        frame = q.trials_frame(storage, study)
        points = q.pareto_frame(storage, study)
        three = q.pareto_frame(storage, storage.get_study("mo3"))
        four = q.pareto_frame(storage, storage.get_study("mo4"))
        assert q.objectives(storage.get_study("single")) == []
        objectives = q.objectives(study)
        objectives3 = q.objectives(storage.get_study("mo3"))
        objectives4 = q.objectives(storage.get_study("mo4"))
    assert objectives == [("error", "min"), ("size_mb", "min")]
    completed = frame[frame["state"] == "completed"]
    assert len(completed) == 36  # 40 trials, every 9th failed: the lists below are not empty
    assert points["number"].tolist() == completed["number"].tolist()
    # every 5th trial reported latency 30 > 20: infeasible, and never on the front
    assert points["feasible"].tolist() == [n % 5 != 4 for n in points["number"]]
    assert not (points["pareto"] & ~points["feasible"]).any()
    feasible = points[points["feasible"]]
    values = feasible[["metrics.error", "metrics.size_mb"]].to_numpy()
    for (_, row), v in zip(feasible.iterrows(), values, strict=True):
        dominated = ((values <= v).all(axis=1) & (values < v).any(axis=1)).any()
        assert row["pareto"] == (not dominated)
    hv, ref = q.pareto_hypervolume(points, objectives)
    assert hv["number"].iloc[-1] == feasible["number"].iloc[-1]
    assert hv["hypervolume"].is_monotonic_increasing and hv["hypervolume"].iloc[-1] > 0
    assert ref[0] > values[:, 0].max() and ref[1] > values[:, 1].max()
    for fig in (charts.pareto_fig(points, objectives), charts.hypervolume_fig(hv)):
        assert fig.data  # builds
    assert charts.pareto_fig(three, objectives3).data[0].type == "scatter3d"
    assert charts.pareto_fig(four, objectives4).data[0].type == "parcoords"


def test_a_study_where_nothing_is_feasible_has_no_front(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mo.db'}"
    with Storage(url) as storage:
        seed_mo_study(storage, "mo", n_trials=10, constraints=[{"metric": "latency_ms", "max": 1}])
        points = q.pareto_frame(storage, storage.get_study("mo"))
        objectives = q.objectives(storage.get_study("mo"))
    assert len(points) == 9 and not points["feasible"].any() and not points["pareto"].any()
    hv, ref = q.pareto_hypervolume(points, objectives)
    assert hv.empty and ref == []


def test_the_dashboard_has_no_sql_of_its_own() -> None:
    # Only storage knows the tables: no dashboard module opens a connection or builds a
    # statement (parsing a URL to say a SQLite file is missing is all it takes).
    import ast

    import tuner.dashboard

    folder = Path(tuner.dashboard.__file__).parent
    modules = sorted(folder.glob("*.py"))
    assert {"frames.py", "charts.py", "_common.py"} <= {m.name for m in modules}
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
                assert not roots & {"sqlalchemy", "sqlite3", "psycopg"}, (module.name, roots)
            elif isinstance(node, ast.ImportFrom) and node.module:
                root = node.module.split(".")[0]
                assert root not in ("sqlite3", "psycopg"), (module.name, node.module)
                if root == "sqlalchemy":
                    names = {a.name for a in node.names}
                    assert names <= {"make_url"}, (module.name, names)


def test_sizes_in_human_units() -> None:
    assert [q.human_bytes(n) for n in (0, 1023, 1024, 3002, 5 * 1024**2, 600 * 1024**3)] == [
        "0 B", "1023 B", "1.0 KiB", "2.9 KiB", "5.0 MiB", "600.0 GiB"
    ]  # fmt: skip
    assert q.human_bytes(3 * 1024**5) == "3072.0 TiB"
