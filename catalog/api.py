"""Catalog routes: the public product listing, and the shop's stock and removals."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import Session

from catalog import service
from catalog.models import ProductPage, ProductPublic, StockUpdate
from core.auth import AdminOnly
from core.db import get_session

router = APIRouter(prefix="/v1/products", tags=["catalog"])
SessionDep = Annotated[Session, Depends(get_session)]


@router.get("", response_model=ProductPage)
def list_products(
    session: SessionDep,
    category: str | None = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 24,
) -> ProductPage:
    products, total = service.list_products(
        session, category=category, offset=offset, limit=limit
    )
    return ProductPage(
        items=[ProductPublic.of(p) for p in products],
        total=total,
        offset=offset,
        limit=limit,
    )


@router.get("/{sku}", response_model=ProductPublic)
def read_product(sku: str, session: SessionDep) -> ProductPublic:
    return ProductPublic.of(service.get_or_raise(session, sku))


@router.put("/{sku}/stock", response_model=ProductPublic, dependencies=[AdminOnly])
def update_stock(sku: str, update: StockUpdate, session: SessionDep) -> ProductPublic:
    """Set the stock of a product or of one of its variants (admin token). A product
    with nothing left stops being recommended within seconds."""
    return ProductPublic.of(service.set_stock(session, sku, update))


@router.delete("/{sku}", status_code=204, dependencies=[AdminOnly])
def remove_product(sku: str, session: SessionDep) -> None:
    """Take a product off the shop (admin token); orders and events naming it stay."""
    service.remove(session, sku)
