"""CSV and Parquet sources: finding the files, checking their columns, reading them.

A `path` is a file or a folder of files, local or any filesystem pyarrow opens from a
URL (``file://``, ``s3://``, ``gs://``, ``hdfs://``), falling back to fsspec for the
others (``memory://``, ``abfs://`` ...). A folder's files are read in sorted order,
skipping names that start with ``.`` or ``_`` (``_SUCCESS``, ``.crc``).

Every problem a user can fix (no such path, no files, a missing target column, a
column that is not numeric) is a one-line :class:`SpecError` raised in the driver,
before any trial starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tuner.exceptions import SpecError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

    from tuner.spec import DatasetSpec

DATASET_PATH = ("trainer", "dataset")
SUFFIXES = {"parquet": (".parquet", ".pq"), "csv": (".csv", ".csv.gz", ".csv.bz2")}


def _where(key: str) -> list[str]:
    return [*DATASET_PATH, key]


@dataclass(frozen=True)
class FileSource:
    """The files of a csv/parquet dataset and the columns a trainer reads from them."""

    uri: str  # as resolved: an absolute local path or the URL
    fmt: str  # csv | parquet
    files: tuple[str, ...]  # paths inside the filesystem, in read order
    features: tuple[str, ...]
    target: str
    target_type: str  # the target column's Arrow type, e.g. int64, string, double
    feature_types: tuple[str, ...]

    def filesystem(self) -> pafs.FileSystem:
        return _filesystem(self.uri)[0]

    @property
    def target_is_float(self) -> bool:
        return self.target_type in ("float", "double", "halffloat") or self.target_type.startswith(
            "decimal"
        )

    def read_table(self, columns: Sequence[str] | None = None) -> pa.Table:
        """Read every file into one Arrow table (only `columns`; default features + target)."""
        import pyarrow.dataset as ds

        cols = list(columns) if columns is not None else [*self.features, self.target]
        dataset = ds.dataset(list(self.files), filesystem=self.filesystem(), format=self._format())
        return dataset.to_table(columns=cols)

    def iter_batches(
        self, batch_size: int, columns: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Record batches of at most `batch_size` rows, file by file, in a fixed order.

        Never more than one batch and one Parquet row group (or CSV parse block) is
        held at a time.
        """
        cols = list(columns) if columns is not None else [*self.features, self.target]
        fs = self.filesystem()
        for f in self.files:
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                with fs.open_input_file(f) as handle:
                    parquet = pq.ParquetFile(handle)
                    # One row group at a time: iter_batches over the whole file keeps
                    # memory for every row group it has read (468 MB for a 478 MB file).
                    for group in range(parquet.metadata.num_row_groups):
                        yield from parquet.iter_batches(
                            batch_size=batch_size, columns=cols, row_groups=[group]
                        )
            else:
                yield from self._csv_batches(fs, f, batch_size, cols)

    def _csv_batches(
        self, fs: pafs.FileSystem, f: str, batch_size: int, cols: list[str]
    ) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        types = {n: t for n, t in self._csv_types().items() if n in cols}
        # pyarrow's default 1 MB blocks: with larger ones its streaming reader's memory
        # grew with the file (5 MB blocks: 112 MB held for a 110 MB file, 177 MB for 426).
        # Blocks are then regrouped into batches of batch_size rows.
        read = pacsv.ReadOptions(block_size=1 << 20, use_threads=False)
        convert = pacsv.ConvertOptions(include_columns=cols, column_types=types)
        pending: list[pa.RecordBatch] = []
        rows = 0
        with fs.open_input_stream(f, compression="detect") as stream:
            for block in pacsv.open_csv(stream, read_options=read, convert_options=convert):
                pending.append(block)
                rows += block.num_rows
                while rows >= batch_size:
                    table = pa.Table.from_batches(pending)
                    yield from table.slice(0, batch_size).combine_chunks().to_batches()
                    rest = table.slice(batch_size)
                    pending, rows = rest.to_batches(), rest.num_rows
        if rows:
            yield from pa.Table.from_batches(pending).combine_chunks().to_batches()

    def _format(self) -> Any:
        import pyarrow.dataset as ds

        if self.fmt == "parquet":
            return "parquet"
        import pyarrow.csv as pacsv

        types = self._csv_types()
        return ds.CsvFileFormat(convert_options=pacsv.ConvertOptions(column_types=types))

    def _csv_types(self) -> dict[str, Any]:
        # Numbers as float64 in every file and block: inference per file or block could
        # differ (an int column that turns out to hold 1.5 later on).
        import pyarrow as pa

        return {
            name: pa.float64()
            for name, t in zip(self.features, self.feature_types, strict=True)
            if t != "bool"
        }


