"""Storefront pages and the cart API they use."""

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from catalog import service as catalog
from core.db import get_session
from core.settings import get_settings
from shop import service
from shop.models import Cart, CartAdd

router = APIRouter(tags=["demo shop"])
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
SessionDep = Annotated[Session, Depends(get_session)]
PAGE_SIZE = 24


def _page_context(request: Request, **context: object) -> dict[str, object]:
    settings = get_settings()
    write_key = next(
        (
            k
            for k, source in settings.tracking.write_keys.items()
            if source == "website"
        ),
        "",
    )
    return {"request": request, "write_key": write_key, **context}


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/shop")


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return Response(status_code=204)


@router.get("/shop", response_class=HTMLResponse, include_in_schema=False)
def product_list(
    request: Request,
    session: SessionDep,
    category: str | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    products, total = catalog.list_products(
        session, category=category, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    top = sorted({c.split("/")[0] for c in catalog.list_categories(session)})
    context = _page_context(
        request, products=products, total=total, page=page, category=category,
        pages=max(1, -(-total // PAGE_SIZE)), categories=top,
    )  # fmt: skip
    return templates.TemplateResponse(request, "list.html", context)


@router.get("/shop/p/{url_key}", response_class=HTMLResponse, include_in_schema=False)
def product_page(request: Request, url_key: str, session: SessionDep) -> HTMLResponse:
    product = catalog.get_by_url_key(session, url_key)
    return templates.TemplateResponse(
        request, "product.html", _page_context(request, product=product)
    )


@router.get("/shop/cart", response_class=HTMLResponse, include_in_schema=False)
def cart_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "cart.html", _page_context(request))


@router.get("/shop/segment-demo", response_class=HTMLResponse, include_in_schema=False)
def segment_demo(
    request: Request, delivery: Literal["standard", "batching"] = "standard"
) -> HTMLResponse:
    """Segment's own browser library (analytics.js 2.0) sending to this platform,
    loaded from this api as its CDN: what a shop moving from Segment keeps."""
    # "batching" sends to /v1/b in groups; "standard" sends each event at once.
    strategy = {"strategy": "batching", "config": {"size": 10, "timeout": 1000}}
    options = (
        {"integrations": {"Segment.io": {"deliveryStrategy": strategy}}}
        if delivery == "batching"
        else {}
    )
    context = _page_context(request, delivery=delivery, load_options=options)
    return templates.TemplateResponse(request, "segment_demo.html", context)


@router.post("/shop/api/cart", response_model=Cart)
def add_to_cart(item: CartAdd, session: SessionDep) -> Cart:
    return service.add_to_cart(
        session, cart_id=item.cart_id, sku=item.sku, qty=item.qty
    )


@router.get("/shop/api/cart/{cart_id}", response_model=Cart)
def read_cart(cart_id: str, session: SessionDep) -> Cart:
    return service.get_cart(session, cart_id)
