"""Campaign files as marketers write them: one YAML file per campaign in the
campaigns folder, checked line by line, with Jinja2 templates for the content.

A file that breaks never stops the others, and a file that breaks after it has
loaded keeps its last good version in force (see ``CampaignFolder``).
"""

import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    HttpUrl,
    Tag,
    field_validator,
    model_validator,
)

from campaigns.errors import InvalidCampaignError
from campaigns.templates import CompiledTemplate, TemplateCompileError, compile_template
from campaigns.triggers import InAudience, Trigger
from core.errors import DomainError
from core.yaml_files import Lines, compose, line_of, validate
from segments import membership
from segments.definitions import Condition
from segments.persuasion import Cue, parse_cues
from segments.stages import Stage

logger = logging.getLogger(__name__)
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
SUPPORTED_KINDS = ("smart", "hybrid", "conversational")
# Where each kind can deliver: a smart campaign fills a website slot as the page
# asks, or sends once to each profile of its audience; a hybrid one sends when its
# trigger and steps say so; a conversational one is a hybrid one whose sends open
# a conversation with the assistant.
PLACEMENTS = {
    "smart": ("website", "email", "webhook", "chat", "whatsapp"),
    "hybrid": ("email", "webhook"), "conversational": ("chat", "whatsapp"),
}  # fmt: skip
CHANNELS = ("website", "email", "webhook", "chat", "whatsapp")
# Where a variant's content is plain text, not HTML (it is not escaped).
TEXT_CHANNELS = ("chat", "whatsapp")
SUFFIXES = (".yml", ".yaml")
DURATION_PART = re.compile(r"(\d+)(d|h|m)")
DURATION_UNITS = {
    "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)
}  # fmt: skip


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


class EmailPlacement(_Strict):
    """Mail to the profile's email address; the variant gives subject and body."""

    # Shown as the sender's name; the address is the shop's (settings).
    from_name: str | None = Field(default=None, max_length=100)


class WebhookPlacement(_Strict):
    """A signed JSON POST to another tool (a CRM, a messaging service)."""

    url: HttpUrl
    # The environment variable holding the signing secret: never in the file.
    secret_env: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,62}$")


class ChatPlacement(_Strict):
    """The website chat box: the assistant speaks first (the variant's text is its
    opening line) and the shopper answers it."""


class WhatsAppPlacement(_Strict):
    """An approved WhatsApp template, its body's one parameter filled with the
    variant's text; the shopper's answer goes to the assistant."""

    template: str = Field(pattern=r"^[a-z0-9_]{1,512}$")
    # None: the channel's CDP_WHATSAPP__TEMPLATE_LANGUAGE.
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")


class Placement(_Strict):
    website: WebsitePlacement | None = None
    email: EmailPlacement | None = None
    webhook: WebhookPlacement | None = None
    chat: ChatPlacement | None = None
    whatsapp: WhatsAppPlacement | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Placement":
        given = [k for k in CHANNELS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one placement: {', '.join(CHANNELS)}; "
                f"got {', '.join(given) or 'none'}"
            )
        return self

    @property
    def channel(self) -> str:
        return next(k for k in CHANNELS if getattr(self, k) is not None)

    @property
    def slot(self) -> str | None:
        return self.website.slot if self.website else None


class Products(_Strict):
    """The recommendation block a template shows as ``products``."""

    # recommended: the recommender's picks; trigger: the products the trigger is
    # about (the abandoned cart, the product viewed, restocked or cheaper now).
    source: Literal["recommended", "trigger"] = "recommended"
    # The recommender's strategy (a buying stage); none means the profile's own.
    strategy: Stage | None = None
    limit: int = Field(default=3, ge=1, le=12)


class Variant(_Strict):
    id: Name
    # An email's subject line (a template too); email placements need it.
    subject: str | None = Field(default=None, min_length=1, max_length=300)
    template: str | None = Field(default=None, min_length=1, max_length=20_000)
    template_file: str | None = Field(default=None, min_length=1, max_length=300)
    cues: list[str] = []
    # Shown only to profiles for whom this holds now (a segment condition, e.g.
    # the weather or the time of day where they are); where the bandit picks.
    when: Condition | None = None

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


def _duration(value: Any) -> Any:
    """``30m``, ``2h``, ``1d`` or ``1d12h`` as a timedelta."""
    if not isinstance(value, str):
        return value
    text = value.replace(" ", "")
    parts = DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(
            f"{value!r} is not a duration; write minutes, hours or days such as "
            "30m, 2h, 1d or 1d12h"
        )
    return sum((int(n) * DURATION_UNITS[u] for n, u in parts), timedelta())


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Step(_Strict):
    # A name that a branch can jump to.
    id: Name | None = None


