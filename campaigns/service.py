"""Serving campaigns to profiles under guards, and measuring them. No HTTP here.

``personalise`` picks, for one profile and one website slot, the first running
campaign (by priority) whose audience holds the profile and whose guards let it
through, in this order: consent, suppression list, quiet hours, frequency cap,
control group. The control group is decided last, so that held-out profiles are
ones that would have received the content: they get nothing, but an impression
with ``control`` is recorded, and uplift compares the two groups.

Outcomes are read from the profile's own events, through the profiles service,
rather than posted to a campaign endpoint: the shop already tracks
``Promotion Clicked`` (``promotion_id`` = the impression id) and
``Order Completed``, and events are stored once per message id, so a retried
event or a restarted worker cannot count a click twice. An order within the
attribution window after one of the profile's impressions of a campaign is a
conversion of the latest such impression (control impressions included).
"""

import hashlib
import logging
import random
import threading
import time as clock
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from statsmodels.stats.proportion import confint_proportions_2indep

from campaigns import bandit
from campaigns import rules as campaign_rules
from campaigns.definitions import Campaign, CampaignFolder
from campaigns.errors import CampaignNotFoundError
from campaigns.models import (
    CONTEXT_FACTS,
    CampaignImpression,
    CampaignJourney,
    CampaignOutcome,
    CampaignResults,
    CampaignSend,
    CampaignSkip,
    ContextResult,
    JourneyPublic,
    Personalisation,
    SendPublic,
    Stop,
    SuppressionEntry,
    Uplift,
    VariantResult,
)
from campaigns.templates import TemplateRenderError, render
from catalog import service as catalog
from catalog.models import ProductPublic
from context import service as context_data
from core.errors import ConflictError
from core.settings import get_settings
from events.ecommerce import OrderFact
from profiles import service as profiles
from profiles.models import ConsentCreate, ConsentStatus, Event, Profile
from recommender.models import Filters
from recommender.service import Recommender, shopper_of
from segments import membership
from segments import service as segments
from segments.persuasion import Cue

logger = logging.getLogger(__name__)
CLICK, CONVERSION = "click", "conversion"
# Cues that state a product's figures: carried only when a product shown has them
# (the recommender marks a product's cue only when the shop's figures support it).
PRODUCT_CUES = frozenset({Cue.social_proof, Cue.scarcity})
_folders: dict[Path, CampaignFolder] = {}
_folders_lock = threading.Lock()
_collected: dict[tuple[str, str], float] = {}
_rng = random.Random()


def get_folder(path: Path | None = None) -> CampaignFolder:
    """The campaigns folder in force (settings ``campaigns.folder``), kept loaded."""
    path = path or get_settings().campaigns.folder
    with _folders_lock:
        return _folders.setdefault(path, CampaignFolder(path))


def get_or_raise(campaign_id: str, *, folder: CampaignFolder | None = None) -> Campaign:
    folder = folder or get_folder()
    campaign = folder.get(campaign_id)
    if campaign is None:
        known = ", ".join(c.id for c in folder.campaigns()) or "none"
        raise CampaignNotFoundError(
            f"no campaign {campaign_id!r}; loaded: {known}", loc=["path", "campaign_id"]
        )
    return campaign


# Personalisation ------------------------------------------------------------------


def personalise(
    session: Session,
    profile: Profile,
    *,
    slot: str,
    now: datetime | None = None,
    impression_id: str | None = None,
    recommender: Recommender | None = None,
    sku: str | None = None,
    folder: CampaignFolder | None = None,
    rng: random.Random | None = None,
) -> Personalisation:
    """What the profile sees in a website slot now, recorded once per
    ``impression_id`` (asking again with the same id returns the same choice)."""
    now = now or datetime.now(UTC)
    folder = folder or get_folder()
    if impression_id is not None:
        shown = session.get(CampaignImpression, impression_id)
        if shown is not None:
            return _again(session, shown, profile, folder, recommender, sku)
    running = [
        c for c in folder.campaigns()
        if c.spec.placement.slot == slot and c.is_running(now)
    ]  # fmt: skip
    if not running:
        return Personalisation(slot=slot)
    member_of = {m.segment for m in membership.segments_of(session, profile)}
    labels = segments.labels_of(session, profile)
    stopped: list[Stop] = []
    for campaign in running:
        reason = _stop_reason(session, campaign, profile, member_of, labels, now)
        if reason is not None:
            stopped.append(Stop(campaign=campaign.id, reason=reason))
            continue
        served = _serve(
            session, campaign, profile, slot=slot, now=now,
            impression_id=impression_id, recommender=recommender, sku=sku,
            rng=rng or _rng, stopped=stopped,
        )  # fmt: skip
        if served is not None:
            return served
    return Personalisation(slot=slot, stopped=stopped)


