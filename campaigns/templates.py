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
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

# What one message may cost: loop steps over range() in all, characters of a
# string or items of a list made by *, and characters of the result. A template
# past them fails for that message like any other template error.
MAX_STEPS = 10_000
MAX_SIZE = 100_000
MAX_OUTPUT = 200_000
_steps: ContextVar[int] = ContextVar("template_steps", default=MAX_STEPS)


class CampaignSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with a budget, so a typo such as two nested
    loops over range(100000) cannot hold a worker or a request for hours."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError(f"an exponent of {right} is more than 64")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_SIZE:
                    raise SecurityError(
                        f"a result of {len(seq) * times:,} characters or items is "
                        f"more than {MAX_SIZE:,}"
                    )
        return super().call_binop(context, operator, left, right)


def _budgeted_range(*args: int) -> Iterator[int]:
    steps = range(*args)
    left = _steps.get() - len(steps)
    if left < 0:
        raise SecurityError(
            f"the loops of this template run more than {MAX_STEPS:,} steps"
        )
    _steps.set(left)
    return iter(steps)


def _environment(*, html: bool) -> CampaignSandbox:
    env = CampaignSandbox(autoescape=html, undefined=StrictUndefined)
    env.globals["range"] = _budgeted_range
    return env


# HTML content is escaped; plain text (an email's subject, a chat or WhatsApp
# line) is not, since it is never read as HTML.
_html = _environment(html=True)
_text = _environment(html=False)


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
    source: str, *, where: str, first_line: int = 1, html: bool = True
) -> CompiledTemplate:
    """The template (HTML, escaped; or plain text), or ``TemplateCompileError``
    with the line in ``where``."""
    env = _html if html else _text
    try:
        code = env.compile(source, name=where, filename=where)
        names = meta.find_undeclared_variables(env.parse(source))
    except TemplateSyntaxError as exc:
        line = first_line + (exc.lineno or 1) - 1
        raise TemplateCompileError(line, f"template error: {exc.message}") from None
    template = env.template_class.from_code(env, code, env.make_globals(None), None)
    return CompiledTemplate(where, first_line, template, frozenset(names))


def render(compiled: CompiledTemplate, context: Mapping[str, Any]) -> str:
    """The rendered text, or ``TemplateRenderError`` naming the line that failed.
    Each render has its own budget of loop steps and output."""
    token = _steps.set(MAX_STEPS)
    try:
        parts: list[str] = []
        size = 0
        for part in compiled.template.generate(**context):
            size += len(part)
            if size > MAX_OUTPUT:
                raise SecurityError(
                    f"the message is longer than {MAX_OUTPUT:,} characters"
                )
            parts.append(part)
        return "".join(parts)
    except Exception as exc:
        # Any error a marketer's expression raises (an undefined name, 1/0, a
        # refused attribute) is that one message's failure, not the server's.
        line = compiled.line_in_file(_template_line(exc, compiled.where))
        raise TemplateRenderError(compiled.where, line, str(exc)) from None
    finally:
        _steps.reset(token)


def _template_line(exc: BaseException, where: str) -> int:
    # Jinja rewrites the traceback so that template frames carry the template's
    # name and line; the last such frame is where it failed.
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == where]
    return frames[-1].lineno or 1 if frames else 1
