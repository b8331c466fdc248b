"""The sklearn trainer: pipeline steps, partial_fit epochs, k-fold, streaming, errors."""

from __future__ import annotations

import copy

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import tuner
from tuner.data._files import FileSource
from tuner.exceptions import SpecError
from tuner.spec import load_spec
from tuner.trainers import _sklearn, prepare

DIGITS = {"source": "sklearn", "name": "digits", "seed": 0}


def spec(trainer: dict, space: dict | None = None, **top) -> dict:
    return {
        "name": top.pop("name", "sk"),
        "metric": top.pop("metric", "valid_accuracy"),
        "mode": top.pop("mode", "max"),
        "trainer": {"kind": "sklearn", "dataset": DIGITS, **trainer},
        "search_space": space
        or {"alpha": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True}},
        **top,
    }


def train(data: dict, config: dict):
    """Prepare in the driver and run one trial in this process; (reports, fitted pipes)."""
    s = load_spec(data)
    prepared = prepare(s)
    reports: list[tuple[int, dict]] = []
    runner = _sklearn.run_stream if s.trainer.dataset.stream else _sklearn.run
    fitted = runner(
        s.trainer, config, prepared.shared["data"], lambda step, **m: reports.append((step, m)), 1
    )
    return prepared, reports, fitted


SGD = {"estimator": "sklearn.linear_model.SGDClassifier", "max_epochs": 3, "batch_size": 256}


def test_pca_n_components_shapes_the_model():
    space = {"pca__n_components": {"type": "int", "low": 2, "high": 40}}
    scores = {}
    for k in (3, 30):
        _, reports, (pipe,) = train(
            spec({**SGD, "pipeline": ["standard_scaler", "pca"]}, space), {"pca__n_components": k}
        )
        assert pipe.named_steps["pca"].n_components_ == k
        assert pipe.named_steps["estimator"].coef_.shape == (10, k)
        scores[k] = reports[-1][1]["valid_accuracy"]
    assert scores[30] > scores[3]  # 3 components lose most of the digits


def test_pca_takes_a_fraction_of_variance():
    space = {"pca__n_components": {"type": "float", "low": 0.5, "high": 0.99}}
    _, _, (pipe,) = train(spec({**SGD, "pipeline": ["pca"]}, space), {"pca__n_components": 0.8})
    assert 1 < pipe.named_steps["pca"].n_components_ < 64


def test_select_k_best_selects_k_features():
    space = {"select_k_best__k": {"type": "int", "low": 2, "high": 40}}
    _, _, (pipe,) = train(
        spec({**SGD, "pipeline": ["select_k_best"]}, space), {"select_k_best__k": 7}
    )
    assert pipe.named_steps["select_k_best"].get_support().sum() == 7
    assert pipe.named_steps["estimator"].coef_.shape == (10, 7)


def test_select_from_model_threshold_is_searchable():
    space = {"select_from_model__threshold": {"type": "categorical", "choices": ["mean", "median"]}}
    kept = {}
    for t in ("mean", "median"):
        _, _, (pipe,) = train(
            spec({**SGD, "pipeline": ["standard_scaler", "select_from_model"]}, space),
            {"select_from_model__threshold": t},
        )
        kept[t] = pipe.named_steps["select_from_model"].get_support().sum()
    assert kept["median"] != kept["mean"] and min(kept.values()) > 0


def test_partial_fit_reports_every_epoch_and_fit_once_reports_once():
    prepared, reports, _ = train(spec({**SGD, "max_epochs": 4}), {"alpha": 1e-4})
    assert prepared.budget is None  # the spec's budget: max_epochs
    assert [s for s, _ in reports] == [1, 2, 3, 4]
    assert set(reports[0][1]) == {"valid_accuracy", "train_accuracy"}
    forest = {
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "params": {"n_estimators": 5},
    }
    space = {"max_depth": {"type": "int", "low": 2, "high": 8}}
    prepared, reports, _ = train(spec(forest, space), {"max_depth": 4})
    assert prepared.budget == 1 and [s for s, _ in reports] == [1]


