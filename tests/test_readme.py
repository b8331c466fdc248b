"""Every snippet of README.md runs, or is checked as far as it can be here: documented
examples are tests (Typer's habit, tests/test_tutorial/ there).

- python blocks run, twice, in a temporary folder (the SQLite file they name lands
  there), on the session's local Ray;
- yaml blocks load and validate as specs; a fragment (a trainer, the objectives, the
  limits) is validated inside the README's own full spec;
- every `tuner ...` line (shell blocks and the CLI synopsis) names a real command and
  only flags that command's --help lists; the spec-error example is run for real;
- `pip install` extras exist in pyproject.toml and `make` targets in the Makefile.

A block of a kind none of these checks handles fails test_every_block_is_checked, so a
new snippet cannot go untested.
"""

from __future__ import annotations

import re
import runpy
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import tuner
from tuner.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b")


def blocks(lang: str | None = None) -> list[str]:
    """The README's fenced blocks (of language ``lang`` if given), in order."""
    found = [(m.group(1), m.group(2)) for m in FENCE.finditer(README.read_text())]
    return [text for kind, text in found if lang is None or kind == lang]


def tuner_commands(kinds: tuple[str, ...] = ("bash", "")) -> list[str]:
    """Every `tuner ...` command the README shows: in shell blocks (one a line, after
    any `$ `) and in the CLI synopsis (several a line, two spaces apart; a line that
    starts with spaces continues the one above)."""
    commands: list[str] = []
    for text in [t for kind in kinds for t in blocks(kind)]:
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].rstrip()
            if raw.startswith(" ") and commands and line.strip().startswith("["):
                commands[-1] += " " + line.strip()
                continue
            line = line.strip().removeprefix("$ ")
            for part in re.split(r"\s{2,}(?=tuner )", line):
                if part.startswith("tuner "):
                    commands.append(part)
    return commands


def _help(command: str) -> str:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, f"`tuner {command}` is not a command: {result.output}"
    return ANSI.sub("", result.output)


def test_every_block_is_checked() -> None:
    kinds = [m.group(1) for m in FENCE.finditer(README.read_text())]
    assert set(kinds) <= {"python", "yaml", "bash", ""}, kinds
    # the API's quick start, the trial's identity, a trial that saves checkpoints
    assert kinds.count("python") == 3
    # the plain blocks: the CLI synopsis, the spec-error example and the layout
    assert sum(text.lstrip().startswith(("tuner ", "$ tuner ")) for text in blocks("")) == 2
    assert sum(text.lstrip().startswith("tuner/ ") for text in blocks("")) == 1
    assert len(blocks("")) == 3


def test_the_layout_block_names_the_folders_that_are_there() -> None:
    (layout,) = [text for text in blocks("") if text.lstrip().startswith("tuner/ ")]
    folders = [line.split()[0] for line in layout.splitlines() if line[:1].strip()]
    assert folders == [
        "tuner/", "search_spaces/", "dashboard/", "examples/", "bench/", "tests/", "docs/"
    ]  # fmt: skip
    assert all((README.parent / folder).is_dir() for folder in folders)


# ---------------------------------------------------------------------- python


@pytest.mark.parametrize(
    ("index", "names"),
    [
        # a trial's function (tests/test_output.py runs one like it in real trials)
        (1, {"current_trial", "report"}),
        # one that saves checkpoints and goes on from one (tests/test_checkpoints.py)
        (2, {"get_checkpoint", "report"}),
    ],
)
def test_a_trial_snippet_compiles_and_uses_only_tuners_public_names(
    index: int, names: set[str]
) -> None:
    """The second and third blocks are a trial's function: each compiles, and every
    `tuner.X` it uses is exported."""
    import ast

    tree = ast.parse(blocks("python")[index])
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "tuner"
    }
    assert used == names
    assert used <= set(tuner.__all__)
    namespace: dict[str, Any] = {}
    exec(compile(tree, "README.md", "exec"), namespace)
    assert callable(namespace["objective"])


