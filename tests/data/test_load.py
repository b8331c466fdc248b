"""Dataset sources: sklearn, synthetic, csv and parquet (files, folders, URLs), streaming."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests._optional import require
from tuner.data import _stream, load_dataset
from tuner.exceptions import SpecError
from tuner.spec import DatasetSpec


def table(n: int = 400, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    return pa.table(
        {
            "a": a,
            "b": rng.integers(0, 5, n),
            "flag": rng.random(n) > 0.5,
            "city": rng.choice(["paris", "oslo"], n),
            "label": np.where(a + rng.normal(size=n) > 0, "yes", "no"),
        }
    )


@pytest.fixture
def files(tmp_path):
    t = table()
    pq.write_table(t, tmp_path / "d.parquet")
    pacsv.write_csv(t, tmp_path / "d.csv")
    (tmp_path / "parts").mkdir()
    pq.write_table(t.slice(0, 150), tmp_path / "parts" / "p0.parquet")
    pq.write_table(t.slice(150), tmp_path / "parts" / "p1.parquet")
    (tmp_path / "parts" / "_SUCCESS").write_text("")
    return tmp_path


def ds(**kw) -> DatasetSpec:
    return DatasetSpec(**{"features": ["a", "b", "flag"], "target": "label", **kw})


@pytest.mark.parametrize(
    "source, path",
    [("parquet", "d.parquet"), ("csv", "d.csv"), ("parquet", "parts"), ("parquet", "URL")],
)
def test_files_load_as_float32_contiguous_splits(files, source, path):
    path = (files / "parts").as_uri() if path == "URL" else str(files / path)
    data = load_dataset(ds(source=source, path=path, valid_fraction=0.25))
    assert data.X_train.shape == (300, 3) and data.X_valid.shape == (100, 3)
    for a in (data.X_train, data.X_valid, data.y_train):
        assert a.dtype == np.float32 and a.flags.c_contiguous
    assert data.n_classes == 2 and data.class_names == ("no", "yes")
    assert set(np.unique(data.y_train)) == {0.0, 1.0}


def test_a_float_target_is_regression_and_folds_keep_every_row(files):
    data = load_dataset(
        DatasetSpec(source="parquet", path=str(files / "d.parquet"), target="a", features=["b"])
    )
    assert data.n_classes == 0 and data.task == "regression"
    folded = load_dataset(ds(source="parquet", path=str(files / "d.parquet"), folds=4))
    assert (folded.folds, len(folded.y_train), len(folded.y_valid)) == (4, 400, 0)


def test_fsspec_filesystems_work_too(files):
    fsspec = require("fsspec")
    mem = fsspec.filesystem("memory")
    mem.pipe("/tuner-test/d.parquet", (files / "d.parquet").read_bytes())
    data = load_dataset(ds(source="parquet", path="memory://tuner-test/d.parquet"))
    assert len(data.y_train) + len(data.y_valid) == 400


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"path": "nope.parquet"}, "trainer.dataset.path: no such file or folder: nope.parquet"),
        (
            {"target": "labels"},
            "trainer.dataset.target: no column 'labels' in {path} "
            "(columns: a, b, flag, city, label); set target to one of them",
        ),
        (
            {"features": None},
            "trainer.dataset.features: column 'city' of {path} is string, not numeric: drop it",
        ),
        ({"features": ["a", "zz"]}, "trainer.dataset.features: no column 'zz'"),
    ],
)
@pytest.mark.parametrize("source", ["parquet", "csv"])
def test_file_errors_are_one_line_naming_the_path_or_column(files, kw, message, source):
    path = str(files / f"d.{source}")
    spec = ds(**{"source": source, "path": path, **kw})
    with pytest.raises(SpecError) as info:
        load_dataset(spec)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(message.format(path=path)), text


def test_a_folder_without_data_files_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(SpecError, match=r"no \.parquet or \.pq files in the folder"):
        load_dataset(ds(source="parquet", path=str(tmp_path)))


def test_spec_rules_for_dataset_keys():
    with pytest.raises(ValueError, match="valid_fraction or folds, not both"):
        DatasetSpec(source="synthetic", valid_fraction=0.3, folds=3)
    with pytest.raises(ValueError, match="is required for source csv"):
        DatasetSpec(source="csv", path="x.csv")
    with pytest.raises(ValueError, match="for source csv or parquet only"):
        DatasetSpec(source="synthetic", stream=True)
    with pytest.raises(ValueError, match="must be <= n_features"):
        DatasetSpec(source="synthetic", n_features=4, n_informative=5)


def test_synthetic_is_float32_views_of_one_matrix():
    spec = DatasetSpec(source="synthetic", n_rows=20_000, n_features=8, n_informative=3, seed=1)
    data = load_dataset(spec)
    assert data.X_train.dtype == np.float32 and data.X_train.flags.c_contiguous
    assert data.X_train.base is data.X_valid.base is not None  # views, no copy
    assert (len(data.y_train), len(data.y_valid)) == (16_000, 4_000)
    assert 0.3 < data.y_train.mean() < 0.7
    again = load_dataset(spec)
    assert np.array_equal(again.X_valid, data.X_valid)  # seeded
    # the target depends on 3 features: a linear fit on those explains most of it
    reg = load_dataset(
        DatasetSpec(
            source="synthetic", task="regression", n_rows=5000, n_features=8, n_informative=3
        )
    )
    coef, *_ = np.linalg.lstsq(reg.X_train, reg.y_train, rcond=None)
    assert (np.abs(coef) > 0.25).sum() == 3


def test_stream_plan_caps_the_validation_rows_and_is_deterministic(files, monkeypatch):
    t = table(5000)
    pq.write_table(t, files / "big.parquet", row_group_size=500)
    monkeypatch.setattr(_stream, "VALID_ROWS", 300)
    monkeypatch.setattr(_stream, "TRAIN_SAMPLE_ROWS", 200)
    spec = ds(source="parquet", path=str(files / "big.parquet"), stream=True)
    plan = _stream.plan_stream(spec, batch_size=256)
    assert len(plan.y_valid) == 300 and len(plan.y_sample) == 200
    assert list(plan.classes) == ["no", "yes"]
    # rows past the cutoff all train; before it about valid_fraction validate
    assert plan.cutoff < 5000
    rows = np.arange(5000)
    assert plan.is_valid(rows).sum() == 300
    assert not plan.is_valid(rows[plan.cutoff :]).any()
    trained = sum(len(y) for _, y in plan.train_batches(256))
    assert trained == 5000 - 300
    assert _stream.plan_stream(spec, batch_size=100).cutoff == plan.cutoff


def test_csv_streams_in_batches_of_batch_size_rows(files):
    t = table(5000)
    pacsv.write_csv(t, files / "big.csv")
    spec = ds(source="csv", path=str(files / "big.csv"), stream=True)
    source = _stream.plan_stream(spec, batch_size=256).source
    sizes = [b.num_rows for b in source.iter_batches(300)]
    assert sum(sizes) == 5000 and max(sizes) == 300 and sizes.count(300) == 16
    X, y = _stream.batch_to_numpy(next(source.iter_batches(300)), source.features, "label")
    assert X.dtype == np.float32 and X.shape == (300, 3) and set(y) <= {"yes", "no"}
