"""Hybrid campaigns at work: profiles enter on a trigger, and their journeys run
the campaign's steps. No HTTP here; ``campaigns.worker`` runs it on a clock.

Entering: the profiles that events touched (and those whose trigger was due to
become true with time) are tested against every running hybrid campaign: its
trigger, its audience and its rules. Each occurrence of the trigger starts one
journey (``CampaignJourney``, unique per campaign, profile and occurrence key),
unless the profile entered the campaign less than ``reentry.after_days`` ago.
Whether the journey is held out as control is decided here, once.

Running: a journey whose step is due runs steps until one waits. A ``send``
tests the rules and the guards at that moment. Consent, suppression and a
missing address stop that send (recorded with the reason); quiet hours, a full
frequency cap and ``at: active_hours`` put it off to the first moment allowed. A
send that goes ahead is rendered and written as a pending ``CampaignSend`` in the
same transaction that moves the journey past the step; ``campaigns.delivery``
delivers it. Each step is committed on its own, so a restarted worker goes on
where the last one stopped and writes no send twice.
"""

import logging
import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from campaigns import bandit, service
from campaigns import rules as rules_module
from campaigns.definitions import (
    TEXT_CHANNELS,
    BranchStep,
    Campaign,
    CampaignFolder,
    CheckStep,
    HybridFile,
    SendStep,
    WaitStep,
)
from campaigns.models import (
    CampaignCursor,
    CampaignImpression,
    CampaignJourney,
    CampaignSend,
    CampaignSkip,
    CampaignWatch,
)
from campaigns.templates import TemplateRenderError
from campaigns.triggers import LATE_LIMIT, Occurrence, TriggerFacts
from catalog import service as catalog
from catalog.models import CatalogChange
from core.settings import get_settings
from events.ecommerce import parse_fact, product_keys
from profiles import service as profiles
from profiles.models import Event, IdentityType, Order, Profile
from recommender.service import Recommender
from segments import membership, predictions
from segments.models import ProfileState, SegmentMember, StateChange
from segments.stages import signals_of

logger = logging.getLogger(__name__)
SHOPPING_EVENTS = (
    "Product Viewed", "Product Clicked", "Product Added", "Product Removed",
    "Checkout Started", "Order Completed",
)  # fmt: skip
_rng = random.Random()


def running_hybrids(folder: CampaignFolder, now: datetime) -> list[Campaign]:
    return [c for c in folder.campaigns() if c.journey and c.is_running(now)]


# Entering ----------------------------------------------------------------------


def evaluate(
    session: Session, profile_ids: Iterable[str], *, now: datetime,
    folder: CampaignFolder, only: str | None = None,
) -> int:  # fmt: skip
    """Test the profiles' triggers (of campaign ``only``, or of all); returns how
    many journeys started."""
    ids = sorted(set(profile_ids))
    campaigns = [
        c for c in running_hybrids(folder, now)
        if not _spec(c).trigger.on_catalog and only in (None, c.id)
    ]  # fmt: skip
    if not ids or not campaigns:
        session.commit()  # the watches taken by due_watches
        return 0
    facts = _trigger_facts(session, ids, campaigns, now)
    started = 0
    for campaign in campaigns:
        trigger = _spec(campaign).trigger.rule
        for profile_id, fact in facts.items():
            fired = trigger.fire(fact)
            _watch(session, campaign.id, profile_id, fired.recheck_at)
            for occurrence in fired.occurrences:
                started += _enter(session, campaign, profile_id, occurrence, now)
    session.commit()
    return started


def evaluate_catalog(session: Session, *, now: datetime, folder: CampaignFolder) -> int:
    """Start journeys for catalog changes not seen yet: the people who viewed or
    carted the product recently and have not bought it since."""
    cursor = session.get(CampaignCursor, "catalog") or CampaignCursor(name="catalog")
    changes = catalog.list_changes(session, cursor.value)
    if not changes:
        return 0
    campaigns = [c for c in running_hybrids(folder, now) if _spec(c).trigger.on_catalog]
    started = 0
    for change in changes:
        for campaign in campaigns:
            if _spec(campaign).trigger.kind == change.kind and _drop_counts(
                campaign, change
            ):
                started += _enter_interested(session, campaign, change, now)
    cursor.value = changes[-1].id or cursor.value
    session.add(cursor)
    session.commit()
    return started


