"""Catalog rules and queries. No HTTP here."""

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Text, cast, func
from sqlmodel import Session, col, select

from catalog.errors import ProductNotFoundError
from catalog.importers import RowError, read_catalog
from catalog.models import ImportReport, Product, ProductCreate, utcnow


def import_file(session: Session, path: Path, *, fmt: str) -> ImportReport:
    return import_products(session, read_catalog(path, fmt))


def import_products(
    session: Session, records: Iterable[ProductCreate | RowError]
) -> ImportReport:
    """Create or update products; rows that did not change are left untouched."""
    report = ImportReport()
    for record in records:
        if isinstance(record, RowError):
            report.rejected.append(str(record))
            continue
        digest = _content_hash(record)
        existing = session.get(Product, record.sku)
        if existing is None:
            session.add(Product(**record.model_dump(), content_hash=digest))
            report.created += 1
        elif existing.content_hash == digest and existing.active:
            report.unchanged += 1
        else:
            for field, value in record.model_dump().items():
                setattr(existing, field, value)
            existing.content_hash, existing.active = digest, True
            existing.updated_at = utcnow()
            report.updated += 1
    session.commit()
    return report


def get_or_raise(session: Session, sku: str) -> Product:
    product = session.get(Product, sku)
    if product is None or not product.active:
        raise ProductNotFoundError(f"no product with sku {sku!r}", loc=["path", "sku"])
    return product


def get_by_url_key(session: Session, url_key: str) -> Product:
    statement = select(Product).where(Product.url_key == url_key, Product.active)
    product = session.exec(statement).first()
    if product is None:
        raise ProductNotFoundError(
            f"no product at {url_key!r}", loc=["path", "url_key"]
        )
    return product


def get_many(session: Session, skus: Iterable[str]) -> dict[str, Product]:
    """Active products by sku; also finds a parent from one of its variant skus."""
    wanted = set(skus)
    if not wanted:
        return {}
    rows = session.exec(select(Product).where(col(Product.sku).in_(wanted))).all()
    found = {p.sku: p for p in rows if p.active}
    for sku in wanted - found.keys():
        parent = find_parent_of_variant(session, sku)
        if parent is not None:
            found[sku] = parent
    return found


def find_parent_of_variant(session: Session, variant_sku: str) -> Product | None:
    # Magento variant skus extend the parent's ("MH01-XS-Black" -> "MH01").
    parts = variant_sku.split("-")
    for end in range(len(parts) - 1, 0, -1):
        product = session.get(Product, "-".join(parts[:end]))
        if (
            product
            and product.active
            and any(v.get("sku") == variant_sku for v in product.variants)
        ):
            return product
    return None


def list_products(
    session: Session, *, category: str | None = None, offset: int = 0, limit: int = 24
) -> tuple[list[Product], int]:
    statement = select(Product).where(Product.active)
    if category:
        # Categories are stored as a JSON list; match the path text inside it.
        statement = statement.where(
            func.lower(cast(Product.categories, Text)).contains(category.lower())
        )
    total = session.exec(select(func.count()).select_from(statement.subquery())).one()
    page = statement.order_by(Product.sku).offset(offset).limit(limit)
    return list(session.exec(page).all()), int(total)


def list_active(session: Session) -> list[Product]:
    return list(session.exec(select(Product).where(Product.active)).all())


def list_categories(session: Session) -> list[str]:
    paths: set[str] = set()
    for categories in session.exec(select(Product.categories).where(Product.active)):
        paths.update(categories)
    return sorted(paths)


def _content_hash(record: ProductCreate) -> str:
    payload = json.dumps(record.model_dump(), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
