from datetime import UTC, datetime

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class CartItem(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("cart_id", "sku"),)

    id: int | None = Field(default=None, primary_key=True)
    # The shopper's anonymous id from the tracker cookie.
    cart_id: str = Field(index=True)
    sku: str
    qty: int = 1
    added_at: datetime = Field(default_factory=utcnow)


class CartAdd(BaseModel):
    cart_id: str = PydanticField(min_length=1, max_length=128)
    sku: str = PydanticField(min_length=1, max_length=128)
    qty: int = PydanticField(default=1, ge=1, le=99)


class CartLine(BaseModel):
    sku: str
    name: str
    price: float
    qty: int
    url_key: str


class Cart(BaseModel):
    cart_id: str
    lines: list[CartLine]
    total: float