def test_k_fold_reports_the_mean_over_folds():
    data = spec({**SGD, "dataset": {**DIGITS, "folds": 3}, "max_epochs": 2})
    prepared, reports, pipes = train(data, {"alpha": 1e-3})
    assert len(pipes) == 3
    from sklearn.metrics import get_scorer

    splits = _sklearn._splits(prepared.shared["data"])
    per_fold = [get_scorer("accuracy")(p, *s.valid()) for p, s in zip(pipes, splits, strict=True)]
    assert len(set(per_fold)) == 3
    assert reports[-1][1]["valid_accuracy"] == pytest.approx(np.mean(per_fold))


def test_folds_may_be_written_on_the_trainer_as_in_the_design():
    s = load_spec(spec({**SGD, "folds": 4}))
    assert s.trainer.dataset.folds == 4
    assert load_spec(s.to_dict()) == s  # a stored spec loads again (resume)
    with pytest.raises(SpecError, match=r"trainer\.folds: is set twice"):
        load_spec(spec({**SGD, "folds": 4, "dataset": {**DIGITS, "folds": 3}}))


def test_other_scorers_and_regression():
    data = spec(
        {**SGD, "scoring": "neg_log_loss", "params": {"loss": "log_loss"}},
        metric="valid_neg_log_loss",
    )
    _, reports, _ = train(data, {"alpha": 1e-3})
    assert reports[-1][1]["valid_neg_log_loss"] < 0
    reg = spec(
        {
            "estimator": "sklearn.linear_model.SGDRegressor",
            "pipeline": ["standard_scaler"],
            "dataset": {"source": "sklearn", "name": "diabetes"},
            "max_epochs": 5,
        },
        metric="valid_r2",
    )
    _, reports, _ = train(reg, {"alpha": 1e-3})
    assert 0.2 < reports[-1][1]["valid_r2"] < 1


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"trainer": {**SGD, "estimator": "sklearn.linear_model.SGDClassifer"}},
            "trainer.estimator: 'sklearn.linear_model' has no estimator class 'SGDClassifer'",
        ),
        (
            {"trainer": {**SGD, "estimator": "sklearnx.linear.Thing"}},
            "trainer.estimator: cannot import 'sklearnx.linear'",
        ),
        (
            {"metric": "valid_f1"},
            "metric: the sklearn trainer reports valid_accuracy and train_accuracy",
        ),
        ({"mode": "min"}, "mode: scikit-learn scorers are greater-is-better"),
        (
            {"trainer": {**SGD, "scoring": "acuracy"}},
            "trainer.scoring: 'acuracy' is not a scikit-learn scorer",
        ),
        (
            {"search_space": {"alpah": {"type": "float", "low": 0.1, "high": 1.0}}},
            "search_space.alpah: SGDClassifier has no parameter 'alpah' (it has: alpha,",
        ),
        (
            {"search_space": {"pca__k": {"type": "int", "low": 1, "high": 3}}},
            "search_space.pca__k: 'pca' is not a step of trainer.pipeline (steps: none)",
        ),
        (
            {"trainer": {**SGD, "params": {"penalty": "l3"}}},
            "trainer.params",
        ),
        (
            {"trainer": {**SGD, "estimator": "sklearn.linear_model.LinearRegression"}},
            "trainer.dataset.task: LinearRegression does regression but the dataset's task is",
        ),
    ],
)
def test_mistakes_are_one_line_spec_errors_before_any_trial(change, message):
    data = spec(SGD)
    if "trainer" in change:
        change = {**change, "trainer": {**data["trainer"], **change["trainer"]}}
    if change.get("trainer", {}).get("estimator", "").endswith("LinearRegression"):
        change["trainer"]["dataset"] = {**DIGITS, "task": "classification"}
    data.update(change)
    with pytest.raises(SpecError) as info:
        prepare(load_spec(data))
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(message), str(info.value)


