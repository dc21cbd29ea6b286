"""Catalog tables and API schemas."""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


# Where exports put the brand: Google Shopping feeds and most shops say brand,
# Magento manufacturer, Shopify vendor. The first one present is the brand.
BRAND_ATTRIBUTES = ("brand", "manufacturer", "vendor")


def brand_of(attributes: dict[str, Any]) -> str | None:
    for key in BRAND_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


class Variant(BaseModel):
    sku: str
    size: str | None = None
    color: str | None = None
    qty: int = 0
    in_stock: bool = True


class ProductBase(SQLModel):
    sku: str = Field(primary_key=True)
    name: str
    url_key: str = Field(index=True)
    description: str = ""
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    price: float
    currency: str = "USD"
    qty: int = 0
    in_stock: bool = True
    image: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    variants: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))


class Product(ProductBase, table=True):
    # From the shop's reviews export: the honest figures behind any social proof.
    review_count: int = 0
    rating: float | None = None
    description_html: str = ""
    # Hash of everything imported, so re-importing an unchanged row writes nothing.
    content_hash: str = ""
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def sizes(self) -> list[str]:
        return _distinct(v.get("size") for v in self.variants)

    @property
    def colors(self) -> list[str]:
        return _distinct(v.get("color") for v in self.variants)

    @property
    def brand(self) -> str | None:
        return brand_of(self.attributes)

    @property
    def top_category(self) -> str:
        return self.categories[0] if self.categories else ""


class CatalogChange(SQLModel, table=True):
    """A product back in stock or cheaper: what catalog triggers of campaigns start from
    (written when an import or a stock update makes the change)."""

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(index=True)
    kind: str  # back_in_stock, price_dropped
    old_price: float | None = None
    new_price: float | None = None
    at: datetime = Field(default_factory=utcnow, index=True)


class ProductCreate(ProductBase):
    description_html: str = ""


class ProductPublic(BaseModel):
    sku: str
    name: str
    url_key: str
    description: str
    categories: list[str]
    price: float
    currency: str
    in_stock: bool
    image: str | None
    attributes: dict[str, Any]
    brand: str | None = None
    sizes: list[str]
    colors: list[str]
    review_count: int = 0
    rating: float | None = None
    # Which size and colour combinations exist and are in stock (not how many).
    variants: list["VariantPublic"] = []

    @classmethod
    def of(cls, product: Product) -> "ProductPublic":
        derived = {"sizes", "colors", "variants", "brand"}
        return cls(
            **product.model_dump(include=set(cls.model_fields) - derived),
            brand=product.brand,
            sizes=product.sizes,
            colors=product.colors,
            variants=[VariantPublic.model_validate(v) for v in product.variants],
        )


class VariantPublic(BaseModel):
    sku: str
    size: str | None = None
    color: str | None = None
    in_stock: bool = True


class ProductPage(BaseModel):
    items: list[ProductPublic]
    total: int
    offset: int
    limit: int


class StockUpdate(BaseModel):
    """A stock change from the shop: the product's own count, or one variant's."""

    qty: int = PydanticField(ge=0)
    variant_sku: str | None = None


class ImportReport(BaseModel):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[str] = []


def _distinct(values: Any) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if value:
            seen.setdefault(value, None)
    return list(seen)