def _stop_reason(
    session: Session, campaign: Campaign, profile: Profile, member_of: set[str],
    labels: dict[str, str | None], now: datetime,
) -> str | None:  # fmt: skip
    if not campaign.spec.audience.holds(member_of, labels):
        return "not in the audience"
    rules = campaign.spec.rules
    if rules is not None and not campaign_rules.holds(session, rules, profile, now):
        return "its rules do not hold"
    return (
        consent_stop(session, campaign, profile)
        or suppression_stop(session, campaign, profile)
        or quiet_hours_stop(session, campaign, profile, now)
        or frequency_stop(session, campaign, profile, now)
    )


def _serve(
    session: Session, campaign: Campaign, profile: Profile, *, slot: str,
    now: datetime, impression_id: str | None, recommender: Recommender | None,
    sku: str | None, rng: random.Random, stopped: list[Stop],
) -> Personalisation | None:  # fmt: skip
    """Deliver the campaign, or hold the profile out; None when the template failed
    (that one message is skipped and recorded)."""
    impression = CampaignImpression(
        id=impression_id or uuid.uuid4().hex, campaign=campaign.id,
        profile_id=profile.id, channel=campaign.spec.placement.channel,
        placement=slot, at=now,
    )  # fmt: skip
    context = context_of(session, profile.id, now)
    for fact, value in context.items():
        setattr(impression, fact, value)
    if in_control_group(campaign, profile.id):
        impression.control = True
        record(session, impression, profile)
        return Personalisation(
            slot=slot, campaign=campaign.id, impression_id=impression.id,
            control=True, stopped=stopped,
        )  # fmt: skip
    _collect_if_due(session, campaign, now)
    eligible = eligible_arms(session, campaign, profile, now, context)
    if not eligible:
        stopped.append(Stop(campaign=campaign.id, reason="no variant's when holds"))
        return None
    variant = bandit.choose(eligible, rng)
    try:
        html, cues = render_variant(
            session, campaign, variant, profile, recommender=recommender, sku=sku
        )
    except TemplateRenderError as exc:
        _skip(session, campaign, variant, profile, str(exc), now)
        stopped.append(Stop(campaign=campaign.id, reason=f"template failed: {exc}"))
        return None
    impression.variant, impression.cues = variant, [c.value for c in cues]
    record(session, impression, profile)
    return Personalisation(
        slot=slot, campaign=campaign.id, variant=variant, impression_id=impression.id,
        html=html, cues=impression.cues, stopped=stopped,
    )  # fmt: skip


def _again(
    session: Session, shown: CampaignImpression, profile: Profile,
    folder: CampaignFolder, recommender: Recommender | None, sku: str | None,
) -> Personalisation:  # fmt: skip
    if shown.profile_id != profile.id:
        raise ConflictError(
            f"impression {shown.id!r} belongs to another profile; send a new id",
            loc=["query", "impression_id"],
        )
    found = Personalisation(
        slot=shown.placement, campaign=shown.campaign, variant=shown.variant,
        impression_id=shown.id, control=shown.control, cues=shown.cues,
    )  # fmt: skip
    campaign = folder.get(shown.campaign)
    if campaign is None or shown.variant is None:
        return found
    try:
        found.html, _ = render_variant(
            session, campaign, shown.variant, profile, recommender=recommender, sku=sku
        )
    except TemplateRenderError:
        found.html = None
    return found


