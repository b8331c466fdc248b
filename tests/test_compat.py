"""tuner._compat: every private Ray/Optuna name tuner touches is there, as tuner reads it.

An upgrade of Ray or Optuna that drops or reshapes one fails here, not in a user's run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tuner
from tuner import _compat
from tuner._compat import CHECKS, IncompatibleDependency, check

TUNER = Path(tuner.__file__).parent


@pytest.mark.parametrize("name", list(CHECKS))
def test_each_private_name_is_there_with_the_shape_tuner_reads(name):
    assert check(name) is None


def _private(dotted: str) -> bool:
    parts = dotted.split(".")
    return parts[0] in {"ray", "optuna"} and any(p.startswith("_") for p in parts[1:])


def private_touches(source: str) -> list[str]:
    """The private Ray/Optuna names a module's source imports or spells out (a module or
    logger name in a string)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if _private(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
            found += [n for n in names if _private(n)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [node.value] if " " not in node.value and _private(node.value) else []
    return found


def test_no_module_outside_compat_names_a_private_ray_or_optuna_name():
    touches = [
        f"{path.relative_to(TUNER.parent)}: {name}"
        for path in sorted(TUNER.rglob("*.py"))
        if "_compat" not in path.relative_to(TUNER).parts
        for name in private_touches(path.read_text())
    ]
    assert touches == []


def test_the_scan_sees_each_kind_of_private_touch():
    # The guard above must be able to fail.
    source = (
        "import ray._private.ray_constants\n"
        "from optuna.study._multi_objective import _is_pareto_front\n"
        "from optuna.samplers import _thing\n"
        "from optuna import samplers\n"
        "import logging\nlogging.getLogger('optuna.storages._in_memory')\n"
    )
    assert private_touches(source) == [
        "ray._private.ray_constants",
        "optuna.study._multi_objective._is_pareto_front",
        "optuna.samplers._thing",
        "optuna.storages._in_memory",
    ]


def test_a_missing_switch_is_one_line_naming_the_ray_version(monkeypatch):
    import ray

    from tuner._compat import ray as ray_compat

    monkeypatch.setattr(
        ray_compat, "check_single_machine_switch", lambda: "ENABLE_RAY_CLUSTER is missing"
    )
    with pytest.raises(IncompatibleDependency) as info:
        ray_compat.single_machine()
    message = str(info.value)
    assert message.startswith(f"ray {ray.__version__} differs from what tuner uses")
    assert "ENABLE_RAY_CLUSTER is missing" in message and "\n" not in message
    assert isinstance(info.value, tuner.TunerError)


def test_a_missing_constraints_key_fails_only_a_study_with_constraints(monkeypatch):
    import optuna

    from tuner._compat import optuna as optuna_compat

    assert optuna_compat.constraint_attrs([0.5]) == {"constraints:0": 0.5}
    monkeypatch.setattr(optuna_compat, "_constraints_key", lambda: None)
    assert optuna_compat.constraint_attrs([]) == {}
    with pytest.raises(IncompatibleDependency, match=f"optuna {optuna.__version__} differs"):
        optuna_compat.constraint_attrs([0.5])


def test_a_missing_hypervolume_routine_is_one_line(monkeypatch):
    from tuner._compat import optuna as optuna_compat

    monkeypatch.setattr(optuna_compat, "_hypervolume", lambda: None)
    assert optuna_compat.check_hypervolume() is not None
    with pytest.raises(IncompatibleDependency, match="compute_hypervolume"):
        optuna_compat.compute_hypervolume([[1.0]], [2.0], assume_pareto=True)


def test_the_compat_package_itself_imports_neither_ray_nor_optuna():
    tree = ast.parse(Path(_compat.__file__).read_text())
    imported = [
        n.module if isinstance(n, ast.ImportFrom) else n.names[0].name
        for n in tree.body
        if isinstance(n, ast.Import | ast.ImportFrom)
    ]
    assert not [m for m in imported if m and m.split(".")[0] in {"ray", "optuna"}]