def sweep_audiences(
    session: Session, *, now: datetime, folder: CampaignFolder, batch: int = 500
) -> int:
    """The next batch of profiles for each running campaign that sends to its
    audience, in id order from where the last sweep stopped; returns how many
    journeys started. Profiles that join the audience later come with their
    next event."""
    started = 0
    for campaign in running_hybrids(folder, now):
        if _spec(campaign).trigger.kind != "in_audience":
            continue
        name = f"audience:{campaign.id}"
        cursor = session.get(CampaignCursor, name) or CampaignCursor(name=name)
        ids = _candidates(session, campaign, after=cursor.mark, limit=batch)
        if not ids:
            continue
        started += evaluate(session, ids, now=now, folder=folder, only=campaign.id)
        cursor.mark = ids[-1]
        session.add(cursor)
        session.commit()
    return started


def _candidates(
    session: Session, campaign: Campaign, *, after: str, limit: int
) -> list[str]:
    """Profile ids after ``after`` that may be in the audience: the members of its
    segments, or the profiles with one of its labels, or every live profile; the
    whole audience is tested on entry."""
    audience = campaign.spec.audience
    labels = {
        label: getattr(audience, label)
        for label in ("stage", "retention", "customer_type", "persuasion_type")
        if getattr(audience, label) is not None
    }
    if audience.segments is not None:
        column = col(SegmentMember.profile_id)
        statement = select(column).where(
            col(SegmentMember.segment).in_(audience.segments)
        )
    elif labels:
        label, wanted = next(iter(labels.items()))
        column = col(ProfileState.profile_id)
        statement = select(column).where(
            col(getattr(ProfileState, label)).in_([str(v) for v in wanted])
        )
    else:
        column = col(Profile.id)
        statement = select(column).where(col(Profile.merged_into).is_(None))
    found = session.exec(
        statement.where(column > after).distinct().order_by(column).limit(limit)
    ).all()
    return list(found)


def _drop_counts(campaign: Campaign, change: CatalogChange) -> bool:
    rule = _spec(campaign).trigger.rule
    if change.kind != "price_dropped":
        return True
    old, new = change.old_price or 0.0, change.new_price or 0.0
    return old > 0 and (old - new) / old * 100 >= rule.min_percent


def _enter_interested(
    session: Session, campaign: Campaign, change: CatalogChange, now: datetime
) -> int:
    rule = _spec(campaign).trigger.rule
    since = now - timedelta(days=rule.viewed_within_days)
    interested: dict[str, datetime] = {}
    bought: set[str] = set()
    statement = select(Event.profile_id, Event.name, Event.properties, Event.timestamp)
    statement = statement.where(
        col(Event.name).in_(["Product Viewed", "Product Added", "Order Completed"]),
        Event.timestamp >= since,
    )
    for profile_id, name, properties, at in session.exec(statement):
        try:
            skus = product_keys(parse_fact(name, properties or {}))
        except ValueError:
            continue
        if change.sku not in skus and not _variant_of(session, skus, change.sku):
            continue
        if name == "Order Completed":
            bought.add(profile_id)
        else:
            interested[profile_id] = max(_aware(at), interested.get(profile_id, since))
    what = "back in stock" if change.kind == "back_in_stock" else "cheaper now"
    started = 0
    for profile_id in sorted(set(interested) - bought):
        occurrence = Occurrence(
            key=f"{change.kind}:{change.id}", at=_aware(change.at), skus=(change.sku,),
            detail=f"{change.sku} is {what}",
        )  # fmt: skip
        started += _enter(session, campaign, profile_id, occurrence, now)
    return started