def record(session: Session, impression: CampaignImpression, profile: Profile) -> None:
    """Store the impression and, for content shown, the exposure the persuasion
    types learn from: a Promotion Viewed event with ``content_id`` and ``cues``."""
    session.add(impression)
    if not impression.control:
        exposure = Event(
            message_id=f"campaign-impression:{impression.id}", type="track",
            name="Promotion Viewed", source="campaigns", timestamp=impression.at,
            properties={
                "promotion_id": impression.id, "content_id": impression.id,
                "cues": impression.cues, "campaign": impression.campaign,
                "variant": impression.variant, "slot": impression.placement,
            },
        )  # fmt: skip
        profiles.add_event(session, profile, exposure)
    try:
        session.commit()
    except IntegrityError:
        # The same impression id, recorded meanwhile by a concurrent request.
        session.rollback()
        logger.info("impression already recorded", extra={"impression": impression.id})


def _skip(
    session: Session, campaign: Campaign, variant: str, profile: Profile,
    reason: str, now: datetime,
) -> None:  # fmt: skip
    logger.warning(
        "campaign template failed; message skipped",
        extra={"campaign": campaign.id, "variant": variant, "reason": reason},
    )
    session.add(
        CampaignSkip(campaign=campaign.id, variant=variant, profile_id=profile.id,
                     reason=reason, at=now)
    )  # fmt: skip
    session.commit()


# Guards -----------------------------------------------------------------------------


def consent_stop(session: Session, campaign: Campaign, profile: Profile) -> str | None:
    purpose = campaign.spec.guards.consent
    if purpose is None:
        return None
    granted = {
        c.purpose
        for c in profiles.list_consents(session, profile)
        if c.status == ConsentStatus.granted
    }
    return None if purpose in granted else f"no consent for {purpose}"


def suppression_stop(
    session: Session, campaign: Campaign, profile: Profile
) -> str | None:
    name = campaign.spec.guards.suppression
    if name is None or session.get(SuppressionEntry, (name, profile.id)) is None:
        return None
    return f"on the suppression list {name}"


def quiet_hours_stop(
    session: Session, campaign: Campaign, profile: Profile, now: datetime
) -> str | None:
    quiet = campaign.spec.guards.quiet_hours
    if quiet is None:
        return None
    zone = zone_of(session, profile)
    local = now.astimezone(zone)
    if not quiet.contains(local.time()):
        return None
    return (
        f"quiet hours {quiet.start:%H:%M}-{quiet.end:%H:%M} in {zone.key} "
        f"(it is {local:%H:%M} there)"
    )


def frequency_stop(
    session: Session, campaign: Campaign, profile: Profile, now: datetime
) -> str | None:
    cap = campaign.spec.guards.max_per_day
    if cap is None:
        return None
    channel = campaign.spec.placement.channel
    delivered = session.exec(
        select(func.count()).where(
            CampaignImpression.profile_id == profile.id,
            CampaignImpression.channel == channel,
            col(CampaignImpression.control).is_(False),
            CampaignImpression.at > now - timedelta(days=1),
        )
    ).one()
    if delivered < cap:
        return None
    return f"frequency cap: {delivered} of {cap} per day on {channel} already"


