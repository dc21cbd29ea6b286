"""Campaign content: Jinja2 templates run in a sandbox with autoescaping.

A marketer's template can read what it is given (``profile``, ``products``,
``campaign``, ``variant``) and nothing else: the sandbox refuses attributes such as
``__class__`` and the immutable variant refuses changing a list or a mapping. Every
value is HTML-escaped, so a trait holding ``<script>`` shows as text. A name the
template uses that the context lacks is an error (``StrictUndefined``), not an
empty string: a message that would read "Hello ," is skipped instead.

Templates are compiled when the campaign file loads, so a syntax error is reported
with its file and line there; an error while rendering for one profile says the
line too, and skips that one message.
"""

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

_env = ImmutableSandboxedEnvironment(autoescape=True, undefined=StrictUndefined)


class TemplateCompileError(Exception):
    """A template that cannot be compiled: the line in the marketer's file."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class TemplateRenderError(Exception):
    """A template that failed for one profile: where, so the marketer can fix it."""

    def __init__(self, where: str, line: int, reason: str) -> None:
        super().__init__(f"{where}, line {line}: {reason}")
        self.where = where
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class CompiledTemplate:
    # The file the marketer edits, and the line in it of the template's first line.
    where: str
    first_line: int
    template: Template
    # The names the template reads: products are only fetched when it uses them.
    names: frozenset[str]

    def line_in_file(self, template_line: int) -> int:
        return self.first_line + template_line - 1


def compile_template(
    source: str, *, where: str, first_line: int = 1
) -> CompiledTemplate:
    """The template, or ``TemplateCompileError`` with the line in ``where``."""
    try:
        code = _env.compile(source, name=where, filename=where)
        names = meta.find_undeclared_variables(_env.parse(source))
    except TemplateSyntaxError as exc:
        line = first_line + (exc.lineno or 1) - 1
        raise TemplateCompileError(line, f"template error: {exc.message}") from None
    template = _env.template_class.from_code(_env, code, _env.make_globals(None), None)
    return CompiledTemplate(where, first_line, template, frozenset(names))


def render(compiled: CompiledTemplate, context: Mapping[str, Any]) -> str:
    """The rendered HTML, or ``TemplateRenderError`` naming the line that failed."""
    try:
        return compiled.template.render(**context)
    except Exception as exc:
        # Any error a marketer's expression raises (an undefined name, 1/0, a
        # refused attribute) is that one message's failure, not the server's.
        line = compiled.line_in_file(_template_line(exc, compiled.where))
        raise TemplateRenderError(compiled.where, line, str(exc)) from None


def _template_line(exc: BaseException, where: str) -> int:
    # Jinja rewrites the traceback so that template frames carry the template's
    # name and line; the last such frame is where it failed.
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == where]
    return frames[-1].lineno or 1 if frames else 1