def _variant_of(session: Session, skus: list[str], parent: str) -> bool:
    found = catalog.get_many(session, skus)
    return any(p.sku == parent for p in found.values())


def _enter(
    session: Session, campaign: Campaign, profile_id: str, occurrence: Occurrence,
    now: datetime,
) -> int:  # fmt: skip
    spec = _spec(campaign)
    key = occurrence.key[:200]
    known = session.exec(
        select(CampaignJourney.key, CampaignJourney.entered_at).where(
            CampaignJourney.campaign == campaign.id,
            CampaignJourney.profile_id == profile_id,
        )
    ).all()
    if any(k == key for k, _ in known):
        return 0
    last = max((_aware(at) for _, at in known), default=None)
    if last is not None and now - last < timedelta(days=spec.reentry.after_days):
        return 0
    profile = _live_profile(session, profile_id)
    if profile is None or not _in_audience(session, campaign, profile):
        return 0
    if not rules_hold(session, campaign, profile, now):
        return 0
    journey = CampaignJourney(
        id=uuid.uuid4().hex, campaign=campaign.id, profile_id=profile_id, key=key,
        due_at=now, entered_at=now, skus=list(occurrence.skus),
        detail=occurrence.detail,
        control=service.in_control_group(campaign, profile_id),
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(journey)
    except IntegrityError:
        return 0  # entered meanwhile by another worker
    logger.info(
        "journey started",
        extra={"campaign": campaign.id, "journey": journey.id, "why": key},
    )
    return 1


def _watch(
    session: Session, campaign_id: str, profile_id: str, due: datetime | None
) -> None:
    watch = session.get(CampaignWatch, (campaign_id, profile_id))
    if due is None:
        if watch is not None:
            session.delete(watch)
        return
    watch = watch or CampaignWatch(campaign=campaign_id, profile_id=profile_id)
    watch.due_at = due
    session.add(watch)


def due_watches(session: Session, *, now: datetime, limit: int = 500) -> list[str]:
    """Profiles whose trigger may have become true with time; pass them to
    ``evaluate`` in the same session."""
    rows = session.exec(
        select(CampaignWatch).where(CampaignWatch.due_at <= now)
        .order_by(col(CampaignWatch.due_at)).limit(limit)
    ).all()  # fmt: skip
    ids = sorted({w.profile_id for w in rows})
    for watch in rows:
        # Deleted with evaluate's commit, which sets a new one where needed: a
        # failed evaluation leaves them in place.
        session.delete(watch)
    return ids


def _trigger_facts(
    session: Session, ids: list[str], campaigns: list[Campaign], now: datetime
) -> dict[str, TriggerFacts]:
    triggers = [_spec(c).trigger for c in campaigns]
    window = max(t.rule.window for t in triggers)
    names = {*SHOPPING_EVENTS}
    names |= {t.rule.name for t in triggers if t.kind == "event"}
    events = profiles.list_events_of(
        session, ids, names=sorted(names), since=now - max(window, LATE_LIMIT)
    )
    rows = {p.id: p for p in profiles.list_profile_facts(session, ids)}
    last_order = dict(
        session.exec(
            select(Order.profile_id, func.max(Order.placed_at))
            .where(col(Order.profile_id).in_(ids), Order.status == "completed")
            .group_by(col(Order.profile_id))
        ).all()
    )  # fmt: skip
    moves: dict[str, list[tuple[str, str | None, datetime, int]]] = {i: [] for i in ids}
    for change in session.exec(
        select(StateChange)
        .where(col(StateChange.profile_id).in_(ids), StateChange.at >= now - LATE_LIMIT)
        .order_by(col(StateChange.at).desc())
    ):  # fmt: skip
        moves[change.profile_id].append(
            (change.kind, change.to_value, _aware(change.at), change.id or 0)
        )
    facts = {}
    for profile_id in ids:
        row = rows.get(profile_id)
        if row is None or row.merged_into is not None:
            continue
        found = events[profile_id]
        facts[profile_id] = TriggerFacts(
            now=now,
            signals=signals_of(_Like(n, a, p) for n, a, p in found),
            events=found,
            last_seen=_aware(row.last_seen_at) if row.last_seen_at else None,
            last_order=_aware(last_order[profile_id])
            if last_order.get(profile_id) else None,
            moves=moves[profile_id],
        )  # fmt: skip
    return facts


@dataclass(frozen=True)
class _Like:
    name: str
    timestamp: datetime
    properties: dict[str, Any]


# Rules and audience -----------------------------------------------------------------


def rules_hold(
    session: Session, campaign: Campaign, profile: Profile, now: datetime
) -> bool:
    rules = campaign.spec.rules
    return rules is None or rules_module.holds(session, rules, profile, now)


def _in_audience(session: Session, campaign: Campaign, profile: Profile) -> bool:
    member_of = {m.segment for m in membership.segments_of(session, profile)}
    labels = service.segments.labels_of(session, profile)
    return campaign.spec.audience.holds(member_of, labels)


# Running --------------------------------------------------------------------------


def run_due(
    session: Session, *, now: datetime, folder: CampaignFolder,
    recommender: Callable[[], Recommender | None] = lambda: None,
    limit: int = 200,
) -> int:  # fmt: skip
    """Run the steps of journeys that are due; returns how many journeys moved."""
    # A paused or removed campaign's journeys wait, and go on if it comes back.
    running = {c.id: c for c in running_hybrids(folder, now)}
    journeys = session.exec(
        select(CampaignJourney)
        .where(CampaignJourney.status == "active", CampaignJourney.due_at <= now,
               col(CampaignJourney.campaign).in_(sorted(running)))
        .order_by(col(CampaignJourney.due_at)).limit(limit)
    ).all()  # fmt: skip
    for journey in journeys:
        try:
            advance(
                session, journey, running[journey.campaign], now=now,
                recommender=recommender,
            )  # fmt: skip
        except SQLAlchemyError:
            raise  # the store is away: the tick stops, nothing is lost
        except Exception as exc:
            # One journey that cannot go on must not hold the others: it ends,
            # with the reason, and the error is logged.
            session.rollback()
            logger.exception("journey failed", extra={"journey": journey.id})
            journey = session.get(CampaignJourney, journey.id) or journey
            _end(journey, "exited", f"error: {type(exc).__name__}: {exc}"[:500])
            session.add(journey)
            session.commit()
    return len(journeys)


def advance(
    session: Session, journey: CampaignJourney, campaign: Campaign, *,
    now: datetime, recommender: Callable[[], Recommender | None] = lambda: None,
) -> None:  # fmt: skip
    """Run steps until one waits or the journey ends, committing after each."""
    steps = _spec(campaign).steps
    while journey.status == "active" and _aware(journey.due_at) <= now:
        if journey.step >= len(steps):
            _end(journey, "done", "every step ran")
        else:
            step = steps[journey.step]
            profile = _live_profile(session, journey.profile_id)
            if profile is None:
                _end(journey, "exited", "the profile was erased")
            elif profile.id != journey.profile_id:
                journey.profile_id = profile.id  # merged: the journey follows
                continue
            elif isinstance(step, WaitStep):
                journey.step += 1
                journey.due_at = now + step.wait
            elif isinstance(step, CheckStep):
                if rules_module.holds(session, step.check, profile, now):
                    journey.step += 1
                else:
                    _end(journey, "exited", f"step {journey.step + 1}: check not met")
            elif isinstance(step, BranchStep):
                converted = _converted(session, journey)
                way = step.branch.converted if converted else step.branch.otherwise
                _go(journey, way, steps, "converted" if converted else "not converted")
            elif isinstance(step, SendStep):
                _send_step(session, journey, campaign, step, profile, now, recommender)
        session.add(journey)
        session.commit()


def _go(journey: CampaignJourney, way: str, steps: Sequence[Any], why: str) -> None:
    if way == "exit":
        _end(journey, "exited", f"step {journey.step + 1}: {why}, exit")
    elif way == "next":
        journey.step += 1
    else:
        journey.step = next(i for i, s in enumerate(steps) if s.id == way)


def _end(journey: CampaignJourney, status: str, reason: str) -> None:
    journey.status, journey.reason = status, reason


def _converted(session: Session, journey: CampaignJourney) -> bool:
    return (
        session.exec(
            select(func.count()).where(
                Order.profile_id == journey.profile_id,
                Order.status == "completed",
                Order.placed_at >= journey.entered_at,
            )
        ).one()
        > 0
    )


def _send_step(
    session: Session, journey: CampaignJourney, campaign: Campaign, step: SendStep,
    profile: Profile, now: datetime, recommender: Callable[[], Recommender | None],
) -> None:  # fmt: skip
    if not rules_hold(session, campaign, profile, now):
        _end(journey, "exited", f"step {journey.step + 1}: the rules no longer hold")
        return
    later = _put_off_until(session, journey, campaign, step, profile, now)
    if later is not None:
        journey.due_at = later
        return
    send = CampaignSend(
        id=f"{journey.id}-{journey.step}", journey_id=journey.id,
        campaign=campaign.id, profile_id=profile.id,
        channel=campaign.spec.placement.channel, next_attempt_at=now, created_at=now,
    )  # fmt: skip
    journey.step += 1
    journey.deferred = {}
    send.payload = {"context": service.context_of(session, profile.id, now)}
    stop = service.consent_stop(session, campaign, profile) or service.suppression_stop(
        session, campaign, profile
    )
    address, missing = _recipient(session, campaign, profile)
    if stop is None and address is None:
        stop = missing
    if stop is not None:
        send.status, send.reason = "stopped", stop
    elif journey.control:
        send.status, send.reason = "control", "held out to measure uplift"
        session.add(CampaignImpression.of_send(send, now, control=True))
    else:
        _render(session, send, journey, campaign, step, profile, address, recommender)
    session.add(send)


def _put_off_until(
    session: Session, journey: CampaignJourney, campaign: Campaign, step: SendStep,
    profile: Profile, now: datetime,
) -> datetime | None:  # fmt: skip
    """The moment the send may go, when that is later than now."""
    zone = service.zone_of(session, profile)
    if step.send.at == "active_hours" and not journey.deferred.get("active_hours"):
        journey.deferred = {**journey.deferred, "active_hours": True}
        moment = _next_active_hour(session, profile, zone, now)
        if moment > now:
            return moment
    quiet = campaign.spec.guards.quiet_hours
    if quiet is not None and quiet.contains(now.astimezone(zone).time()):
        local = now.astimezone(zone)
        end = local.replace(
            hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0
        )
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(UTC)
    cap = campaign.spec.guards.max_per_day
    if cap is not None:
        sent = session.exec(
            select(CampaignImpression.at).where(
                CampaignImpression.profile_id == profile.id,
                CampaignImpression.channel == campaign.spec.placement.channel,
                col(CampaignImpression.control).is_(False),
                CampaignImpression.at > now - timedelta(days=1),
            ).order_by(col(CampaignImpression.at))
        ).all()  # fmt: skip
        if len(sent) >= cap:
            return _aware(sent[len(sent) - cap]) + timedelta(days=1, seconds=1)
    return None


def _next_active_hour(
    session: Session, profile: Profile, zone: ZoneInfo, now: datetime
) -> datetime:
    """The next start of the hour of the day at which the person is most active
    (their own events, in their time zone, as the predictions' best contact time
    reads them), within a day; now when too little is known."""
    since = now - timedelta(days=predictions.ACTIVITY_DAYS)
    activity = profiles.list_activity_of(
        session, [profile.id], since=since, leave_out=predictions.NOT_THEIR_ACTIVITY
    )[profile.id]
    best = predictions.best_contact_time(
        [at.astimezone(zone) for at, _context in activity if at <= now], zone=zone.key
    )
    local = now.astimezone(zone)
    if best.hour is None or local.hour == best.hour:
        return now
    moment = local.replace(hour=best.hour, minute=0, second=0, microsecond=0)
    if moment <= local:
        moment += timedelta(days=1)
    return moment.astimezone(UTC)


# Who a message goes to on each channel, and why there is no one.
RECIPIENTS = {
    "email": (IdentityType.email, "no email address on the profile"),
    "chat": (IdentityType.anonymous_id, "no website visitor id on the profile"),
    "whatsapp": (IdentityType.whatsapp_id, "no WhatsApp number on the profile"),
}


def _recipient(
    session: Session, campaign: Campaign, profile: Profile
) -> tuple[str | None, str]:
    """The address (email), sender id (chat, WhatsApp) or nothing needed (webhook),
    and the reason when the profile has none."""
    channel = campaign.spec.placement.channel
    if channel not in RECIPIENTS:
        return "", ""
    kind, missing = RECIPIENTS[channel]
    # The newest: the browser or number the person used last.
    found = sorted(
        (i for i in profiles.list_identities(session, profile) if i.type == kind.value),
        key=lambda i: (i.created_at, i.id or 0),
    )
    if found:
        value = found[-1].value
        # The channel knows a WhatsApp sender by its wa_id: the number, no "+".
        return (value.lstrip("+") if channel == "whatsapp" else value), ""
    email = (profile.traits or {}).get("email")
    if channel == "email" and isinstance(email, str) and "@" in email:
        return email, ""
    return None, missing


def _render(
    session: Session, send: CampaignSend, journey: CampaignJourney,
    campaign: Campaign, step: SendStep, profile: Profile, address: str | None,
    recommender: Callable[[], Recommender | None],
) -> None:  # fmt: skip
    variant = step.send.variant
    context = send.payload["context"]
    if variant is None:
        eligible = service.eligible_arms(
            session, campaign, profile, send.created_at, context
        )
        if not eligible:
            send.status, send.reason = "stopped", "no variant's when holds"
            return
        variant = bandit.choose(eligible, _rng)
    send.variant = variant
    base = get_settings().campaigns.public_url.rstrip("/")

    def link(path: str) -> str:
        return f"{base}/v1/campaigns/click/{send.id}?to={quote(path, safe='/')}"

    wants = campaign.spec.products
    needs_index = wants is not None and wants.source == "recommended"
    try:
        content = service.render_content(
            session, campaign, variant, profile,
            recommender=recommender() if needs_index else None,
            trigger={"skus": list(journey.skus), "detail": journey.detail},
            link=link,
        )  # fmt: skip
    except TemplateRenderError as exc:
        send.status, send.reason = "stopped", f"template failed: {exc}"
        session.add(
            CampaignSkip(campaign=campaign.id, variant=variant, profile_id=profile.id,
                         reason=str(exc), at=send.created_at)
        )  # fmt: skip
        return
    send.cues = [c.value for c in content.cues]
    # A subject is one line whatever a trait holds: a line break in a header
    # would start another header.
    subject = " ".join(content.subject.split()) if content.subject else None
    send.payload = {
        "to": address, "subject": subject, "html": content.html,
        "products": [p["sku"] for p in content.products],
        "trigger": journey.detail, "context": context,
    }  # fmt: skip
    if send.channel in TEXT_CHANNELS:
        send.payload["text"] = content.html.strip()


def _live_profile(session: Session, profile_id: str) -> Profile | None:
    """The profile, or the one it was merged into; None once erased."""
    profile = session.get(Profile, profile_id)
    for _hop in range(10):
        if profile is None or profile.merged_into is None:
            return profile
        profile = session.get(Profile, profile.merged_into)
    return None


def _spec(campaign: Campaign) -> HybridFile:
    assert campaign.journey is not None
    return campaign.journey


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
