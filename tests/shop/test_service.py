import threading

from sqlalchemy import Engine
from sqlmodel import Session

from catalog import service as catalog
from shop import service
from tests.conftest import DEMO_CATALOG


def test_concurrent_adds_to_one_cart_are_all_counted(engine: Engine) -> None:
    with Session(engine) as session:
        catalog.import_file(session, DEMO_CATALOG, fmt="magento")

    def add() -> None:
        with Session(engine) as session:
            service.add_to_cart(session, cart_id="cart-1", sku="WJ06-M-Blue", qty=1)

    threads = [threading.Thread(target=add) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with Session(engine) as session:
        [line] = service.get_cart(session, "cart-1").lines
    assert line.qty == 30
