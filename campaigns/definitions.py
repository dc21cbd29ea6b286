"""Campaign files as marketers write them: one YAML file per campaign in the
campaigns folder, checked line by line, with Jinja2 templates for the content.

A file that breaks never stops the others, and a file that breaks after it has
loaded keeps its last good version in force (see ``CampaignFolder``).
"""

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from campaigns.errors import InvalidCampaignError
from campaigns.templates import CompiledTemplate, TemplateCompileError, compile_template
from core.errors import DomainError
from core.yaml_files import Lines, compose, line_of, validate
from segments import membership
from segments.persuasion import Cue, parse_cues
from segments.stages import Stage

logger = logging.getLogger(__name__)
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
SUPPORTED_KINDS = ("smart",)
# Written in the issue, not built yet (#9): named so the error can say so.
RESERVED_KINDS = ("hybrid", "conversational")
RESERVED_PLACEMENTS = ("email", "whatsapp", "chat", "webhook")
SUFFIXES = (".yml", ".yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Audience(_Strict):
    """Who may see the campaign: every kind given must hold; within a list, any
    value does. No audience at all means every profile."""

    segments: list[Name] | None = Field(default=None, min_length=1)
    stage: list[Stage] | None = Field(default=None, min_length=1)
    retention: list[Name] | None = Field(default=None, min_length=1)
    customer_type: list[Name] | None = Field(default=None, min_length=1)
    persuasion_type: list[Cue] | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _one_value_is_a_list(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in data.items()}
        return data

    def holds(self, segments: set[str], labels: dict[str, str | None]) -> bool:
        if self.segments is not None and not segments & set(self.segments):
            return False
        for label in ("stage", "retention", "customer_type", "persuasion_type"):
            wanted = getattr(self, label)
            if wanted is not None and labels.get(label) not in wanted:
                return False
        return True


class WebsitePlacement(_Strict):
    slot: Name


class Placement(_Strict):
    website: WebsitePlacement

    @property
    def channel(self) -> str:
        return "website"


class Products(_Strict):
    """The recommendation block a template shows as ``products``."""

    # The recommender's strategy (a buying stage); none means the profile's own.
    strategy: Stage | None = None
    limit: int = Field(default=3, ge=1, le=12)


class Variant(_Strict):
    id: Name
    template: str | None = Field(default=None, min_length=1, max_length=20_000)
    template_file: str | None = Field(default=None, min_length=1, max_length=300)
    cues: list[str] = []

    @model_validator(mode="after")
    def _one_source(self) -> "Variant":
        if (self.template is None) == (self.template_file is None):
            raise ValueError("give exactly one of template or template_file")
        return self


class QuietHours(_Strict):
    """Hours in the profile's time zone (trait ``timezone``, else UTC) when nothing
    is delivered; ``start`` after ``end`` spans midnight."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


class Guards(_Strict):
    # A purpose the profile must have granted, e.g. website_personalisation. None:
    # no consent is asked for (first-party content on the shop's own site).
    consent: Name | None = None
    # Deliveries per profile on this channel in the last 24 hours, all campaigns.
    max_per_day: int | None = Field(default=None, ge=1, le=1000)
    quiet_hours: QuietHours | None = None
    # A suppression list whose profiles never receive this campaign.
    suppression: Name | None = None
    # The share of the audience held out, stably, to measure uplift.
    control_share: float = Field(default=0.0, ge=0.0, le=0.5)


class Schedule(_Strict):
    start: datetime | None = None
    end: datetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Schedule":
        if self.start and self.end and self.start >= self.end:
            raise ValueError(f"start {self.start} is not before end {self.end}")
        return self


class CampaignFile(_Strict):
    id: Name
    name: str = Field(min_length=1, max_length=200)
    status: Literal["active", "paused"] = "active"
    kind: Literal["smart"]
    # A higher priority is tried first when several campaigns share a slot.
    priority: int = 0
    audience: Audience = Audience()
    placement: Placement
    products: Products | None = None
    variants: list[Variant] = Field(min_length=1, max_length=20)
    guards: Guards = Guards()
    schedule: Schedule = Schedule()


@dataclass(frozen=True)
class Campaign:
    """A validated campaign with its compiled templates and cues."""

    spec: CampaignFile
    file: str
    templates: dict[str, CompiledTemplate]
    cues: dict[str, tuple[Cue, ...]]
    # Files read (the campaign and its template files): a change to any reloads it.
    sources: tuple[Path, ...] = ()

    @property
    def id(self) -> str:
        return self.spec.id

    def is_running(self, now: datetime) -> bool:
        schedule = self.spec.schedule
        if self.spec.status != "active":
            return False
        if schedule.start is not None and now < _aware(schedule.start):
            return False
        return schedule.end is None or now < _aware(schedule.end)


def parse(text: str, *, name: str, folder: Path | None = None) -> Campaign:
    """The campaign in ``text`` (file ``name`` in ``folder``), or
    ``InvalidCampaignError`` naming every problem and its line."""
    tree, lines = compose(text, name, error=InvalidCampaignError)
    _refuse_reserved(tree, lines, name)
    spec = validate(tree, lines, CampaignFile, name=name, error=InvalidCampaignError)
    problems = _unknown_segments(spec, lines)
    cues: dict[str, tuple[Cue, ...]] = {}
    for index, variant in enumerate(spec.variants):
        try:
            cues[variant.id] = tuple(parse_cues(variant.cues))
        except DomainError as exc:
            problems.append((line_of(lines, ("variants", index, "cues")), exc.msg))
    problems += _repeated_variants(spec, lines)
    templates, sources = _compile_all(spec, text, lines, name, folder, problems)
    if problems:
        raise InvalidCampaignError(name, sorted(problems))
    return Campaign(spec, name, templates, cues, sources)


def _refuse_reserved(tree: Any, lines: Lines, name: str) -> None:
    if not isinstance(tree, dict):
        return
    problems = []
    kind = tree.get("kind")
    if kind in RESERVED_KINDS:
        problems.append(
            (line_of(lines, ("kind",)),
             f"kind {kind!r} is not supported yet; supported: "
             f"{', '.join(SUPPORTED_KINDS)}")
        )  # fmt: skip
    placement = tree.get("placement")
    for key in placement if isinstance(placement, dict) else {}:
        if key in RESERVED_PLACEMENTS:
            problems.append(
                (line_of(lines, ("placement", key)),
                 f"placement {key!r} is not supported yet; supported: website")
            )  # fmt: skip
    if problems:
        raise InvalidCampaignError(name, problems)


def _unknown_segments(spec: CampaignFile, lines: Lines) -> list[tuple[int, str]]:
    if not spec.audience.segments:
        return []
    try:
        known = {s.name for s in membership.get_definitions().segments}
    except (DomainError, OSError) as exc:
        line = line_of(lines, ("audience", "segments"))
        return [(line, f"the segments could not be read to check these names: {exc}")]
    problems = []
    for index, segment in enumerate(spec.audience.segments):
        if segment not in known:
            problems.append(
                (line_of(lines, ("audience", "segments", index)),
                 f"unknown segment {segment!r}; defined: "
                 f"{', '.join(sorted(known)) or 'none'}")
            )  # fmt: skip
    return problems


def _repeated_variants(spec: CampaignFile, lines: Lines) -> list[tuple[int, str]]:
    seen: set[str] = set()
    problems = []
    for index, variant in enumerate(spec.variants):
        if variant.id in seen:
            line = line_of(lines, ("variants", index, "id"))
            problems.append((line, f"variant {variant.id!r} is defined twice"))
        seen.add(variant.id)
    return problems


def _compile_all(
    spec: CampaignFile, text: str, lines: Lines, name: str, folder: Path | None,
    problems: list[tuple[int, str]],
) -> tuple[dict[str, CompiledTemplate], tuple[Path, ...]]:  # fmt: skip
    templates: dict[str, CompiledTemplate] = {}
    sources: list[Path] = []
    for index, variant in enumerate(spec.variants):
        if variant.template is not None:
            key = ("variants", index, "template")
            first = _first_line(text, line_of(lines, key))
            where, source = name, variant.template
        else:
            key = ("variants", index, "template_file")
            path = _template_path(folder, variant.template_file or "")
            if path is None or not path.is_file():
                problems.append(
                    (line_of(lines, key),
                     f"template_file {variant.template_file!r} is not a file "
                     f"inside the campaigns folder")
                )  # fmt: skip
                continue
            sources.append(path)
            where, first = variant.template_file or "", 1
            source = path.read_text(encoding="utf-8")
        try:
            templates[variant.id] = compile_template(
                source, where=where, first_line=first
            )
        except TemplateCompileError as exc:
            reason = exc.reason if where == name else f"{where}: {exc}"
            problems.append(
                (exc.line if where == name else line_of(lines, key), reason)
            )
    return templates, tuple(sources)


def _first_line(text: str, key_line: int) -> int:
    """The file line of a template's first line: the key's own line, or the next
    one for a block (``template: |``)."""
    written = text.splitlines()[key_line - 1].split(":", 1)[-1].strip()
    return key_line + 1 if written[:1] in ("|", ">") else key_line


def _template_path(folder: Path | None, relative: str) -> Path | None:
    if folder is None:
        return None
    path = (folder / relative).resolve()
    # A template file must stay inside the folder the marketer edits.
    return path if path.is_relative_to(folder.resolve()) else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# The folder: every file loaded, errors kept per file ------------------------------


@dataclass
class FileState:
    # The last good campaign of the file, and the problems of its current text.
    campaign: Campaign | None = None
    problems: list[str] = field(default_factory=list)
    stamp: tuple[tuple[str, float], ...] = ()


@dataclass
class CampaignFolder:
    """The campaigns of a folder, reloaded when a file (or a template it reads)
    changes. A file with mistakes keeps its last good campaign in force and its
    problems listed; it never stops the other files."""

    folder: Path
    files: dict[str, FileState] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def campaigns(self) -> list[Campaign]:
        self.reload()
        found = [s.campaign for s in self.files.values() if s.campaign is not None]
        return sorted(found, key=lambda c: (-c.spec.priority, c.id))

    def get(self, campaign_id: str) -> Campaign | None:
        return next((c for c in self.campaigns() if c.id == campaign_id), None)

    def reload(self) -> None:
        with self._lock:
            paths = self._paths()
            for gone in set(self.files) - {p.name for p in paths}:
                del self.files[gone]
            for path in paths:
                self._load(path)
            self._refuse_repeated_ids()

    def _paths(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.suffix in SUFFIXES)

    def _load(self, path: Path) -> None:
        state = self.files.setdefault(path.name, FileState())
        sources = state.campaign.sources if state.campaign else ()
        stamp = _stamp([path, *sources])
        if stamp == state.stamp:
            return
        state.stamp = stamp
        try:
            text = path.read_text(encoding="utf-8")
            state.campaign = parse(text, name=path.name, folder=self.folder)
            state.stamp = _stamp([path, *state.campaign.sources])
            state.problems = []
            logger.info("campaign loaded", extra={"campaign": state.campaign.id})
        except InvalidCampaignError as exc:
            state.problems = exc.problems
            logger.error(
                "campaign file has mistakes; its last good version stays in force",
                extra={"file": path.name, "problems": exc.problems},
            )

    def _refuse_repeated_ids(self) -> None:
        owner: dict[str, str] = {}
        for name, state in sorted(self.files.items()):
            if state.campaign is None:
                continue
            first = owner.setdefault(state.campaign.id, name)
            if first != name:
                state.problems = [
                    f"{name}, line 1: campaign id {state.campaign.id!r} is "
                    f"already used by {first}"
                ]
                state.campaign = None
                state.stamp = ()  # read again once the other file gives the id up


def _stamp(paths: list[Path]) -> tuple[tuple[str, float], ...]:
    return tuple((str(p), p.stat().st_mtime if p.exists() else -1.0) for p in paths)


def validate_folder(folder: Path) -> tuple[int, list[str]]:
    """How many campaign files are valid, and every problem of the others."""
    loaded = CampaignFolder(folder)
    loaded.reload()
    problems = [p for state in loaded.files.values() for p in state.problems]
    valid = sum(not state.problems for state in loaded.files.values())
    return valid, problems
