"""Memory of a streamed sweep as the data grows: Parquet of 1x and 4x the rows.

An SGDClassifier sweep (2 trials in flight, 2 epochs, `stream: true`, batches of
10,000 rows) on Parquet files of 1,000,000 and 4,000,000 rows x 20 float32 features,
each run in a fresh process with its own local Ray. For contrast, the 4x file once more
without streaming (loaded into memory, shared through the object store). Memory is the
summed PSS of the driver and all its Ray processes (bench/_pss.py).

    python -m bench.streaming [--rows 1000000] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._pss import Sampler, gib, load_note
from bench._results import publish

N_FEATURES = 20
BATCH = 10_000


def write_parquet(path: Path, n_rows: int, seed: int = 0) -> int:
    """Write n_rows in chunks (never all in memory); returns the file's size in bytes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    w = rng.normal(size=N_FEATURES).astype(np.float32)
    names = [f"x{i}" for i in range(N_FEATURES)]
    schema = pa.schema([*(pa.field(n, pa.float32()) for n in names), ("label", pa.int64())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, n_rows, 250_000):
            n = min(250_000, n_rows - start)
            X = rng.standard_normal((n, N_FEATURES), dtype=np.float32)
            y = (X @ w + rng.standard_normal(n, dtype=np.float32) > 0).astype(np.int64)
            cols = {name: X[:, i] for i, name in enumerate(names)}
            writer.write_table(pa.table({**cols, "label": y}, schema=schema), 65_536)
    return path.stat().st_size


def measure(path: str, stream: bool) -> dict[str, Any]:
    import tuner

    spec = {
        "name": "streaming",
        "metric": "valid_accuracy",
        "mode": "max",
        "trainer": {
            "kind": "sklearn",
            "estimator": "sklearn.linear_model.SGDClassifier",
            "max_epochs": 2,
            "batch_size": BATCH,
            "dataset": {"source": "parquet", "path": path, "target": "label", "stream": stream},
        },
        "search_space": {"alpha": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True}},
        "search": {"algorithm": "random", "num_trials": 2, "max_concurrent": 2},
    }
    with tempfile.TemporaryDirectory() as d, Sampler() as sampler:
        started = time.perf_counter()
        study = tuner.create_study(spec, storage=f"sqlite:///{d}/bench.db").run(progress=False)
        seconds = time.perf_counter() - started
        trials = study.trials()
    assert [t.state for t in trials] == ["completed"] * 2, [t.error for t in trials]
    return {
        "peak": sampler.peak,
        "peak_trials": sampler.peak_trials,
        "seconds": seconds,
        "accuracy": max(t.metrics["valid_accuracy"] for t in trials),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the 1x file")
    parser.add_argument("--out", type=Path, default=None, help="append a section to this file")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child: PATH,stream
    args = parser.parse_args()
    if args.one:
        path, stream = args.one.rsplit(",", 1)
        print(json.dumps(measure(path, stream == "1")))
        return
    load_before = load_note()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for factor, stream in [(1, True), (4, True), (4, False)]:
            n = factor * args.rows
            path = Path(d) / f"data-{n}.parquet"
            size = path.stat().st_size if path.exists() else write_parquet(path, n)
            out = subprocess.run(
                [sys.executable, "-m", "bench.streaming", "--one", f"{path},{int(stream)}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            r |= {"n": n, "file": size, "stream": stream, "array": n * (N_FEATURES + 1) * 4}
            print(r, flush=True)
            rows.append(r)
    lines = [
        f"SGDClassifier, 2 trials in flight, 2 epochs, batch_size {BATCH:,}; Parquet of "
        f"{N_FEATURES} float32 features + an int64 label. {load_before} before, "
        f"{load_note()} after (other jobs share the 2 cores).",
        "",
        "| rows | file | as float32 arrays | stream | peak PSS while trials run "
        "| peak PSS, whole run | best valid_accuracy | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {gib(r['file'])} | {gib(r['array'])} | {r['stream']} "
            f"| {gib(r['peak_trials'])} | {gib(r['peak'])} | {r['accuracy']:.3f} "
            f"| {r['seconds']:.0f} |"
        )
    lines += [
        "",
        "Streamed, memory does not grow with the rows: each trial holds one batch (and one "
        "Parquet row group) and the validation rows (at most 50,000, tuner.data._stream.VALID_ROWS) plus a 50,000-row "
        "training sample. PSS summed over the driver and every Ray process.",
        "",
        f"Command: `python -m bench.streaming --rows {args.rows} --out bench/RESULTS.md`",
    ]
    publish(args.out, "Memory: streamed Parquet sweep, 1x vs 4x the rows", lines)


if __name__ == "__main__":
    main()
