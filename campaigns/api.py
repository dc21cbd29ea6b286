"""Campaign routes: the website's personalisation (write key), the links in
messages (a counted click, an unsubscribe: no key, the send id is the token) and,
for marketers, the loaded campaigns, their results, journeys and suppression lists
(admin token)."""

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session

from campaigns import service
from campaigns.models import (
    CampaignPublic,
    CampaignResults,
    JourneyPublic,
    Personalisation,
)
from core.auth import AdminOnly, ReaderIsAdmin
from core.db import get_session
from core.errors import InvalidInputError, NotFoundError, UnauthorizedError
from core.settings import get_settings
from profiles import service as profiles

router = APIRouter(prefix="/v1", tags=["campaigns"])
SessionDep = Annotated[Session, Depends(get_session)]
Slot = Annotated[str, Query(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="slot")]


@router.get("/personalize", response_model=Personalisation)
def personalize(
    request: Request,
    session: SessionDep,
    is_admin: ReaderIsAdmin,
    profile: Annotated[str, Query(description="e.g. anonymous_id:abc")],
    slot: Slot,
    sku: Annotated[str | None, Query(description="the product on the page")] = None,
    impression_id: Annotated[
        str | None,
        Query(
            pattern=r"^[A-Za-z0-9_-]{8,64}$",
            description="the page's id for this slot: asking again records nothing",
        ),
    ] = None,
) -> Personalisation:
    """The campaign content for this profile in this slot, or none with the reason
    each campaign for the slot stopped."""
    if not is_admin and not profile.startswith("anonymous_id:"):
        # The write key is public: it may only ask for the visitor's own cookie.
        raise UnauthorizedError(
            "with a write key, profile must be the visitor's anonymous_id; other "
            "identities need the admin token",
            loc=["query", "profile"],
        )
    try:
        found = profiles.get_by_ref_or_raise(session, profile)
    except NotFoundError:
        if not profile.startswith("anonymous_id:"):
            raise
        # A first page view: the worker has not made the visitor's profile yet.
        return Personalisation(slot=slot)
    return service.personalise(
        session, found, slot=slot, impression_id=impression_id, sku=sku,
        recommender=getattr(request.app.state, "recommender", None),
    )  # fmt: skip


@router.get("/campaigns", response_model=list[CampaignPublic], dependencies=[AdminOnly])
def list_campaigns() -> list[CampaignPublic]:
    """Every campaign file: what is running, and the mistakes of each file."""
    folder = service.get_folder()
    folder.reload()
    listed = []
    for name, state in sorted(folder.files.items()):
        campaign = state.campaign
        spec = campaign.spec if campaign else None
        listed.append(
            CampaignPublic(
                id=spec.id if spec else None, file=name, problems=state.problems,
                name=spec.name if spec else None,
                status=spec.status if spec else None,
                kind=spec.kind if spec else None,
                slot=spec.placement.slot if spec else None,
                running=bool(campaign and campaign.is_running(datetime.now(UTC))),
                variants=[v.id for v in spec.variants] if spec else [],
            )
        )  # fmt: skip
    return listed


@router.get(
    "/campaigns/{campaign_id}/results",
    response_model=CampaignResults,
    dependencies=[AdminOnly],
)
def campaign_results(campaign_id: str, session: SessionDep) -> CampaignResults:
    """Impressions, clicks, conversions and revenue per variant, and the uplift
    over the control group with its 95% interval."""
    return service.list_results(session, service.get_or_raise(campaign_id))


@router.put(
    "/suppressions/{list_name}/profiles/{ref}", status_code=204,
    dependencies=[AdminOnly],
)  # fmt: skip
def suppress(
    list_name: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,62}$")],
    ref: str,
    session: SessionDep,
) -> None:
    """Put a profile on a suppression list; campaigns naming the list skip it."""
    service.suppress(session, list_name, profiles.get_by_ref_or_raise(session, ref))


@router.get(
    "/campaigns/{campaign_id}/journeys",
    response_model=list[JourneyPublic],
    dependencies=[AdminOnly],
)
def campaign_journeys(
    campaign_id: str,
    session: SessionDep,
    status: Annotated[
        str | None, Query(pattern="^(active|done|exited)$", description="filter")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[JourneyPublic]:
    """The newest journeys of a hybrid campaign: why each started, where it is,
    why it ended, and what each of its steps sent or why it did not."""
    campaign = service.get_or_raise(campaign_id)
    return service.list_journeys(session, campaign, status=status, limit=limit)


@router.get("/campaigns/click/{send_id}", include_in_schema=False)
def click(
    send_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{8,64}$")],
    to: Annotated[str, Query(max_length=2000)],
    session: SessionDep,
) -> RedirectResponse:
    """A link in a message: counts the click, then goes on to the shop's page."""
    if not is_shop_path(to):
        raise InvalidInputError(
            "to must be a path on the shop, starting with one / and holding no "
            "backslash, space or control character",
            loc=["query", "to"],
        )
    service.record_click(session, send_id)
    # To the shop's own address: the api may sit on another host.
    return RedirectResponse(get_settings().api.storefront_url + to, status_code=303)


def is_shop_path(to: str) -> bool:
    """A path on this site, never another host: browsers drop tabs and newlines
    from an address and read a backslash as a slash, so "/\t/evil.com" would
    become "//evil.com"; none of those characters is accepted."""
    if any(c == "\\" or ord(c) < 0x21 or ord(c) == 0x7F for c in to):
        return False
    parts = urlsplit(to)
    return (
        to.startswith("/")
        and not to.startswith("//")
        and not (parts.scheme or parts.netloc)
    )


@router.get("/campaigns/unsubscribe/{send_id}", include_in_schema=False)
def unsubscribe_page(
    send_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{8,64}$")],
) -> HTMLResponse:
    """The page an unsubscribe link opens: one button, so that a mail scanner
    following links does not unsubscribe anyone."""
    return HTMLResponse(
        "<!doctype html><title>Unsubscribe</title>"
        f'<form method="post" action="/v1/campaigns/unsubscribe/{send_id}">'
        "<p>Stop receiving these messages?</p>"
        '<button type="submit">Unsubscribe</button></form>'
    )


@router.post("/campaigns/unsubscribe/{send_id}", include_in_schema=False)
def unsubscribe(
    send_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{8,64}$")],
    session: SessionDep,
) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058) and the page's button: withdraws the
    consent the campaign's messages rely on."""
    purpose = service.unsubscribe(session, send_id)
    return HTMLResponse(
        "<!doctype html><title>Unsubscribed</title>"
        f"<p>Done: you will not receive these messages any more ({purpose}).</p>"
    )
