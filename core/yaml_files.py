"""YAML files that people edit (import mappings, identity rules, campaigns), read
with the line of every key, so each problem is reported where it is written:
``rules.yml, line 9: unknown key 'uniqe' in types.email; accepted: unique, ...``.
"""

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
        # A value that fits no branch of a union fails each branch: the first
        # branch's reason is the one written for people.
        unique = list(dict.fromkeys(problems))
        raise error(name, _first_per_place(unique)) from None


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
    raw = tuple(error["loc"])
    loc = _written(raw, lines, keep_last=error["type"] == "missing")
    where = ".".join(str(part) for part in loc)
    line = line_of(lines, loc)
    if error["type"] == "extra_forbidden":
        section = ".".join(str(part) for part in loc[:-1]) or "the mapping"
        accepted = ", ".join(_accepted_keys(model, raw[:-1]))
        return line, f"unknown key {loc[-1]!r} in {section}; accepted: {accepted}"
    if error["type"] == "missing":
        return line, f"{where} is required"
    return line, f"{where}: {error['msg']}, got {error['input']!r}"


def _written(loc: Loc, lines: Lines, *, keep_last: bool) -> Loc:
    """The part of an error's location that is written in the file: pydantic adds
    the names of union branches and their tags, which no reader wrote."""
    kept: Loc = ()
    for index, part in enumerate(loc):
        following = loc[index + 1] if index + 1 < len(loc) else None
        if following is not None and _is_tag(kept, part, following, lines):
            continue
        if (*kept, part) in lines or (keep_last and following is None):
            kept = (*kept, part)
    return kept


def _is_tag(kept: Loc, part: str | int, following: str | int, lines: Lines) -> bool:
    # A union's tag names a key of the mapping, and the next part is a sibling key.
    return (*kept, following) in lines and (*kept, part, following) not in lines


def _first_per_place(problems: list[tuple[int, str]]) -> list[tuple[int, str]]:
    seen: set[tuple[int, str]] = set()
    first = []
    for line, reason in problems:
        place = (line, reason.split(": ", 1)[0])
        if place not in seen:
            seen.add(place)
            first.append((line, reason))
    return first


def _accepted_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the mapping at ``loc`` accepts. ``loc`` is pydantic's, with list
    indexes and union tags, which are stepped over."""
    candidates = [model]
    for part in loc:
        owners = [m for m in candidates if _field(m, str(part)) is not None]
        inner = [
            found for m in owners
            for found in _models_in(_field(m, str(part)).annotation)  # type: ignore[union-attr]
        ]  # fmt: skip
        candidates = inner or owners or candidates
    if len(candidates) != 1:
        return []
    return [f.alias or name for name, f in candidates[0].model_fields.items()]


def _field(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every model a value of this annotation may be: through lists, dicts, unions
    and ``Annotated``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


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