def in_control_group(campaign: Campaign, profile_id: str) -> bool:
    """Stable per campaign and profile: the same profile is always on the same side,
    and different campaigns hold out different profiles."""
    share = campaign.spec.guards.control_share
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{campaign.id}:{profile_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def suppress(session: Session, list_name: str, profile: Profile) -> bool:
    """Put the profile on the list; False when it was on it already."""
    if session.get(SuppressionEntry, (list_name, profile.id)) is not None:
        return False
    session.add(SuppressionEntry(list_name=list_name, profile_id=profile.id))
    session.commit()
    return True


def zone_of(session: Session, profile: Profile) -> ZoneInfo:
    """The person's time zone: the ``timezone`` trait they gave, else that of
    where they were last seen (their IP address's location), else UTC."""
    for name in ((profile.traits or {}).get("timezone"),
                 context_data.timezone_of(session, profile.id)):  # fmt: skip
        if isinstance(name, str) and name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                logger.warning("unknown time zone", extra={"timezone": name})
    return ZoneInfo("UTC")


# Content -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """A variant rendered for one profile."""

    html: str
    # The cues the content truly carries (product cues only when shown).
    cues: tuple[Cue, ...]
    subject: str | None = None
    products: tuple[dict[str, Any], ...] = ()


def render_variant(
    session: Session, campaign: Campaign, variant: str, profile: Profile, *,
    recommender: Recommender | None = None, sku: str | None = None,
) -> tuple[str, tuple[Cue, ...]]:  # fmt: skip
    """The variant's HTML for this profile and the cues it truly carries."""
    content = render_content(
        session, campaign, variant, profile, recommender=recommender, sku=sku
    )
    return content.html, content.cues


def render_content(
    session: Session, campaign: Campaign, variant: str, profile: Profile, *,
    recommender: Recommender | None = None, sku: str | None = None,
    trigger: dict[str, Any] | None = None, link: Callable[[str], str] | None = None,
) -> Content:  # fmt: skip
    """Subject and body of the variant for this profile. ``trigger`` is what the
    hybrid campaign's trigger found (its products and detail); ``link`` turns a
    shop path into the address a message links to (a counted click)."""
    compiled = campaign.templates[variant]
    subject = campaign.subjects.get(variant)
    names = compiled.names | (subject.names if subject else frozenset())
    products: list[dict[str, Any]] = []
    if "products" in names:
        products = _products(session, campaign, profile, recommender, sku, trigger)
    if link is not None:
        products = [{**p, "url": link(p["url"])} for p in products]
    context = {
        "profile": {
            "id": profile.id, "traits": dict(profile.traits or {}),
            **segments.labels_of(session, profile),
        },
        "products": products,
        "campaign": {"id": campaign.id, "name": campaign.spec.name},
        "variant": {"id": variant},
        "trigger": {"detail": "", "skus": [], **(trigger or {})},
        "shop_url": link("/shop") if link else "/shop",
    }  # fmt: skip
    html = render(compiled, context)
    title = render(subject, context).strip() if subject else None
    shown = {cue for p in products for cue in p["cues"]}
    cues = tuple(
        c for c in campaign.cues[variant] if c not in PRODUCT_CUES or c.value in shown
    )
    return Content(html, cues, title, tuple(products))


def _products(
    session: Session, campaign: Campaign, profile: Profile,
    recommender: Recommender | None, sku: str | None,
    trigger: dict[str, Any] | None,
) -> list[dict[str, Any]]:  # fmt: skip
    options = campaign.spec.products
    limit = options.limit if options else 3
    if options is not None and options.source == "trigger":
        skus = list((trigger or {}).get("skus") or [])[:limit]
        found = catalog.get_many(session, skus)
        return [
            _product(ProductPublic.of(found[s]), "", []) for s in skus if s in found
        ]
    if recommender is None or not len(recommender.index):
        raise TemplateRenderError(
            campaign.file, 1, "the template shows products, and the product index "
            "is not built yet",
        )  # fmt: skip
    focus = sku if sku and recommender.index.get(sku) is not None else None
    shopper = shopper_of(session, profile, recommender.index, focus=focus)
    listing = recommender.recommend(
        shopper, Filters(), limit=limit,
        stage=options.strategy if options else None,
    )  # fmt: skip
    return [_product(r.product, r.reason, r.cues) for r in listing.items]


def _product(product: ProductPublic, reason: str, cues: list[Cue]) -> dict[str, Any]:
    return {
        "sku": product.sku, "name": product.name, "price": product.price,
        "currency": product.currency, "url": f"/shop/p/{product.url_key}",
        "image": product.image, "rating": product.rating,
        "review_count": product.review_count, "in_stock": product.in_stock,
        "reason": reason, "cues": [c.value for c in cues],
    }  # fmt: skip


# Bandit counts and outcomes ---------------------------------------------------------


def arms(
    session: Session, campaign: Campaign, context: dict[str, str | None] | None = None
) -> list[bandit.Arm]:
    """Impressions and rewarded impressions (clicked or converted) per variant,
    control impressions left out; with a context, the counts in that context
    shrunk towards the overall ones."""
    overall = _counts(session, campaign, {})
    if context is None:
        return overall
    here = {a.variant: a for a in _counts(session, campaign, context)}
    return [bandit.in_context(arm, here[arm.variant]) for arm in overall]


def _counts(
    session: Session, campaign: Campaign, context: dict[str, str | None]
) -> list[bandit.Arm]:
    where = [
        CampaignImpression.campaign == campaign.id,
        col(CampaignImpression.control).is_(False),
        *(
            col(getattr(CampaignImpression, fact)).is_(None) if value is None
            else getattr(CampaignImpression, fact) == value
            for fact, value in context.items()
        ),
    ]  # fmt: skip
    shown = dict(
        session.exec(
            select(CampaignImpression.variant, func.count())
            .where(*where).group_by(CampaignImpression.variant)
        ).all()
    )  # fmt: skip
    # An impression is rewarded once, whether it was clicked, converted or both.
    rewarded = dict(
        session.exec(
            select(CampaignImpression.variant,
                   func.count(func.distinct(CampaignImpression.id)))
            .join(CampaignOutcome,
                  col(CampaignOutcome.impression_id) == col(CampaignImpression.id))
            .where(*where).group_by(CampaignImpression.variant)
        ).all()
    )  # fmt: skip
    return [
        bandit.Arm(v.id, int(shown.get(v.id, 0)), int(rewarded.get(v.id, 0)))
        for v in campaign.spec.variants
    ]


def context_of(
    session: Session, profile_id: str, now: datetime
) -> dict[str, str | None]:
    """The profile's context facts campaigns learn from, as plain strings."""
    facts = context_data.snapshots(session, [profile_id], now=now, facts=CONTEXT_FACTS)
    found = facts.get(profile_id) or {}
    return {k: None if found.get(k) is None else str(found[k]) for k in CONTEXT_FACTS}


def eligible_arms(
    session: Session, campaign: Campaign, profile: Profile, now: datetime,
    context: dict[str, str | None] | None = None,
) -> list[bandit.Arm]:  # fmt: skip
    """The bandit's arms for variants whose ``when`` holds for the profile now."""
    whens = {v.id: v.when for v in campaign.spec.variants}
    return [
        arm for arm in arms(session, campaign, context)
        if whens[arm.variant] is None
        or campaign_rules.holds(session, whens[arm.variant], profile, now)
    ]  # fmt: skip


def _collect_if_due(session: Session, campaign: Campaign, now: datetime) -> None:
    key = (str(session.get_bind().url), campaign.id)
    every = get_settings().campaigns.outcomes_seconds
    if clock.monotonic() - _collected.get(key, -float("inf")) < every:
        return
    _collected[key] = clock.monotonic()
    collect_outcomes(session, campaign.id, now=now)


def collect_outcomes(session: Session, campaign_id: str, *, now: datetime) -> int:
    """Store the campaign's clicks and attributed orders not stored yet, read from
    its profiles' events; returns how many were new. Safe to run again."""
    impressions = list(
        session.exec(
            select(CampaignImpression).where(CampaignImpression.campaign == campaign_id)
        )
    )
    if not impressions:
        return 0
    by_profile: dict[str, list[CampaignImpression]] = {}
    for impression in sorted(impressions, key=lambda i: _aware(i.at)):
        by_profile.setdefault(impression.profile_id, []).append(impression)
    events = profiles.list_events_of(
        session, sorted(by_profile), names=["Promotion Clicked", "Order Completed"],
        since=min(_aware(i.at) for i in impressions),
    )  # fmt: skip
    stored = set(
        session.exec(
            select(CampaignOutcome.impression_id, CampaignOutcome.kind,
                   CampaignOutcome.ref)
            .where(CampaignOutcome.campaign == campaign_id)
        ).all()
    )  # fmt: skip
    window = timedelta(days=get_settings().campaigns.attribution_days)
    new = []
    for profile_id, found in events.items():
        for name, at, properties in found:
            outcome = _outcome(by_profile[profile_id], name, at, properties, window)
            if outcome is None or outcome[:3] in stored or at > now:
                continue
            stored.add(outcome[:3])
            new.append(
                CampaignOutcome(impression_id=outcome[0], campaign=campaign_id,
                                kind=outcome[1], ref=outcome[2], revenue=outcome[3],
                                at=at)
            )  # fmt: skip
    session.add_all(new)
    session.commit()
    return len(new)


def _outcome(
    shown: list[CampaignImpression], name: str, at: datetime,
    properties: dict[str, Any], window: timedelta,
) -> tuple[str, str, str, float] | None:  # fmt: skip
    if name == "Promotion Clicked":
        promotion = str(properties.get("promotion_id") or "")
        hit = next((i for i in shown if i.id == promotion and not i.control), None)
        return (hit.id, CLICK, hit.id, 0.0) if hit else None
    before = [i for i in shown if _aware(i.at) <= at <= _aware(i.at) + window]
    if not before:
        return None
    try:
        order = OrderFact.model_validate(properties)
    except ValidationError:
        return None
    ref = order.order_id or at.isoformat()
    return before[-1].id, CONVERSION, ref, float(order.amount)


# Results ------------------------------------------------------------------------------


def list_results(
    session: Session, campaign: Campaign, *, now: datetime | None = None
) -> CampaignResults:
    """Impressions, clicks, conversions and revenue per variant, and the uplift of
    the conversion rate of treated profiles over the control group's."""
    collect_outcomes(session, campaign.id, now=now or datetime.now(UTC))
    impressions = list(
        session.exec(
            select(CampaignImpression).where(CampaignImpression.campaign == campaign.id)
        )
    )
    outcomes = list(
        session.exec(
            select(CampaignOutcome).where(CampaignOutcome.campaign == campaign.id)
        )
    )
    of = {i.id: i for i in impressions}
    treated = [i for i in impressions if not i.control]
    held = {i.profile_id for i in impressions if i.control}
    variants = [
        _variant_result(v.id, [i for i in treated if i.variant == v.id], outcomes)
        for v in campaign.spec.variants
    ]
    converted = {
        of[o.impression_id].profile_id for o in outcomes if o.kind == CONVERSION
    }
    reached = {i.profile_id for i in treated}
    skips = session.exec(
        select(CampaignSkip.reason).where(CampaignSkip.campaign == campaign.id)
        .order_by(col(CampaignSkip.id).desc()).limit(20)
    ).all()  # fmt: skip
    return CampaignResults(
        campaign=campaign.id, impressions=len(treated), profiles=len(reached),
        control_profiles=len(held), clicks=sum(v.clicks for v in variants),
        conversions=sum(o.kind == CONVERSION for o in outcomes),
        revenue=round(sum(o.revenue for o in outcomes), 2), variants=variants,
        uplift=uplift(len(converted & reached), len(reached),
                      len(converted & held), len(held)),
        render_errors=list(dict.fromkeys(skips)),
        by_context=_by_context(treated, outcomes),
        journeys=_count_by(session, CampaignJourney, campaign.id),
        sends=_count_by(session, CampaignSend, campaign.id),
    )  # fmt: skip


def _by_context(
    treated: list[CampaignImpression], outcomes: list[CampaignOutcome]
) -> dict[str, list[ContextResult]]:
    """Where the campaign works: impressions, clicks and conversions by the value
    of each context fact when it was shown."""
    kinds: dict[str, set[str]] = {}
    for outcome in outcomes:
        kinds.setdefault(outcome.impression_id, set()).add(outcome.kind)
    found: dict[str, list[ContextResult]] = {}
    for fact in CONTEXT_FACTS:
        groups: dict[str, list[CampaignImpression]] = {}
        for impression in treated:
            value = getattr(impression, fact) or "unknown"
            groups.setdefault(value, []).append(impression)
        rows = []
        for value, shown in sorted(groups.items()):
            clicks = sum(CLICK in kinds.get(i.id, ()) for i in shown)
            converted = sum(CONVERSION in kinds.get(i.id, ()) for i in shown)
            rows.append(
                ContextResult(
                    value=value, impressions=len(shown), clicks=clicks,
                    conversions=converted, click_rate=round(clicks / len(shown), 4),
                    conversion_rate=round(converted / len(shown), 4),
                )
            )  # fmt: skip
        found[fact] = rows
    return found


def _count_by(session: Session, table: Any, campaign_id: str) -> dict[str, int]:
    rows = session.exec(
        select(table.status, func.count())
        .where(table.campaign == campaign_id).group_by(table.status)
    ).all()  # fmt: skip
    return {status: int(count) for status, count in rows}


# Hybrid campaigns: journeys, clicks in messages, unsubscribing ------------------------


def list_journeys(
    session: Session, campaign: Campaign, *, status: str | None, limit: int
) -> list[JourneyPublic]:
    statement = select(CampaignJourney).where(CampaignJourney.campaign == campaign.id)
    if status is not None:
        statement = statement.where(CampaignJourney.status == status)
    found = session.exec(
        statement.order_by(col(CampaignJourney.entered_at).desc()).limit(limit)
    ).all()
    sends: dict[str, list[CampaignSend]] = {}
    for send in session.exec(
        select(CampaignSend).where(
            col(CampaignSend.journey_id).in_([j.id for j in found])
        )
    ):
        sends.setdefault(send.journey_id, []).append(send)
    return [_journey_public(j, sends.get(j.id, [])) for j in found]


def _journey_public(j: CampaignJourney, sends: list[CampaignSend]) -> JourneyPublic:
    return JourneyPublic(
        id=j.id, profile_id=j.profile_id, status=j.status, detail=j.detail,
        reason=j.reason, step=j.step, due_at=j.due_at, entered_at=j.entered_at,
        control=j.control, products=j.skus,
        sends=[
            SendPublic(step=int(s.id.rsplit("-", 1)[1]), **s.model_dump())
            for s in sorted(sends, key=lambda s: s.created_at)
        ],
    )  # fmt: skip


def record_click(session: Session, impression_id: str) -> bool:
    """A click on a link in a message, as the profile's ``Promotion Clicked``
    event (stored once per impression); False when the impression is unknown."""
    impression = session.get(CampaignImpression, impression_id)
    if impression is None or impression.control:
        return False
    profile = session.get(Profile, impression.profile_id)
    if profile is None:
        return False
    clicked = Event(
        message_id=f"campaign-click:{impression.id}", type="track",
        name="Promotion Clicked", source="campaigns", timestamp=datetime.now(UTC),
        properties={
            "promotion_id": impression.id, "content_id": impression.id,
            "campaign": impression.campaign, "variant": impression.variant,
            "channel": impression.channel,
        },
    )  # fmt: skip
    added = profiles.add_event(session, profile, clicked)
    session.commit()
    return added


def unsubscribe(session: Session, send_id: str) -> str:
    """Withdraw the consent the send relied on (its campaign's, else
    email_marketing); returns the purpose."""
    send = session.get(CampaignSend, send_id)
    if send is None:
        raise CampaignNotFoundError(
            f"no message {send_id!r}: the link is incomplete or too old",
            loc=["path", "send_id"],
        )
    campaign = get_folder().get(send.campaign)
    purpose = (campaign.spec.guards.consent if campaign else None) or "email_marketing"
    profile = session.get(Profile, send.profile_id)
    if profile is not None:
        profiles.record_consent(
            session, profile,
            ConsentCreate(purpose=purpose, status=ConsentStatus.withdrawn,
                          source=f"unsubscribe link, campaign {send.campaign}"),
        )  # fmt: skip
    return purpose


def _variant_result(
    variant: str, shown: list[CampaignImpression], outcomes: list[CampaignOutcome]
) -> VariantResult:
    ids = {i.id for i in shown}
    mine = [o for o in outcomes if o.impression_id in ids]
    return VariantResult(
        variant=variant, impressions=len(shown),
        profiles=len({i.profile_id for i in shown}),
        clicks=sum(o.kind == CLICK for o in mine),
        conversions=sum(o.kind == CONVERSION for o in mine),
        revenue=round(sum(o.revenue for o in mine), 2),
    )  # fmt: skip


def uplift(
    treated_converted: int, treated: int, control_converted: int, control: int
) -> Uplift | None:
    """The difference of the two conversion rates with Newcombe's hybrid score
    interval (from the two Wilson intervals), 95%: unlike the Wald interval it
    stays inside [-1, 1] and keeps its coverage for small groups and rates near 0,
    which is what a campaign's first days look like."""
    if not treated or not control:
        return None
    low, high = confint_proportions_2indep(
        treated_converted, treated, control_converted, control,
        method="newcomb", compare="diff", alpha=0.05,
    )  # fmt: skip
    p1, p2 = treated_converted / treated, control_converted / control
    return Uplift(
        treated_rate=round(p1, 6), control_rate=round(p2, 6),
        difference=round(p1 - p2, 6), low=round(float(low), 6),
        high=round(float(high), 6),
    )  # fmt: skip


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