@pytest.fixture
def big_parquet(tmp_path):
    """20,000 rows in row groups of 2,000: ten times more than a trial may hold."""
    import pyarrow as pa

    rng = np.random.default_rng(0)
    n = 20_000
    X = rng.normal(size=(n, 6)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(np.int64)
    t = pa.table({**{f"x{i}": X[:, i] for i in range(6)}, "label": y})
    path = tmp_path / "big.parquet"
    pq.write_table(t, path, row_group_size=2_000)
    return path


def test_streamed_trainer_reads_batches_and_never_the_whole_file(big_parquet, monkeypatch):
    held: list[int] = []
    real = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        for batch in real(self, *args, **kwargs):
            held.append((batch.num_columns, batch.num_rows))
            yield batch

    def whole(*args, **kwargs):
        raise AssertionError("the whole file was read")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    monkeypatch.setattr(pq.ParquetFile, "read", whole)
    monkeypatch.setattr(pq, "read_table", whole)
    monkeypatch.setattr(pads, "dataset", whole)
    monkeypatch.setattr(FileSource, "read_table", whole)
    data = spec(
        {
            **SGD,
            "pipeline": ["standard_scaler", "pca"],
            "batch_size": 500,
            "dataset": {
                "source": "parquet",
                "path": str(big_parquet),
                "target": "label",
                "stream": True,
            },
        },
        {"pca__n_components": {"type": "int", "low": 2, "high": 5}},
    )
    _, reports, pipe = train(data, {"pca__n_components": 3})
    assert [s for s, _ in reports] == [1, 2, 3]
    assert reports[-1][1]["valid_accuracy"] > 0.6  # learned something from 3 components
    assert pipe.named_steps["pca"].n_components_ == 3  # IncrementalPCA, fitted on the stream
    # the classes come from one pass over the target column alone
    assert sum(rows for cols, rows in held if cols == 1) == 20_000
    # every other read is a batch of at most batch_size rows, over many passes
    full = [rows for cols, rows in held if cols == 7]
    assert max(full) <= 500 and sum(full) > 3 * 20_000


def test_stream_needs_a_partial_fit_estimator(big_parquet):
    data = spec(
        {
            "estimator": "sklearn.ensemble.RandomForestClassifier",
            "dataset": {
                "source": "parquet",
                "path": str(big_parquet),
                "target": "label",
                "stream": True,
            },
        },
        {"max_depth": {"type": "int", "low": 2, "high": 4}},
    )
    with pytest.raises(
        SpecError, match=r"trainer\.dataset\.stream: stream: true needs an estimator"
    ):
        prepare(load_spec(data))


# --- real sweeps on the session's local Ray ------------------------------------------


def run(data, storage):
    return tuner.create_study(copy.deepcopy(data), storage=storage).run(progress=False)


@pytest.mark.integration
def test_asha_cuts_partial_fit_trials_short(ray_local, sqlite_url):
    data = spec(
        {**SGD, "max_epochs": 9, "pipeline": ["standard_scaler"]},
        {"alpha": {"type": "float", "low": 1e-5, "high": 10.0, "log": True}},
        name="sk-asha",
        search={"algorithm": "random", "num_trials": 8, "max_concurrent": 2, "seed": 0},
        early_stopping={"scheduler": "asha", "grace_period": 1, "reduction_factor": 3},
    )
    trials = run(data, sqlite_url).trials()
    completed = [t for t in trials if t.state == "completed"]
    pruned = [t for t in trials if t.state == "pruned"]
    assert completed and pruned
    assert all(t.steps == 9 for t in completed)
    assert all(t.steps < 9 for t in pruned)


@pytest.mark.integration
def test_fit_once_trials_complete_and_a_rejected_config_fails_its_trial_only(ray_local, sqlite_url):
    data = spec(
        {"estimator": "sklearn.tree.DecisionTreeClassifier"},
        {"max_depth": {"type": "int", "values": [-1, 3, 6]}},
        name="sk-once",
        search={"algorithm": "grid", "max_concurrent": 2},
        early_stopping={"scheduler": "asha", "grace_period": 1},
    )
    trials = run(data, sqlite_url).trials()
    states = {t.params["max_depth"]: t.state for t in trials}
    assert states == {-1: "failed", 3: "completed", 6: "completed"}
    bad = next(t for t in trials if t.state == "failed")
    assert "max_depth" in bad.error
    assert all(t.steps == 1 for t in trials if t.state == "completed")


@pytest.mark.integration
def test_streamed_sweep_through_ray(ray_local, sqlite_url, big_parquet):
    data = spec(
        {
            **SGD,
            "max_epochs": 2,
            "batch_size": 2000,
            "dataset": {
                "source": "parquet",
                "path": str(big_parquet),
                "target": "label",
                "stream": True,
            },
        },
        name="sk-stream",
        search={"algorithm": "random", "num_trials": 2, "max_concurrent": 2, "seed": 0},
    )
    trials = run(data, sqlite_url).trials()
    assert [t.state for t in trials] == ["completed", "completed"]
    assert all(t.steps == 2 and t.metrics["valid_accuracy"] > 0.8 for t in trials)
