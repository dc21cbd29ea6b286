"""YAML files that people edit (import mappings, identity rules, campaigns), read
with the line of every key, so each problem is reported where it is written:
``rules.yml, line 9: unknown key 'uniqe' in types.email; accepted: unique, ...``.
"""

import types
import typing
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from core.errors import InvalidInputError

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]
Lines = dict[Loc, int]


class YamlFileError(InvalidInputError):
    """A file that cannot be used, with every problem and its line."""

    code = "invalid_file"

    def __init__(
        self,
        name: str,
        problems: list[tuple[int, str]],
        *,
        loc: list[str] | None = None,
    ) -> None:
        self.problems = [f"{name}, line {line}: {reason}" for line, reason in problems]
        super().__init__("\n".join(self.problems), loc=loc or ["body"])


def load_model(
    text: str, model: type[M], *, name: str, error: type[YamlFileError] = YamlFileError
) -> tuple[M, Lines]:
    """The file's content as ``model``, with the line of every key, or ``error``
    naming each problem and its line."""
    tree, lines = compose(text, name, error=error)
    return validate(tree, lines, model, name=name, error=error), lines


def validate(
    tree: Any, lines: Lines, model: type[M], *, name: str,
    error: type[YamlFileError] = YamlFileError,
) -> M:  # fmt: skip
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        problems = [_problem(model, e, lines) for e in exc.errors()]
        raise error(name, problems) from None


def compose(
    text: str, name: str, *, error: type[YamlFileError] = YamlFileError
) -> tuple[Any, Lines]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise error(name, [(line, f"not valid YAML: {exc.problem}")]) from None
    if node is None:
        raise error(name, [(1, "the file is empty")])
    if _has_alias(node):
        # Aliases can make a small file expand without bound (a "billion laughs").
        raise error(name, [(1, "anchors and aliases (& and *) are not supported")])
    lines: dict[Loc, int] = {(): node.start_mark.line + 1}
    problems: list[tuple[int, str]] = []
    tree = _plain(node, (), lines, problems)
    if problems:
        raise error(name, problems)
    return tree, lines


def _plain(
    node: Node, loc: Loc, lines: dict[Loc, int], problems: list[tuple[int, str]]
) -> Any:
    """Plain Python values from a node, noting the line of every key and item."""
    if isinstance(node, MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            # Keys are names: `on:` or `no:` stay text, not YAML 1.1 booleans.
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str):
                problems.append((line, "a key must be a plain name"))
                continue
            if key in result:
                problems.append((line, f"key {key!r} is repeated"))
                continue
            lines[(*loc, key)] = line
            result[key] = _plain(value_node, (*loc, key), lines, problems)
        return result
    if isinstance(node, SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*loc, index)] = item.start_mark.line + 1
            items.append(_plain(item, (*loc, index), lines, problems))
        return items
    return SafeConstructor().construct_object(node)


def _problem(
    model: type[BaseModel], error: Any, lines: dict[Loc, int]
) -> tuple[int, str]:
    loc = tuple(error["loc"])
    where = ".".join(str(part) for part in loc)
    line = line_of(lines, loc)
    if error["type"] == "extra_forbidden":
        section = ".".join(str(part) for part in loc[:-1]) or "the mapping"
        accepted = ", ".join(_accepted_keys(model, loc[:-1]))
        return line, f"unknown key {loc[-1]!r} in {section}; accepted: {accepted}"
    if error["type"] == "missing":
        return line, f"{where} is required"
    return line, f"{where}: {error['msg']}, got {error['input']!r}"


def _accepted_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    current: type[BaseModel] | None = model
    for part in loc:
        field = current.model_fields.get(str(part)) if current else None
        current = _model_in(field.annotation) if field else None
    return list(current.model_fields) if current else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) in (
        typing.Union,
    ):
        found = [_model_in(arg) for arg in typing.get_args(annotation)]
        return next((m for m in found if m is not None), None)
    return None


def line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """The line of ``loc``, or of the nearest enclosing key when it is not written."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _has_alias(root: Node) -> bool:
    """Whether any node is reached twice: that is what an alias composes to."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return True
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return False
