"""The demo shop's cart."""

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from catalog import service as catalog
from shop.models import Cart, CartItem, CartLine


def add_to_cart(session: Session, *, cart_id: str, sku: str, qty: int) -> Cart:
    catalog.get_many(session, [sku]).get(sku) or catalog.get_or_raise(session, sku)
    for attempt in range(3):
        # One statement adds to the quantity, so concurrent adds are all counted;
        # two first adds race on the unique line, and the loser adds again.
        added = session.execute(
            update(CartItem)
            .where(col(CartItem.cart_id) == cart_id, col(CartItem.sku) == sku)
            .values(qty=CartItem.qty + qty)
        )
        if added.rowcount == 0:
            session.add(CartItem(cart_id=cart_id, sku=sku, qty=qty))
        try:
            session.commit()
            break
        except IntegrityError:
            session.rollback()
            if attempt == 2:
                raise
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
