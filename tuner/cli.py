"""The `tuner` command.

Exit status: 0 done, 1 the study failed, 2 bad input (spec, storage URL, study name).
Errors print one line on stderr; no traceback reaches the user for a bad input.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from tuner._defaults import DEFAULT_STORAGE, STORAGE_ENV

if TYPE_CHECKING:
    from rich.console import Console

    from tuner.storage import TrialState
    from tuner.study import Study

app = typer.Typer(
    name="tuner",
    help="Distributed hyperparameter tuning: Ray Tune trials, Optuna samplers, results in SQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help=f"SQLAlchemy URL of the database [default: ${STORAGE_ENV}, then {DEFAULT_STORAGE}]",
        show_default=False,
    ),
]
F = TypeVar("F", bound=Callable[..., Any])
NameArg = Annotated[str, typer.Argument(help="the study's name", show_default=False)]


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output keeps whole rows: tables wrapped at 80 columns are hard to grep.
    width = None if stream.isatty() else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def _errors(fn: F) -> F:
    """Turn tuner's errors into one line on stderr and the documented exit status."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from tuner.exceptions import StudyFailedError, StudyInterrupted, TunerError

        try:
            return fn(*args, **kwargs)
        except StudyInterrupted as e:
            _console(stderr=True).print(f"interrupted: {e}", markup=False)
            raise typer.Exit(128 + e.signum) from None
        except KeyboardInterrupt:
            # Ctrl+C outside a run (a command, or a study being created): one line, 130.
            _console(stderr=True).print("interrupted: stopped by SIGINT", markup=False)
            raise typer.Exit(130) from None
        except StudyFailedError as e:
            _console(stderr=True).print(f"error: {e}", markup=False)
            raise typer.Exit(1) from None
        except TunerError as e:
            _console(stderr=True).print(f"error: {e}", markup=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _load(name: str, storage: str | None) -> Study:
    from tuner.study import load_study

    return load_study(name, storage=storage)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "-" if value is None else str(value)


@app.command()
@_errors
def run(
    spec: Annotated[Path, typer.Argument(help="the study spec (YAML)", show_default=False)],
    storage: StorageOpt = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster: auto or ray://host:10001 [default: local]")
    ] = None,
    num_trials: Annotated[int | None, typer.Option(help="override search.num_trials")] = None,
    name: Annotated[str | None, typer.Option(help="override the study's name")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    verbose: Annotated[bool, typer.Option(help="show Ray's logs and the trials' output")] = False,
) -> None:
    """Create a study from SPEC and run it."""
    from tuner.exceptions import SpecError, StudyExistsError
    from tuner.spec import load_spec
    from tuner.study import create_study, resolve_storage_url

    overrides = {"name": name, "search.num_trials": num_trials, "resources.address": address}
    validated = load_spec(spec, overrides)
    try:
        study = create_study(validated, storage=storage)
    except StudyExistsError:
        taken = validated.name
        where = _mask(resolve_storage_url(storage, validated))
        raise StudyExistsError(
            f"a study named {taken!r} already exists in {where}: continue it with `tuner resume {taken}`, "
            f"run this spec under another name with --name, or delete it with "
            f"`tuner delete {taken}`"
        ) from None
    try:
        err = _console(stderr=True)
        started = time.monotonic()
        study.run(
            progress=progress and sys.stderr.isatty(),
            verbose=verbose,
            on_start=lambda: err.print(
                f"study {study.name}: {_mask(study.storage.url)}", markup=False
            ),
        )
    except KeyboardInterrupt:  # before the run could catch it: stored, nothing ran
        raise study.interrupted_before_start() from None
    except SpecError as e:
        raise e.with_source(e.source or str(spec)) from None  # name the file, as load does
    _summary(study, time.monotonic() - started)


@app.command()
@_errors
def submit(
    spec: Annotated[Path, typer.Argument(help="the study spec (YAML)", show_default=False)],
    address: Annotated[
        str | None,
        typer.Option(help="the head node's job server, http://HEAD:8265 [$RAY_API_SERVER_ADDRESS]"),
    ] = None,
    storage: StorageOpt = None,
    num_trials: Annotated[int | None, typer.Option(help="override search.num_trials")] = None,
    name: Annotated[str | None, typer.Option(help="override the study's name")] = None,
    follow: Annotated[bool, typer.Option(help="print the study's output until it ends")] = False,
) -> None:
    """Run the study on a Ray cluster as a Ray job: uploads the spec's folder, prints the
    job id and returns (the database must be one the cluster reaches, e.g. PostgreSQL)."""
    from tuner import _jobs

    overrides = {"name": name, "search.num_trials": num_trials}
    study, job_id = _jobs.submit(spec, address, storage, overrides)
    server = _jobs.job_address(address)
    err = _console(stderr=True)
    err.print(f"submitted study {study} as Ray job {job_id} to {server}", markup=False)
    typer.echo(job_id)
    if follow:
        raise typer.Exit(_jobs.wait(job_id, server, stream=True))
    err.print(f"follow it: tuner logs {study} --follow | stop it: tuner stop {study}", markup=False)


@app.command()
@_errors
def logs(
    name: NameArg,
    address: Annotated[
        str | None,
        typer.Option(help="the head node's job server, http://HEAD:8265 [$RAY_API_SERVER_ADDRESS]"),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing until it ends")
    ] = False,
    trial: Annotated[
        int | None,
        typer.Option(help="print what trial N wrote (from the database; local or submitted)"),
    ] = None,
    storage: StorageOpt = None,
) -> None:
    """Print the output of a submitted study's driver (its latest Ray job), or with
    --trial N what trial N of any study wrote to stdout and stderr (the last 64 KiB of
    each attempt)."""
    if trial is not None:
        raise typer.Exit(_trial_logs(name, storage, trial, follow=follow))
    from tuner import _jobs

    raise typer.Exit(_jobs.logs(name, address, follow=follow))


def _trial_logs(name: str, storage: str | None, number: int, *, follow: bool) -> int:
    """Print trial `number`'s output; with `follow`, what it adds until it ends."""
    from tuner.exceptions import StorageError

    study = _load(name, storage)
    numbers = [t.number for t in study.trials()]
    if number not in numbers:
        have = f"0-{max(numbers)}" if numbers else "none yet"
        raise StorageError(f"study {name!r} has no trial {number} (its trials: {have})")
    shown: dict[int, str] = {}  # attempt -> its output as printed so far
    while True:
        # Read the state first: output still arrives as a trial ends.
        ended = not follow or _trial_state(study, number) != "running"
        outputs = study.trial_output(number)
        several = len(outputs) > 1 or any(o.attempt > 1 for o in outputs)
        for out in outputs:
            before = shown.get(out.attempt)
            if before is None and several:
                sys.stdout.write(f"--- trial {number}, attempt {out.attempt} ---\n")
            if before is None and out.truncated:
                sys.stdout.write("[... earlier output dropped: the last 64 KiB are kept]\n")
            sys.stdout.write(_new_part(before or "", out.text))
            shown[out.attempt] = out.text
        sys.stdout.flush()
        if ended:
            break
        time.sleep(1.0)
    if not any(shown.values()):
        _console(stderr=True).print(f"trial {number} of study {name} wrote nothing", markup=False)
    return 0


def _new_part(before: str, now: str) -> str:
    """What `now` adds to `before`, where the storage may have dropped the start of
    both (it keeps the last 64 KiB)."""
    if now.startswith(before):
        return now[len(before) :]
    anchor = before[-256:]
    at = now.rfind(anchor) if anchor else -1
    return now[at + len(anchor) :] if at >= 0 else now


def _trial_state(study: Study, number: int) -> str:
    return next(str(t.state) for t in study.trials() if t.number == number)


@app.command()
@_errors
def resume(
    name: NameArg,
    storage: StorageOpt = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    verbose: Annotated[bool, typer.Option(help="show Ray's logs and the trials' output")] = False,
    num_trials: Annotated[
        int | None,
        typer.Option(help="the study's trials in total: extends a finished study", min=1),
    ] = None,
) -> None:
    """Finish an interrupted study: finished trials are kept, none is run again.
    With --num-trials, run a finished study on to that many trials in total."""
    study = _load(name, storage)
    if num_trials is None and study.status == "completed":
        n = study.finished_trials()
        _console().print(
            f"study {name} is already completed ({n} trials); run more with "
            f"`tuner resume {name} --num-trials N` (N in total, more than {n})",
            markup=False,
        )
        return
    started = time.monotonic()
    study.resume(progress=progress and sys.stderr.isatty(), verbose=verbose, num_trials=num_trials)
    _summary(study, time.monotonic() - started)


def _summary(study: Study, seconds: float) -> None:
    out = _console()
    outcome = study.last_outcome
    counts = outcome.counts if outcome else {}
    parts = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    out.print(
        f"study {study.name}: {outcome.status if outcome else study.status} "
        f"({parts or 'no trials'}) in {seconds:.1f} s",
        markup=False,
    )
    if study.spec.is_multi_objective:
        front = study.best_trials
        if front:
            out.print(
                f"Pareto set: {len(front)} trials ({_numbers(front)}); tuner best {study.name}",
                markup=False,
            )
    else:
        best = study.best_trial
        if best is not None:
            out.print(
                f"best trial #{best.number}: {study.spec.metric}={_fmt(best.value)}  "
                + "  ".join(f"{k}={_fmt(v)}" for k, v in best.params.items()),
                markup=False,
            )
    note = study.feasibility_note()
    if note:
        out.print(note, markup=False)
    if outcome and outcome.first_error:
        out.print(f"first failure: {outcome.first_error}", markup=False)
    out.print(
        f"look closer: tuner show {study.name} | tuner export {study.name} --format csv"
        " | tuner dashboard",
        markup=False,
    )


@app.command()
@_errors
def stop(
    name: NameArg,
    storage: StorageOpt = None,
) -> None:
    """Ask the process running a study to stop it (its running trials end as stopped)."""
    study = _load(name, storage)
    status = study.status
    if status in ("completed", "failed", "stopped"):
        _console().print(f"study {name} is already {status}: nothing to stop", markup=False)
        return
    study.stop()
    _console().print(
        f"asked study {name} to stop; `tuner resume {name}` carries it on later", markup=False
    )


@app.command()
@_errors
def delete(
    name: NameArg,
    storage: StorageOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Delete a study, all its trials and its files in the artifacts store."""
    study = _load(name, storage)
    n = len(study.trials())
    if not yes and not typer.confirm(f"delete study {name} and its {n} trials?", default=False):
        _console(stderr=True).print("nothing deleted", markup=False)
        raise typer.Exit(1)
    left = study.delete()
    _console().print(f"deleted study {name} ({n} trials)", markup=False)
    for line in left:
        _console(stderr=True).print(f"warning: {line}", markup=False)


@app.command("list")
@_errors
def list_(storage: StorageOpt = None) -> None:
    """List the studies in the storage."""
    from rich.table import Table

    from tuner.storage import TrialState
    from tuner.study import open_existing, resolve_storage_url

    summaries = open_existing(resolve_storage_url(storage)).list_studies()
    if not summaries:
        _console().print("no studies yet: run one with `tuner run SPEC.yaml`", markup=False)
        return
    table = Table(box=None)
    for col in ("name", "status", "algorithm", "scheduler", "trials", "best", "created"):
        table.add_column(col)
    for s in summaries:
        c = s.trial_counts
        trials = "/".join(
            str(c.get(k, 0))
            for k in (
                TrialState.COMPLETED,
                TrialState.PRUNED,
                TrialState.FAILED,
                TrialState.RUNNING,
            )
        )
        table.add_row(
            s.study.name,
            s.study.status,
            s.study.algorithm,
            s.study.scheduler,
            trials,
            _fmt(s.best_value),
            s.study.created_at.strftime("%Y-%m-%d %H:%M"),
            end_section=False,
        )
    out = _console()
    out.print(table, markup=False)
    out.print("trials: completed/pruned/failed/running", markup=False, style="dim")


@app.command()
@_errors
def show(
    name: NameArg,
    storage: StorageOpt = None,
    limit: Annotated[int, typer.Option(help="most trials to list (0: all)")] = 50,
) -> None:
    """Show a study and its trials."""
    from rich.table import Table

    study = _load(name, storage)
    spec = study.spec
    trials = study.trials()
    out = _console()
    counts: dict[TrialState, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    goals = ", ".join(
        f"{mode} {m}" for m, mode in zip(spec.objective_metrics, spec.objective_modes, strict=True)
    )
    out.print(
        f"study {study.name}  status {study.status}  {goals}  "
        f"search {study.algorithm}  early stopping {spec.early_stopping.scheduler}",
        markup=False,
    )
    out.print(
        "trials: " + (", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none"),
        markup=False,
    )
    if spec.is_multi_objective:
        front = study.best_trials
        if front:
            out.print(f"Pareto set: {len(front)} trials ({_numbers(front)})", markup=False)
    else:
        best = study.best_trial
        if best is not None:
            out.print(f"best: trial #{best.number} {spec.metric}={_fmt(best.value)}", markup=False)
    note = study.feasibility_note()
    if note:
        out.print(note, markup=False)
    params = list(spec.search_space)
    objectives = spec.objective_metrics
    # With constraints, whether each finished trial met them.
    feasible = ["feasible"] if spec.constraints else []
    table = Table(box=None)
    for col in ("#", "state", *objectives, *feasible, "steps", "duration", *params, "error"):
        table.add_column(col, overflow="fold")
    shown = trials if limit <= 0 else trials[-limit:]
    for t in shown:
        err = (t.error or "").splitlines()[0][:80] if t.error else ""
        values: list[Any] = [t.value]
        if spec.is_multi_objective:
            values = list(t.values) if t.values else [None] * len(objectives)
        table.add_row(
            str(t.number),
            t.state,
            *[_fmt(v) for v in values],
            *(["" if t.feasible is None else ("yes" if t.feasible else "no")] if feasible else []),
            str(t.steps),
            "-" if t.duration_s is None else f"{t.duration_s:.1f}s",
            *[_fmt(t.params[p]) if p in t.params else "" for p in params],
            err,
        )
    out.print(table, markup=False)
    if len(shown) < len(trials):
        out.print(
            f"({len(trials) - len(shown)} earlier trials not shown; --limit 0 for all)",
            markup=False,
        )


@app.command()
@_errors
def best(
    name: NameArg,
    storage: StorageOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Print the best completed, feasible trial of a study (several objectives: every
    trial of the Pareto set)."""
    study = _load(name, storage)
    if study.spec.is_multi_objective:
        _best_trials(study, as_json)
        return
    trial = study.best_trial
    if trial is None:
        note = study.feasibility_note() or f"study {name} has no completed trial yet"
        _console(stderr=True).print(note, markup=False)
        raise typer.Exit(1)
    if as_json:
        payload = {
            "number": trial.number,
            "value": trial.value,
            "params": trial.params,
            "metrics": trial.metrics,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    out = _console()
    out.print(f"trial #{trial.number}: {study.spec.metric}={_fmt(trial.value)}", markup=False)
    for k, v in trial.params.items():
        out.print(f"  {k} = {_fmt(v)}", markup=False)


def _numbers(trials: list[Any]) -> str:
    shown = ", ".join(f"#{t.number}" for t in trials[:10])
    return shown + (f", ... {len(trials) - 10} more" if len(trials) > 10 else "")


def _best_trials(study: Study, as_json: bool) -> None:
    """`tuner best` of a study with several objectives: the whole Pareto set."""
    front = study.best_trials
    if not front:
        note = study.feasibility_note() or f"study {study.name} has no completed trial yet"
        _console(stderr=True).print(note, markup=False)
        raise typer.Exit(1)
    metrics = study.spec.objective_metrics
    if as_json:
        payload = [
            {
                "number": t.number,
                "values": list(t.values or ()),
                "params": t.params,
                "metrics": t.metrics,
            }
            for t in front
        ]
        typer.echo(json.dumps(payload, indent=2))
        return
    out = _console()
    modes = ", ".join(
        f"{m} {mode}" for m, mode in zip(metrics, study.spec.objective_modes, strict=True)
    )
    out.print(f"Pareto set of {study.name}: {len(front)} trials ({modes})", markup=False)
    for t in front:
        values = "  ".join(f"{m}={_fmt(v)}" for m, v in zip(metrics, t.values or (), strict=False))
        params = "  ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
        out.print(f"trial #{t.number}: {values}  |  {params}", markup=False)


@app.command()
@_errors
def model(
    name: NameArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="folder to write the model's files to")
    ],
    trial: Annotated[
        int | None,
        typer.Option("--trial", help="the trial's number [default: the best trial]"),
    ] = None,
    storage: StorageOpt = None,
) -> None:
    """Copy a trial's model folder (the best completed, feasible trial's, or --trial N's)
    from the study's artifacts store to a folder."""
    from tuner.exceptions import TunerError

    study = _load(name, storage)
    if trial is not None:
        found = [t for t in study.trials() if t.number == trial]
        if not found:
            raise TunerError(f"study {name} has no trial {trial}")
        chosen = found[0]
    elif study.spec.is_multi_objective:
        front = study.best_trials
        hint = f"its Pareto set: {_numbers(front)}" if front else "no trial completed yet"
        raise TunerError(
            f"study {name} has several objectives, so no single best trial: pick one "
            f"with --trial N ({hint})"
        )
    else:
        best = study.best_trial
        if best is None:
            note = study.feasibility_note() or f"study {name} has no completed trial yet"
            raise TunerError(note)
        chosen = best
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise TunerError(f"-o {output} is not an empty folder: give a new or empty one")
    folder = chosen._fetch_model(output)
    _console(stderr=True).print(
        f"wrote the model of trial #{chosen.number} to {folder}", markup=False
    )


@app.command()
@_errors
def export(
    name: NameArg,
    format: Annotated[str, typer.Option("--format", "-f", help="csv, json or parquet")] = "csv",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write")] = None,
    storage: StorageOpt = None,
) -> None:
    """Export a study's trials as csv, json or parquet."""
    from tuner._export import FORMATS
    from tuner._export import export as export_
    from tuner.exceptions import TunerError

    if format not in FORMATS:
        raise TunerError(f"--format must be one of {', '.join(FORMATS)} (got {format!r})")
    if format == "parquet" and output is None:
        raise TunerError("--format parquet writes a binary file: give it one with -o FILE")
    text = export_(_load(name, storage), format, output)
    if text is not None:
        typer.echo(text)
    else:
        _console(stderr=True).print(f"wrote {output}", markup=False)


@app.command()
@_errors
def dashboard(
    storage: StorageOpt = None,
    host: Annotated[
        str, typer.Option(help="address to listen on; 0.0.0.0 exposes it to the network")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8501,
) -> None:
    """Start the dashboard: a Streamlit app that reads the storage and never writes it."""
    import os

    from tuner.exceptions import TunerError
    from tuner.storage import parse_storage_url
    from tuner.study import resolve_storage_url

    url = resolve_storage_url(storage)
    parse_storage_url(url)  # a malformed URL is one line and exit 2, before Streamlit starts
    if not 0 < port < 65536:
        raise TunerError(f"--port must be between 1 and 65535 (got {port})")
    app_path = _dashboard_app()
    if not _has_module("streamlit"):
        raise TunerError("the dashboard needs streamlit and plotly: pip install 'tuner[dashboard]'")
    argv = [
        sys.executable, "-m", "streamlit", "run", str(app_path),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    # The URL goes by environment, not argv: a password in it stays out of `ps`.
    os.environ["TUNER_DASHBOARD_STORAGE"] = url
    _console(stderr=True).print(
        f"dashboard of {_mask(url)} on http://{host}:{port} (read-only)", markup=False
    )
    sys.stderr.flush()
    # Replace this process, so stopping `tuner dashboard` stops Streamlit too.
    os.execv(sys.executable, argv)


def _dashboard_app() -> Path:
    """The Streamlit script, ``tuner/dashboard/app.py``: part of the tuner package, so an
    installed wheel and a source checkout find it the same way."""
    from tuner.dashboard import APP_PATH
    from tuner.exceptions import TunerError

    if not APP_PATH.is_file():
        raise TunerError(f"the dashboard app is missing ({APP_PATH}): reinstall tuner")
    return APP_PATH


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _mask(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    """Entry point of the `tuner` script."""
    app()


if __name__ == "__main__":
    main()
