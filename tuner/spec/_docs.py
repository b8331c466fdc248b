"""docs/spec.md, the reference of every spec key, generated from the pydantic models.

Each field's description is the string literal under it in :mod:`tuner.spec._model`;
types, defaults, bounds and allowed values come from the models themselves, so the
reference cannot drift from what the loader accepts (a test compares the file with
:func:`render`). Regenerate after changing the spec:

    python -m tuner.spec._docs docs/spec.md
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from tuner.spec._model import StudySpec

__all__ = ["render", "sections"]

_HEADER = """\
# Study spec reference

Generated from the spec's models by `python -m tuner.spec._docs docs/spec.md`; a test
fails when this file and the code disagree. The README shows whole specs; this page
lists every key. A spec is YAML (or a dict with the same keys in Python); a mistake in
one is a single line naming the file, the key path and what was expected.
"""


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold, in the order they are written."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        for model in _models_in(arg):
            if model not in found:
                found.append(model)
    return found


def _discriminator(model: type[BaseModel]) -> tuple[str, str] | None:
    """(field, value) for a model told apart by a one-value Literal (kind, type)."""
    for name in ("kind", "type"):
        field = model.model_fields.get(name)
        if field is not None and typing.get_origin(field.annotation) is Literal:
            values = typing.get_args(field.annotation)
            if len(values) == 1:
                return name, str(values[0])
    return None


def sections() -> Iterator[tuple[str, type[BaseModel]]]:
    """(key path, model) for the top level and every nested block, depth first."""

    def walk(
        path: str, model: type[BaseModel], tag: str = ""
    ) -> Iterator[tuple[str, type[BaseModel]]]:
        yield path + tag, model
        for name, field in model.model_fields.items():
            for sub in _models_in(field.annotation):
                key = f"{path}.{name}" if path else name
                if typing.get_origin(field.annotation) is dict:
                    key += ".NAME"
                found = _discriminator(sub)
                yield from walk(key, sub, f" ({found[0]}: {found[1]})" if found else "")

    seen: set[tuple[str, type[BaseModel]]] = set()
    for path, model in walk("", StudySpec):
        if (path, model) not in seen:
            seen.add((path, model))
            yield path, model


_SCALARS = {bool, int, float, str}


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return " | ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType) and set(args) >= _SCALARS:
        rest = [a for a in args if a not in _SCALARS]
        return " or ".join(["scalar", *(_type(a) for a in rest)])
    if origin is typing.Annotated:
        return _type(args[0])
    if origin in (typing.Union, types.UnionType):
        parts = [_type(a) for a in args if a is not type(None)]
        optional = type(None) in args
        text = " or ".join(dict.fromkeys(parts))
        return f"{text} or null" if optional else text
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"mapping of {_type(args[0])} to {_type(args[1])}"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        tag = _discriminator(annotation)
        return f"block ({tag[0]}: {tag[1]})" if tag else "block"
    if annotation is typing.Any:
        return "any"
    if callable(annotation) and not inspect.isclass(annotation):
        return "callable"
    return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "null")


def _bounds(field: FieldInfo) -> str:
    words = []
    for m in field.metadata:
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if isinstance(m, getattr(at, attr.capitalize())):
                words.append(f"{op} {getattr(m, attr)}")
        if isinstance(m, at.MinLen) and m.min_length > 0:
            words.append(f"at least {m.min_length}")
    # Bounds inside a union member (e.g. num_workers: int 1..1024 | "auto").
    for arg in typing.get_args(field.annotation):
        if typing.get_origin(arg) is typing.Annotated:
            for m in typing.get_args(arg)[1:]:
                if isinstance(m, FieldInfo):
                    words.append(_bounds(m))
    return ", ".join(w for w in words if w)


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "its defaults"
        return f"`{value!r}`" if value else "empty"
    if field.default is PydanticUndefined:
        return "**required**"
    if field.default is None:
        return "null"
    value = field.default
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def _cell(text: str, sentence: bool = False) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text[:1].upper() + text[1:] if sentence else text


def render() -> str:
    """The whole of docs/spec.md."""
    out = [_HEADER]
    for path, model in sections():
        key, _, tag = path.partition(" ")
        out.append(f"## `{key}` {tag}".rstrip() if path else "## Top level")
        doc = inspect.getdoc(model) or ""
        if path and doc:
            out.append(" ".join(doc.split("\n\n")[0].split()))
        out.append("")
        out.append("| key | type | default | |")
        out.append("|---|---|---|---|")
        for name, field in model.model_fields.items():
            kind = _type(field.annotation)
            bounds = _bounds(field)
            if bounds:
                kind += f" ({bounds})"
            out.append(
                f"| `{name}` | {_cell(kind)} | {_default(field)} | "
                f"{_cell(field.description or '', sentence=True)} |"
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tuner.spec._docs docs/spec.md", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
