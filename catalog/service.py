"""Catalog rules and queries. No HTTP here."""

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Text, cast, func
from sqlmodel import Session, col, select

from catalog.errors import ProductNotFoundError
from catalog.importers import RowError, read_catalog, read_reviews
from catalog.models import (
    CatalogChange,
    ImportReport,
    Product,
    ProductCreate,
    StockUpdate,
    brand_of,
    utcnow,
)


def import_file(
    session: Session, path: Path, *, fmt: str, brand: str | None = None
) -> ImportReport:
    """``brand`` is the brand of the rows that name none, such as a shop's own
    label, whose exports seldom say it."""
    records = read_catalog(path, fmt)
    if brand and brand.strip():
        records = (with_brand(r, brand.strip()) for r in records)
    return import_products(session, records)


def with_brand(
    record: ProductCreate | RowError, brand: str
) -> ProductCreate | RowError:
    if isinstance(record, RowError) or brand_of(record.attributes):
        return record
    return record.model_copy(
        update={"attributes": {**record.attributes, "brand": brand}}
    )


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
            was = (existing.in_stock and existing.active, existing.price)
            for field, value in record.model_dump().items():
                setattr(existing, field, value)
            _note_change(session, existing, was)
            existing.content_hash, existing.active = digest, True
            existing.updated_at = utcnow()
            report.updated += 1
    session.commit()
    return report


def import_reviews(session: Session, path: Path) -> ImportReport:
    """Review counts and average ratings per product, replacing earlier figures;
    reviews of a variant count for its product."""
    ratings: dict[str, list[int]] = {}
    report = ImportReport()
    for record in read_reviews(path):
        if isinstance(record, RowError):
            report.rejected.append(str(record))
        else:
            ratings.setdefault(record.sku, []).append(record.rating)
    products = get_many(session, ratings)
    per_product: dict[str, list[int]] = {}
    for sku, values in ratings.items():
        if sku in products:
            per_product.setdefault(products[sku].sku, []).extend(values)
        else:
            report.rejected.append(f"sku {sku!r}: no such product in the catalog")
    for sku, values in per_product.items():
        product = products.get(sku) or session.get(Product, sku)
        assert product is not None
        rating = round(sum(values) / len(values), 2)
        if (product.review_count, product.rating) == (len(values), rating):
            report.unchanged += 1
            continue
        product.review_count, product.rating = len(values), rating
        product.updated_at = utcnow()
        session.add(product)
        report.updated += 1
    session.commit()
    return report


def set_stock(session: Session, sku: str, update: StockUpdate) -> Product:
    """The shop sold or restocked something; the index hears of it on its next poll."""
    product = get_or_raise(session, sku)
    was = (product.in_stock and product.active, product.price)
    if update.variant_sku is None:
        product.qty = update.qty
    else:
        variants = [dict(v) for v in product.variants]
        for variant in variants:
            if variant.get("sku") == update.variant_sku:
                variant["qty"], variant["in_stock"] = update.qty, update.qty > 0
                break
        else:
            raise ProductNotFoundError(
                f"product {sku!r} has no variant {update.variant_sku!r}",
                loc=["body", "variant_sku"],
            )
        product.variants = variants
        product.qty = sum(int(v.get("qty") or 0) for v in variants)
    in_variants = [v for v in product.variants if v.get("in_stock")]
    product.in_stock = product.qty > 0 and (not product.variants or bool(in_variants))
    _note_change(session, product, was)
    product.updated_at = utcnow()
    session.add(product)
    session.commit()
    session.refresh(product)  # expired by the commit; the caller reads it
    return product


def _note_change(session: Session, product: Product, was: tuple[bool, float]) -> None:
    """Record a product coming back in stock or getting cheaper, for campaigns."""
    available, price = was
    if not available and product.in_stock:
        change = CatalogChange(sku=product.sku, kind="back_in_stock")
        change.new_price = product.price
        session.add(change)
    if product.price < price:
        change = CatalogChange(sku=product.sku, kind="price_dropped")
        change.old_price, change.new_price = price, product.price
        session.add(change)


def list_changes(
    session: Session, after_id: int, *, limit: int = 100
) -> list[CatalogChange]:
    statement = select(CatalogChange).where(col(CatalogChange.id) > after_id)
    return list(session.exec(statement.order_by(col(CatalogChange.id)).limit(limit)))


def remove(session: Session, sku: str) -> None:
    """Taken off the shop: kept for the history that names it, never shown again."""
    product = get_or_raise(session, sku)
    product.active, product.updated_at = False, utcnow()
    session.add(product)
    session.commit()


def change_stats(session: Session) -> tuple:
    """(products, newest change): equal between two polls means nothing changed,
    except a change committed late with an older timestamp (see the recommender's
    periodic full check)."""
    row = session.exec(select(func.count(), func.max(Product.updated_at))).one()
    return tuple(row)


def changed_since(session: Session, since: datetime | None) -> list[Product]:
    """Products, active or removed, changed after ``since`` (all of them for None)."""
    statement = select(Product)
    if since is not None:
        statement = statement.where(Product.updated_at > since)
    return list(session.exec(statement.order_by(Product.updated_at)).all())


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
