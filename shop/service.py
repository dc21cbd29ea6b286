"""The demo shop's cart."""

from sqlmodel import Session, select

from catalog import service as catalog
from shop.models import Cart, CartItem, CartLine


def add_to_cart(session: Session, *, cart_id: str, sku: str, qty: int) -> Cart:
    catalog.get_many(session, [sku]).get(sku) or catalog.get_or_raise(session, sku)
    statement = select(CartItem).where(CartItem.cart_id == cart_id, CartItem.sku == sku)
    item = session.exec(statement).first() or CartItem(cart_id=cart_id, sku=sku, qty=0)
    item.qty += qty
    session.add(item)
    session.commit()
    return get_cart(session, cart_id)


def get_cart(session: Session, cart_id: str) -> Cart:
    items = session.exec(select(CartItem).where(CartItem.cart_id == cart_id)).all()
    products = catalog.get_many(session, [i.sku for i in items])
    lines = [
        CartLine(
            sku=i.sku, name=products[i.sku].name, price=products[i.sku].price,
            qty=i.qty, url_key=products[i.sku].url_key,
        )
        for i in items
        if i.sku in products
    ]  # fmt: skip
    total = round(sum(line.price * line.qty for line in lines), 2)
    return Cart(cart_id=cart_id, lines=lines, total=total)
