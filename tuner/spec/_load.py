"""Loading a study spec from a YAML file, a dict or a StudySpec: the one way in."""

from __future__ import annotations

import copy
import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tuner.exceptions import SpecError
from tuner.spec._model import StudySpec, _PathError

# Built-in search spaces: the repository's search_spaces/ folder, installed as the
# tuner.search_spaces package, so an installed wheel finds them as a source checkout does.
# Imported by name: mypy cannot follow pyproject.toml's mapping of that folder.
BUILTIN_SEARCH_SPACES: Path = importlib.import_module("tuner.search_spaces").DIRECTORY


def load_spec(
    source: str | os.PathLike[str] | Mapping[str, Any] | StudySpec,
    overrides: Mapping[str, Any] | None = None,
) -> StudySpec:
    """Validate a study spec.

    Args:
        source: a path to a YAML file, a dict with the same keys, or a StudySpec.
        overrides: dotted keys to set before validation, e.g. ``{"search.num_trials": 5}``.
            ``None`` values are ignored.

    Returns:
        The validated spec. ``spec.base_dir`` is the spec file's folder (or the
        current folder), where a python trainer's module and ``search_spaces/`` are found.

    Raises:
        SpecError: naming the file, the key path and what was expected.
    """
    if isinstance(source, StudySpec) and not overrides:
        return source
    origin: str | None = None
    base_dir = Path.cwd()
    if isinstance(source, StudySpec):
        data: Any = source.model_dump(mode="python")
        base_dir = Path(source.base_dir)
    elif isinstance(source, Mapping):
        data = copy.deepcopy(dict(source))
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        origin = str(source)
        data = _read_yaml(path)
        base_dir = path.resolve().parent
    else:
        raise SpecError(
            f"a spec must be a YAML file path, a dict or a tuner.StudySpec "
            f"(got {type(source).__name__})"
        )
    try:
        if not isinstance(data, dict):
            raise SpecError(f"must be a mapping of keys (got {type(data).__name__})")
        for key, value in (overrides or {}).items():
            if value is not None:
                _set_dotted(data, key, value)
        if isinstance(data.get("search_space"), str):
            data["search_space"] = _named_search_space(data["search_space"], base_dir)
        spec = _validate(data)
    except SpecError as e:
        raise e.with_source(origin) from None
    spec._base_dir = str(base_dir)  # a private attribute: settable on the frozen model
    return spec


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such file; check the path", source=str(path)) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise SpecError(
            f"cannot read the file ({e.__class__.__name__})", source=str(path)
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or "not valid YAML"
        raise SpecError(f"{where}invalid YAML ({problem})", source=str(path)) from None


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            raise SpecError(f"must be a mapping (got {type(child).__name__})", keys[:-1])
        node = child
    node[keys[-1]] = value


def search_space_dirs(base_dir: Path) -> list[Path]:
    """Where `search_space: NAME` looks for NAME.yaml, first match wins."""
    return [base_dir / "search_spaces", Path.cwd() / "search_spaces", BUILTIN_SEARCH_SPACES]


def _named_search_space(name: str, base_dir: Path) -> Any:
    dirs = search_space_dirs(base_dir)
    for d in dirs:
        candidate = d / f"{name}.yaml"
        if candidate.is_file():
            data = _read_yaml(candidate)
            if not isinstance(data, dict):
                raise SpecError(f"{candidate} must be a mapping of parameters", ["search_space"])
            # A file may wrap its parameters in `search_space:` or list them directly.
            inner = data.get("search_space", data)
            return inner
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")})
    raise SpecError(
        f"no search space named {name!r} (known: {', '.join(known) or 'none'}); "
        f"add search_spaces/{name}.yaml or write the parameters inline",
        ["search_space"],
    )


def _validate(data: dict[str, Any]) -> StudySpec:
    try:
        return StudySpec.model_validate(data)
    except ValidationError as e:
        raise _to_spec_error(e, data) from None
    except _PathError as e:  # raised outside pydantic's wrapping
        raise SpecError(e.message, e.path) from None


def _to_spec_error(error: ValidationError, data: Any) -> SpecError:
    first = error.errors(include_url=False)[0]
    ctx_error = (first.get("ctx") or {}).get("error")
    path = _real_path(first["loc"], data)
    if isinstance(ctx_error, _PathError):  # raised by a model's own check: path is relative
        return SpecError(ctx_error.message, [*path, *ctx_error.path])
    kind = first["type"]
    given = first.get("input")
    if kind == "missing":
        message = "is required"
    elif kind == "extra_forbidden":
        message = "is not a known key; check its spelling against the docs"
    elif kind == "union_tag_invalid":
        ctx = first.get("ctx") or {}
        message = f"must be one of {ctx.get('expected_tags')} (got {ctx.get('tag')!r})"
    elif kind == "union_tag_not_found":
        message = f"needs {_lower(str((first.get('ctx') or {}).get('discriminator', 'a tag')))}"
    elif kind == "value_error":
        message = _lower(first["msg"].removeprefix("Value error, "))
    else:
        message = _lower(first["msg"])
        if not isinstance(given, dict | list):
            message += f" (got {given!r})"
    return SpecError(message, path)


def _real_path(loc: tuple[Any, ...], data: Any) -> list[str | int]:
    """Pydantic's location minus the union tags it inserts, by walking the input."""
    path: list[str | int] = []
    node = data
    for item in loc:
        if (isinstance(node, dict) and item in node) or (
            isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node)
        ):
            node = node[item]
        elif isinstance(node, dict) and item not in _UNION_TAGS:
            node = None  # a key the input lacks: a missing field
        else:
            continue  # a union tag, or a detail below a scalar
        path.append(item)
    return path


_UNION_TAGS = {
    "float",
    "int",
    "categorical",
    "python",
    "xgboost",
    "sklearn",
    "str",
    "bool",
    "callable",
}


def _lower(msg: str) -> str:
    return msg[:1].lower() + msg[1:] if msg else msg