class WaitStep(_Step):
    wait: Duration

    @field_validator("wait")
    @classmethod
    def _bounded(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= timedelta(days=365):
            raise ValueError("a wait lasts from 1m to 365d")
        return value


class CheckStep(_Step):
    # Goes on when the condition holds for the profile; ends the journey otherwise.
    check: Condition


class SendOptions(_Strict):
    # None: the bandit picks among the campaign's variants.
    variant: Name | None = None
    # now: as soon as the guards allow; active_hours: at the next hour of the day
    # when the person is usually active (their events, their time zone), within
    # a day, or now when too little is known.
    at: Literal["now", "active_hours"] = "now"


class SendStep(_Step):
    send: SendOptions


class Branch(_Strict):
    """Where the journey goes: ``next``, ``exit``, or the id of a later step."""

    converted: str = "exit"
    otherwise: str = "next"


class BranchStep(_Step):
    # On whether the person ordered since entering the campaign.
    branch: Branch


STEP_KINDS = {
    "wait": WaitStep,
    "check": CheckStep,
    "send": SendStep,
    "branch": BranchStep,
}


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((key for key in value if key in STEP_KINDS), None)
    return next((k for k, t in STEP_KINDS.items() if isinstance(value, t)), None)


Step = Annotated[
    Annotated[WaitStep, Tag("wait")]
    | Annotated[CheckStep, Tag("check")]
    | Annotated[SendStep, Tag("send")]
    | Annotated[BranchStep, Tag("branch")],
    Discriminator(
        _step_kind,
        custom_error_type="unknown_step",
        custom_error_message="a step is one of: " + ", ".join(STEP_KINDS),
    ),
]


class CampaignFile(_Strict):
    id: Name
    name: str = Field(min_length=1, max_length=200)
    status: Literal["active", "paused"] = "active"
    kind: Literal["smart", "hybrid", "conversational"]
    # A higher priority is tried first when several campaigns share a slot.
    priority: int = 0
    audience: Audience = Audience()
    placement: Placement
    products: Products | None = None
    variants: list[Variant] = Field(min_length=1, max_length=20)
    guards: Guards = Guards()
    schedule: Schedule = Schedule()
    # Tested whenever the campaign would deliver (for a hybrid one also when its
    # trigger fires): a segment condition on the profile and its context.
    rules: Condition | None = None


class SmartFile(CampaignFile):
    """Content for an audience, chosen per profile by the bandit when a page asks."""

    kind: Literal["smart"]


class Reentry(_Strict):
    # A profile enters the campaign again only this long after its last entry.
    after_days: float = Field(default=30.0, ge=0, le=3650)


class HybridFile(CampaignFile):
    """A trigger on behaviour, rules on the profile, and steps that wait, check,
    send and branch; see ``campaigns.journeys``."""

    kind: Literal["hybrid"]
    trigger: Trigger
    steps: list[Step] = Field(min_length=1, max_length=50)
    reentry: Reentry = Reentry()


class ConversationalFile(HybridFile):
    """A hybrid campaign whose sends open a conversation: a proactive message in
    the website chat, or a WhatsApp template to people who opted in."""

    kind: Literal["conversational"]  # type: ignore[assignment]


@dataclass(frozen=True)
class Campaign:
    """A validated campaign with its compiled templates and cues."""

    spec: SmartFile | HybridFile
    file: str
    templates: dict[str, CompiledTemplate]
    cues: dict[str, tuple[Cue, ...]]
    # Files read (the campaign and its template files): a change to any reloads it.
    sources: tuple[Path, ...] = ()
    # The subject line of each variant, for email placements.
    subjects: dict[str, CompiledTemplate] = field(default_factory=dict)

    @property
    def hybrid(self) -> HybridFile | None:
        return self.spec if isinstance(self.spec, HybridFile) else None

    @cached_property
    def journey(self) -> HybridFile | None:
        """How the campaigns worker runs it: a hybrid campaign as written; a smart
        one that sends (anything but a website slot) as one send to each profile
        of its audience; None for a website slot, served as pages ask."""
        if self.hybrid is not None or self.spec.placement.channel == "website":
            return self.hybrid
        fields = {name: getattr(self.spec, name) for name in CampaignFile.model_fields}
        return HybridFile.model_construct(
            **{**fields, "kind": "hybrid"},
            trigger=Trigger(in_audience=InAudience()),
            steps=[SendStep(send=SendOptions())],
            reentry=Reentry(after_days=3650),
        )

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
    kind = _kind_of(tree)
    if kind is not None and kind not in SUPPORTED_KINDS:
        raise InvalidCampaignError(
            name,
            [(line_of(lines, ("kind",)),
              f"unknown kind {kind!r}; a campaign is one of: "
              f"{', '.join(SUPPORTED_KINDS)}")],
        )  # fmt: skip
    model = {"hybrid": HybridFile, "conversational": ConversationalFile}.get(
        kind, SmartFile
    )
    spec = validate(tree, lines, model, name=name, error=InvalidCampaignError)
    problems = _placement_fits(spec, lines)
    problems += _unknown_segments(spec, lines)
    cues: dict[str, tuple[Cue, ...]] = {}
    for index, variant in enumerate(spec.variants):
        try:
            cues[variant.id] = tuple(parse_cues(variant.cues))
        except DomainError as exc:
            problems.append((line_of(lines, ("variants", index, "cues")), exc.msg))
    problems += _repeated_variants(spec, lines)
    if isinstance(spec, HybridFile):
        problems += _step_problems(spec, lines)
    templates, sources = _compile_all(spec, text, lines, name, folder, problems)
    subjects = _compile_subjects(spec, text, lines, name, problems)
    if problems:
        raise InvalidCampaignError(name, sorted(problems))
    return Campaign(spec, name, templates, cues, sources, subjects)


def _kind_of(tree: Any) -> Any:
    return tree.get("kind") if isinstance(tree, dict) else None


def _placement_fits(spec: CampaignFile, lines: Lines) -> list[tuple[int, str]]:
    problems = []
    allowed = PLACEMENTS[spec.kind]
    channel = spec.placement.channel
    if channel not in allowed:
        problems.append(
            (line_of(lines, ("placement", channel)),
             f"a {spec.kind} campaign cannot use placement {channel!r}; "
             f"it can use: {', '.join(allowed)}")
        )  # fmt: skip
    if channel == "email":
        for index, variant in enumerate(spec.variants):
            if variant.subject is None:
                problems.append(
                    (line_of(lines, ("variants", index)),
                     f"variant {variant.id!r} needs a subject: the placement is email")
                )  # fmt: skip
    if spec.products and spec.products.source == "trigger" and spec.kind == "smart":
        problems.append(
            (line_of(lines, ("products", "source")),
             "products from the trigger need a hybrid campaign; use recommended")
        )  # fmt: skip
    return problems


def _step_problems(spec: HybridFile, lines: Lines) -> list[tuple[int, str]]:
    """Branch targets that exist and lie ahead (so a journey always ends), step ids
    given once, and sends naming variants the campaign has."""
    problems = []
    index_of: dict[str, int] = {}
    variants = {v.id for v in spec.variants}
    for index, step in enumerate(spec.steps):
        if step.id is not None:
            if step.id in index_of:
                problems.append(
                    (line_of(lines, ("steps", index, "id")),
                     f"step id {step.id!r} is used twice")
                )  # fmt: skip
            index_of.setdefault(step.id, index)
    for index, step in enumerate(spec.steps):
        chosen = step.send.variant if isinstance(step, SendStep) else None
        if chosen is not None and chosen not in variants:
            problems.append(
                (line_of(lines, ("steps", index, "send", "variant")),
                 f"unknown variant {chosen!r}; the campaign has: "
                 f"{', '.join(sorted(variants))}")
            )  # fmt: skip
        if not isinstance(step, BranchStep):
            continue
        for way in ("converted", "otherwise"):
            target = getattr(step.branch, way)
            if target in ("next", "exit"):
                continue
            where = line_of(lines, ("steps", index, "branch", way))
            if target not in index_of:
                problems.append(
                    (where, f"{way}: no step with id {target!r}; write next, exit "
                            f"or one of: {', '.join(index_of) or 'no ids given'}")
                )  # fmt: skip
            elif index_of[target] <= index:
                problems.append(
                    (where, f"{way}: step {target!r} is not after this one; a "
                            "branch jumps forward, so that every journey ends")
                )  # fmt: skip
    if not any(isinstance(step, SendStep) for step in spec.steps):
        problems.append((line_of(lines, ("steps",)), "no step sends anything"))
    return problems


def _compile_subjects(
    spec: CampaignFile, text: str, lines: Lines, name: str,
    problems: list[tuple[int, str]],
) -> dict[str, CompiledTemplate]:  # fmt: skip
    subjects = {}
    for index, variant in enumerate(spec.variants):
        if variant.subject is None:
            continue
        line = line_of(lines, ("variants", index, "subject"))
        try:
            subjects[variant.id] = compile_template(
                variant.subject, where=name, first_line=line, html=False
            )
        except TemplateCompileError as exc:
            problems.append((exc.line, exc.reason))
    return subjects


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
                why = (
                    "is outside the campaigns folder" if path is None and folder
                    else f"does not exist in {folder}" if folder
                    else "cannot be read: no campaigns folder was given"
                )  # fmt: skip
                problems.append(
                    (
                        line_of(lines, key),
                        f"template_file {variant.template_file!r} {why}",
                    )
                )
                continue
            sources.append(path)
            where, first = variant.template_file or "", 1
            source = path.read_text(encoding="utf-8")
        try:
            templates[variant.id] = compile_template(
                source, where=where, first_line=first,
                html=spec.placement.channel not in TEXT_CHANNELS,
            )  # fmt: skip
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
    # Log each file's mistakes (the api and worker); the CLI prints them itself.
    log: bool = True
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
            if self.log:
                logger.info("campaign loaded", extra={"campaign": state.campaign.id})
        except InvalidCampaignError as exc:
            state.problems = exc.problems
            if not self.log:
                return
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
    loaded = CampaignFolder(folder, log=False)
    loaded.reload()
    problems = [p for state in loaded.files.values() for p in state.problems]
    valid = sum(not state.problems for state in loaded.files.values())
    return valid, problems