def open_source(spec: DatasetSpec, base_dir: str | None = None) -> FileSource:
    """Find a csv/parquet dataset's files and check its columns (reads one schema only).

    Raises:
        SpecError: no such path, no data files in the folder, the target or a feature
            column missing, a feature column that is not numeric, a target that a
            regression cannot take.
    """
    assert spec.path is not None and spec.target is not None  # the spec requires them
    uri = _resolve(spec.path, base_dir)
    fs, root = _filesystem(uri)
    files = _list_files(fs, root, spec.source, spec.path)
    schema = _schema(fs, files[0], spec.source, spec.path)
    names = list(schema.names)
    if spec.target not in names:
        raise SpecError(
            f"no column {spec.target!r} in {spec.path} (columns: {_list(names)}); "
            "set target to one of them",
            _where("target"),
        )
    features = list(spec.features) if spec.features else [n for n in names if n != spec.target]
    for name in features:
        if name not in names:
            raise SpecError(
                f"no column {name!r} in {spec.path} (columns: {_list(names)})",
                _where("features"),
            )
    if not features:
        raise SpecError(f"{spec.path} has no column besides the target", _where("target"))
    feature_types = []
    for name in features:
        t = schema.field(name).type
        if not _numeric(t):
            raise SpecError(
                f"column {name!r} of {spec.path} is {t}, not numeric: drop it (list the "
                "columns to use in dataset.features) or encode it as numbers",
                _where("features"),
            )
        feature_types.append(str(t))
    target_type = schema.field(spec.target).type
    if spec.task == "regression" and not _numeric(target_type):
        raise SpecError(
            f"target column {spec.target!r} is {target_type}: a regression needs numbers; "
            "encode it, or set task: classification",
            _where("target"),
        )
    return FileSource(
        uri=uri,
        fmt=spec.source,
        files=tuple(files),
        features=tuple(features),
        target=spec.target,
        target_type=str(target_type),
        feature_types=tuple(feature_types),
    )


def batch_to_numpy(
    batch: pa.RecordBatch | pa.Table, features: Sequence[str], target: str
) -> tuple[np.ndarray, np.ndarray]:
    """Features as a C-contiguous float32 matrix (nulls become NaN) and the raw target."""
    X = np.empty((batch.num_rows, len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        X[:, j] = _column(batch, name)
    y = np.asarray(_column(batch, target))
    return X, y


def _column(batch: Any, name: str) -> np.ndarray:
    col = batch.column(name)
    if col.null_count and _numeric(col.type):
        import pyarrow as pa
        import pyarrow.compute as pc

        col = pc.cast(col, pa.float64())
    return np.asarray(col.to_numpy(zero_copy_only=False))


def _numeric(t: Any) -> bool:
    import pyarrow.types as pat

    return bool(
        pat.is_integer(t)
        or pat.is_floating(t)
        or pat.is_boolean(t)
        or pat.is_decimal(t)
        or pat.is_null(t)
    )


def _list(names: Sequence[str], most: int = 20) -> str:
    shown = ", ".join(names[:most])
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")


def _resolve(path: str, base_dir: str | None) -> str:
    if "://" in path:
        return path
    if os.path.isabs(path):
        return path
    # Relative paths: beside the spec file first, then the current folder.
    for folder in [base_dir, os.getcwd()]:
        if folder and os.path.exists(os.path.join(folder, path)):
            return os.path.abspath(os.path.join(folder, path))
    return os.path.abspath(path)


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    import pyarrow as pa
    import pyarrow.fs as pafs

    if "://" not in uri:
        return pafs.LocalFileSystem(), uri
    try:
        fs, root = pafs.FileSystem.from_uri(uri)
        return fs, root
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        pass  # a scheme pyarrow lacks: try fsspec
    except OSError as e:
        raise SpecError(f"cannot open {uri}: {_first_line(e)}", _where("path")) from None
    try:
        import fsspec

        fsspec_fs, root = fsspec.core.url_to_fs(uri)
    except ImportError:
        raise SpecError(
            f"cannot open {uri}: pyarrow has no filesystem for this URL; install fsspec "
            "and the package for this scheme",
            _where("path"),
        ) from None
    except (ValueError, OSError) as e:
        raise SpecError(f"cannot open {uri}: {_first_line(e)}", _where("path")) from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fsspec_fs)), root


def _list_files(fs: pafs.FileSystem, root: str, fmt: str, given: str) -> list[str]:
    import pyarrow.fs as pafs

    try:
        info = fs.get_file_info(root)
    except OSError as e:
        raise SpecError(f"cannot open {given}: {_first_line(e)}", _where("path")) from None
    if info.type == pafs.FileType.NotFound:
        raise SpecError(f"no such file or folder: {given}; check the path", _where("path"))
    if info.type == pafs.FileType.File:
        return [info.path]
    selector = pafs.FileSelector(root, recursive=True)
    found = sorted(
        i.path
        for i in fs.get_file_info(selector)
        if i.type == pafs.FileType.File
        and not os.path.basename(i.path).startswith((".", "_"))
        and i.path.endswith(SUFFIXES[fmt])
    )
    if not found:
        raise SpecError(
            f"no {' or '.join(SUFFIXES[fmt])} files in the folder {given}; check the path "
            "and dataset.source",
            _where("path"),
        )
    return found


def _schema(fs: pafs.FileSystem, f: str, fmt: str, given: str) -> pa.Schema:
    import pyarrow as pa

    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            with fs.open_input_file(f) as handle:
                return pq.ParquetFile(handle).schema_arrow
        import pyarrow.csv as pacsv

        with fs.open_input_stream(f, compression="detect") as stream:
            return pacsv.open_csv(stream).schema
    except (pa.ArrowInvalid, OSError) as e:
        raise SpecError(
            f"cannot read {f} as {fmt} ({_first_line(e)}); check the file and dataset.source",
            _where("path"),
        ) from None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