@pytest.mark.integration
def test_the_python_snippet_runs_and_runs_again(
    ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    code = blocks("python")[0]
    monkeypatch.chdir(tmp_path)  # its sqlite:///tuner.db
    script = tmp_path / "readme_snippet.py"
    script.write_text(code)
    for run in (1, 2):
        # as `python readme_snippet.py`: the study stores the function as
        # __main__:objective, which resume() imports again
        runpy.run_path(str(script), run_name="__main__")
        out = capsys.readouterr().out
        # what a user wants to see: the best trial, then the trials
        assert re.search(r"best trial #\d+: loss=\d\.\d{4} params=\{'lr': ", out), (run, out)
        assert "params.width" in out, (run, out)
    study = tuner.load_study("api-quickstart", storage="sqlite:///tuner.db")
    trials = study.trials()
    # the second run loads the stored study (load_if_exists) and adds num_trials
    # more; resume() after each finds nothing left to run
    assert len(trials) == 20
    assert {t.state for t in trials} <= {"completed", "pruned"}
    assert (tmp_path / "tuner.db").exists()


# ---------------------------------------------------------------------- yaml


def _full_specs() -> list[dict[str, Any]]:
    return [d for d in map(yaml.safe_load, blocks("yaml")) if "name" in d]


def test_the_yaml_snippets_are_valid_specs() -> None:
    full = _full_specs()
    assert full, "the README shows no full spec"
    base = full[0]
    for text in blocks("yaml"):
        data = yaml.safe_load(text)
        assert isinstance(data, dict), text
        if "name" not in data:
            # a fragment: the README's own spec with these keys in place of its own
            data = {**base, **data}
            if "objectives" in data:
                data.pop("metric"), data.pop("mode")
            if data["trainer"]["kind"] == "sklearn":  # its own parameter names
                data["metric"], data["mode"] = "valid_accuracy", "max"
        # any mistake is a SpecError naming the key, which fails the test with it
        tuner.load_spec(data)


# ---------------------------------------------------------------------- shell


def test_every_tuner_line_uses_a_real_command_and_its_flags() -> None:
    """Flags are checked against each command's --help; the commands are not run
    (they need `make demo`'s study, a cluster address or a Ray job server)."""
    commands = tuner_commands()
    shown = {c.split()[1] for c in commands}
    # the synopsis covers the commands that exist
    assert shown >= {
        "run", "resume", "stop", "delete", "list", "show", "best", "export", "dashboard",
        "submit", "logs",
    }  # fmt: skip
    helps: dict[str, str] = {}
    for command in commands:
        name = command.split()[1]
        text = helps.setdefault(name, _help(name))
        for flag in FLAG.findall(command):
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), (
                f"README shows `{command}` but `tuner {name} --help` has no {flag}"
            )


def test_the_synopsis_shows_run_and_resume_options() -> None:
    synopsis = tuner_commands(("",))
    run = next(c for c in synopsis if c.startswith("tuner run SPEC.yaml "))
    resume = next(c for c in synopsis if c.startswith("tuner resume "))
    for flag in ("--verbose", "--no-progress", "--storage"):
        assert flag in run and flag in resume


def test_the_spec_error_example_is_what_tuner_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (example,) = [t for t in blocks("") if t.startswith("$ tuner run ")]
    command, shown = example.strip().splitlines()
    bad = {**_full_specs()[0]}
    bad["search_space"] = {**bad["search_space"],
                           "eta": {"type": "float", "low": 0.5, "high": 0.1}}  # fmt: skip
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, shlex.split(command.removeprefix("$ tuner ")))
    assert result.exit_code == 2
    assert result.output.strip() == shown


def test_install_and_make_lines_name_what_exists() -> None:
    """pip's extras and make's targets; not run (they install, and the demo trains)."""
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ])  # fmt: skip
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    pip = make = 0
    for text in blocks("bash"):
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("pip install"):
                pip += 1
                for group in re.findall(r"\[([\w,]+)\]", line):
                    assert set(group.split(",")) <= extras, line
            elif line.startswith("make "):
                make += 1
                assert line.split()[1] in targets, line
    assert pip >= 4 and make >= 2
