"""tuner as a user gets it from `pip install`: a wheel, a fresh virtual environment, a
folder that is not the checkout.

The wheel is built from the tracked files only (as from a fresh clone) and installed
without dependencies into a new venv; the venv sees the dependencies already installed
for the tests through a path file (site-packages of this interpreter, whose own .pth
files, including an editable install of this checkout, are not processed there). So
what is tested is the wheel's own contents and metadata, without downloading anything.
"""

from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tuner.dashboard._testing import running_dashboard

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tuner's wheel, built from the files git tracks."""
    src = tmp_path_factory.mktemp("src")
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(src)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (found,) = out.glob("tuner-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns its bin/ folder."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=False, symlinks=True)
    bindir = env_dir / "bin"
    purelib = Path(
        subprocess.run(
            [str(bindir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    # The dependencies of the test environment, without its .pth files (so no editable
    # install of this checkout), after the venv's own site-packages.
    (purelib / "_tuner_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(bindir / "python"), "install", "-q",
         "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return bindir


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RAY_", "TUNER_"))}
    env["RAY_ADDRESS"] = ""  # never join the test session's own Ray
    return env


def test_pyproject_lists_every_package_and_maps_the_root_folders_into_tuner() -> None:
    # The package list is explicit (discovery cannot rename dashboard/ to tuner.dashboard):
    # a package under tuner/ missing from it would be missing from the wheel.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "tuner").rglob("__init__.py")
    }
    mapped = {"tuner.dashboard": "dashboard", "tuner.search_spaces": "search_spaces"}
    assert set(config["packages"]) == on_disk | set(mapped), "update [tool.setuptools] packages"
    assert config["package-dir"] == mapped
    for folder in mapped.values():
        assert (ROOT / folder / "__init__.py").is_file()
        assert not (ROOT / "tuner" / folder).exists(), f"tuner/{folder} would shadow {folder}/"


def test_the_tests_import_this_checkout_including_the_mapped_folders() -> None:
    # `make install` installs the checkout in editable mode; setuptools' editable finder
    # must map tuner.dashboard and tuner.search_spaces to the root folders, or the tests
    # would exercise another copy (a stale install) without noticing.
    import tuner.dashboard
    import tuner.search_spaces

    assert Path(tuner.__file__).resolve().parent == ROOT / "tuner"
    assert Path(tuner.dashboard.__file__).resolve().parent == ROOT / "dashboard"
    assert tuner.dashboard.APP_PATH == ROOT / "dashboard" / "app.py"
    assert tuner.search_spaces.DIRECTORY == ROOT / "search_spaces"


def test_the_wheel_ships_the_search_spaces_and_the_dashboard_under_tuner(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(zf.read(meta_name))
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"tuner"}, f"the wheel installs more than the tuner package: {top_level}"
    spaces = {Path(n).stem for n in names if n.startswith("tuner/search_spaces/")}
    assert {"xgboost", "random_forest", "sgd", "pca_pipeline"} <= spaces
    assert "tuner/dashboard/app.py" in names
    assert "tuner/dashboard/icon.svg" in names  # the tab icon, never fetched from a CDN
    # Only the files themselves: the root folders are not shipped a second time.
    assert not any(n.startswith(("dashboard/", "search_spaces/")) for n in names)
    assert "tuner/storage/migrations/versions/0001_initial.py" in names

    assert set(metadata.get_all("Provides-Extra") or []) >= {"dashboard", "gp", "all"}
    base = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    # Parsed as PEP 508 requirements: a name may be followed by any specifier (<, ~=, !=).
    base_names = {Requirement(r).name for r in base}
    # A user who tunes from Python needs neither the dashboard's stack nor torch.
    assert not base_names & {"streamlit", "plotly", "torch", "playwright"}, base_names
    assert {"ray", "optuna", "xgboost", "sqlalchemy"} <= base_names


@pytest.mark.integration
def test_an_installed_tuner_runs_a_named_search_space_and_its_dashboard(
    installed: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    env = _clean_env()
    where = subprocess.run(
        [str(installed / "python"), "-c",
         "import tuner, tuner.dashboard, tuner.search_spaces; print(tuner.__file__); "
         "print(tuner.dashboard.APP_PATH); print(tuner.search_spaces.DIRECTORY)"],
        cwd=elsewhere, env=env, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert all(str(installed.parent) in p for p in where), f"not imported from the venv: {where}"

    (elsewhere / "study.yaml").write_text(
        "name: installed\n"
        "metric: valid_logloss\n"
        "trainer:\n"
        "  kind: xgboost\n"
        "  objective: binary:logistic\n"
        "  eval_metric: logloss\n"
        "  max_rounds: 5\n"
        "  dataset: {source: sklearn, name: breast_cancer}\n"
        "search_space: xgboost\n"
        "search: {algorithm: random, num_trials: 2, max_concurrent: 1}\n"
    )
    db = f"sqlite:///{elsewhere / 'tuner.db'}"
    run = subprocess.run(
        [str(installed / "tuner"), "run", "study.yaml", "--storage", db, "--no-progress"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    exported = subprocess.run(
        [str(installed / "tuner"), "export", "installed", "--format", "json", "--storage", db],
        cwd=elsewhere, env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    trials = json.loads(exported)
    assert [t["state"] for t in trials] == ["completed", "completed"]
    # The named space's parameters reached the trials (eta is in search_spaces/xgboost.yaml).
    assert all("eta" in t["params"] and "min_child_weight" in t["params"] for t in trials)

    with (
        running_dashboard(db, tuner=installed / "tuner", env=env, cwd=elsewhere) as base,
        urllib.request.urlopen(base + "/_stcore/health", timeout=10) as response,
    ):
        assert response.status == 200
        assert response.read().decode().strip() == "ok"
