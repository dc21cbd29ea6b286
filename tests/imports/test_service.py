from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import redis
from sqlalchemy import Engine
from sqlmodel import Session

from core.settings import get_settings
from events import queue
from imports.errors import ImportFileError
from profiles import service as profiles
from profiles.models import Event, IdentityType
from tests.imports.conftest import CDNOW, DATA, count_events, drain, run_import

CUSTOMER_ID = IdentityType.customer_id


def orders_of(session: Session, ref: str) -> list[Event]:
    profile = profiles.get_by_ref_or_raise(session, ref)
    events = profiles.list_events(session, profile, name="Order Completed")
    return sorted(events, key=lambda e: e.properties["order_id"])


def test_import_cdnow_orders_become_profiles_with_orders_after_the_worker_runs(
    queue_client: redis.Redis, engine: Engine
) -> None:
    report = run_import(queue_client, CDNOW, "cdnow-orders", kind="orders")

    drain(engine, queue_client)

    assert (report.rows, report.queued, report.rejected) == (299, 299, 0)
    assert count_events(engine) == 299
    with Session(engine) as session:
        first, second = orders_of(session, "customer_id:00002")
        profile = profiles.get_by_ref_or_raise(session, "customer_id:00076")
    assert first.properties == {
        "order_id": "00002-19970112-1",
        "total": 12.0,
        "revenue": 12.0,
        "currency": "USD",
        "products": [{"quantity": 1}],
    }
    assert (second.properties["total"], second.properties["products"]) == (
        77.0,
        [{"quantity": 5}],
    )
    assert first.timestamp.replace(tzinfo=UTC) == datetime(1997, 1, 12, tzinfo=UTC)
    assert first.source == "cdnow"
    assert profile.last_seen_at.date().isoformat() == "1997-01-01"


def test_import_same_file_twice_changes_nothing(
    queue_client: redis.Redis, engine: Engine
) -> None:
    run_import(queue_client, CDNOW, "cdnow-orders", kind="orders")
    drain(engine, queue_client)
    events_after_first = count_events(engine)

    again = run_import(queue_client, CDNOW, "cdnow-orders", kind="orders")
    worker = drain(engine, queue_client)

    assert again.queued == 299
    assert worker.applied == 0
    assert count_events(engine) == events_after_first == 299


def test_import_bad_rows_are_reported_by_line_and_the_good_rows_imported(
    queue_client: redis.Redis, engine: Engine, tmp_path: Path
) -> None:
    source = tmp_path / "cdnow.txt"
    source.write_bytes(
        b" customer_id  date number_of_cds  dollar_value\r\n"
        b" 00001 19970101  1   11.77\r\n"
        b" 00002 1997011x  1   12.00\r\n"
        b" 00003 19970102  2  -20.76\r\n"
        b"\r\n"
        b" 00004 19970102  2\r\n"
        b" 00005 19970103  x   20.00\r\n"
        b" 00006 19970104  1   19.99\r\n"
    )

    report = run_import(queue_client, source, "cdnow-orders", kind="orders")
    drain(engine, queue_client)

    assert report.errors == [
        "line 3: date '1997011x' is not a date in the date format %Y%m%d",
        "line 4: dollar_value '-20.76' is negative",
        "line 6: expected 4 fields, found 3",
        "line 7: number_of_cds 'x' is not a number",
    ]
    assert (report.rows, report.queued, report.rejected) == (6, 2, 4)
    with Session(engine) as session:
        assert len(orders_of(session, "customer_id:00006")) == 1
        assert profiles.get_by_identity(session, (CUSTOMER_ID, "00002")) is None


def test_import_order_lines_apart_in_the_file_become_one_order(
    queue_client: redis.Redis, engine: Engine
) -> None:
    report = run_import(
        queue_client, DATA / "webshop-orders.csv", "webshop-orders", kind="orders"
    )
    drain(engine, queue_client)

    assert (report.rows, report.queued) == (3, 2)
    with Session(engine) as session:
        [order] = orders_of(session, "customer_id:c-1")
    assert order.properties == {
        "order_id": "1001",
        "total": 131.0,
        "revenue": 131.0,
        "currency": "EUR",
        "products": [
            {
                "product_id": "WJ06",
                "sku": "WJ06-M-Blue",
                "quantity": 1,
                "price": 77.0,
                "category": "Women/Tops/Jackets",
            },
            {
                "product_id": "MH01",
                "sku": "MH01-L-Gray",
                "quantity": 1,
                "price": 54.0,
                "category": "Men/Tops/Hoodies",
            },
        ],
    }
    assert order.timestamp.replace(tzinfo=UTC) == datetime(
        2024, 5, 31, 12, 3, tzinfo=UTC
    )


def test_import_order_with_a_bad_line_is_rejected_whole(
    queue_client: redis.Redis, engine: Engine, tmp_path: Path
) -> None:
    header, first, second, third = (
        (DATA / "webshop-orders.csv").read_text().split("\n")[:4]
    )
    source = tmp_path / "orders.csv"
    source.write_text(
        "\n".join([header, first, second, third.replace(",1,54", ",one,54")])
    )

    report = run_import(queue_client, source, "webshop-orders", kind="orders")
    drain(engine, queue_client)

    assert report.errors == [
        "line 2: order '1001' not imported: line 4 of it was rejected",
        "line 4: quantity 'one' is not a number",
    ]
    with Session(engine) as session:
        assert len(orders_of(session, "customer_id:c-2")) == 1
        assert profiles.get_by_identity(session, (CUSTOMER_ID, "c-1")) is None


def test_import_store_purchases_are_orders_in_the_store_channel_at_local_time(
    queue_client: redis.Redis, engine: Engine
) -> None:
    report = run_import(
        queue_client,
        DATA / "store-purchases.csv",
        "store-purchases",
        kind="store-purchases",
    )
    drain(engine, queue_client)

    assert (report.queued, report.rejected) == (2, 0)
    with Session(engine) as session:
        [purchase] = orders_of(session, "customer_id:c-1")
    assert purchase.properties["channel"] == "store"
    assert purchase.properties["store_id"] == "ams-01"
    assert purchase.properties["total"] == 145.0
    assert purchase.properties["products"][1] == {
        "sku": "24-MB01",
        "quantity": 2,
        "price": 34.0,
        "category": "Gear/Bags",
    }
    # 10:15 in Amsterdam in summer time is 08:15 UTC.
    assert purchase.timestamp.replace(tzinfo=UTC) == datetime(
        2024, 6, 1, 8, 15, tzinfo=UTC
    )


def test_import_completejourney_baskets_become_one_store_purchase_each(
    queue_client: redis.Redis, engine: Engine, completejourney: dict[str, Path]
) -> None:
    lines = pq.read_table(completejourney["transactions"]).to_pylist()
    basket = lines[0]["basket_id"]
    basket_lines = [line for line in lines if line["basket_id"] == basket]

    report = run_import(
        queue_client,
        completejourney["transactions"],
        "completejourney-transactions",
        kind="store-purchases",
    )
    drain(engine, queue_client)

    assert report.rows == len(lines)
    assert report.queued == len({line["basket_id"] for line in lines}) == 25
    with Session(engine) as session:
        purchases = orders_of(session, f"customer_id:{basket_lines[0]['household_id']}")
    [purchase] = [p for p in purchases if p.properties["order_id"] == str(basket)]
    assert purchase.properties["store_id"] == str(basket_lines[0]["store_id"])
    assert len(purchase.properties["products"]) == len(basket_lines)
    assert purchase.properties["total"] == round(
        sum(line["sales_value"] for line in basket_lines), 2
    )
    assert purchase.timestamp.replace(tzinfo=UTC) == basket_lines[0][
        "transaction_timestamp"
    ].replace(tzinfo=UTC)


def test_import_demographics_set_traits_on_the_households_purchase_profile(
    queue_client: redis.Redis, engine: Engine, completejourney: dict[str, Path]
) -> None:
    household = pq.read_table(completejourney["demographics"]).to_pylist()[0]
    run_import(
        queue_client,
        completejourney["transactions"],
        "completejourney-transactions",
        kind="store-purchases",
    )

    report = run_import(
        queue_client,
        completejourney["demographics"],
        "completejourney-demographics",
        kind="contacts",
    )
    drain(engine, queue_client)

    assert report.rejected == 0
    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(
            session, f"customer_id:{household['household_id']}"
        )
        assert orders_of(session, f"customer_id:{household['household_id']}")
    assert profile.traits["age_band"] == household["age"]
    assert profile.traits["household_composition"] == household["household_comp"]


def test_import_crm_contacts_join_the_web_visitor_with_the_same_email(
    queue_client: redis.Redis, engine: Engine
) -> None:
    now = datetime.now(UTC).isoformat()
    visit = {
        "type": "identify", "messageId": "web-1", "anonymousId": "visitor-9",
        "traits": {"email": "ann.jansen@example.com"}, "timestamp": now,
        "receivedAt": now, "source": "website",
    }  # fmt: skip
    queue.publish(queue_client, get_settings().tracking.stream, [visit])

    report = run_import(
        queue_client, DATA / "crm-contacts.csv", "crm-contacts", kind="contacts"
    )
    drain(engine, queue_client)

    assert (report.queued, report.rejected) == (3, 0)
    with Session(engine) as session:
        ann = profiles.get_by_ref_or_raise(session, "customer_id:c-1")
        visitor = profiles.get_by_ref_or_raise(session, "anonymous_id:visitor-9")
        chloe = profiles.get_by_ref_or_raise(session, "phone:+44 7700 900123")
    assert ann.id == visitor.id
    assert ann.traits["firstName"] == "Ann"
    assert ann.traits["createdAt"] == "2023-11-02"
    assert chloe.traits == {
        "phone": "+44 7700 900123",
        "firstName": "Chloé",
        "lastName": "Martin",
        "createdAt": "2024-02-29",
    }


def test_import_contacts_twice_changes_no_events_or_traits(
    queue_client: redis.Redis, engine: Engine
) -> None:
    run_import(queue_client, DATA / "crm-contacts.csv", "crm-contacts", kind="contacts")
    drain(engine, queue_client)
    with Session(engine) as session:
        traits = profiles.get_by_ref_or_raise(session, "customer_id:c-2").traits

    run_import(queue_client, DATA / "crm-contacts.csv", "crm-contacts", kind="contacts")
    worker = drain(engine, queue_client)

    assert worker.applied == 0
    assert count_events(engine) == 3
    with Session(engine) as session:
        assert profiles.get_by_ref_or_raise(session, "customer_id:c-2").traits == traits


def test_import_contact_with_a_malformed_email_is_rejected_by_line(
    queue_client: redis.Redis, tmp_path: Path
) -> None:
    source = tmp_path / "contacts.csv"
    source.write_text(
        "customer_id,email,phone,first_name,last_name,city,signed_up\n"
        "c-1,ann.example.com,,Ann,,,\n"
        ",bob@example.org,,Bob,,,\n"
        "c-3,chloe@example.com,,Chloé,,,\n"
    )

    report = run_import(queue_client, source, "crm-contacts", kind="contacts")

    assert report.errors == [
        "line 2: email 'ann.example.com' is not an e-mail address",
        "line 3: customer_id is empty",
    ]
    assert report.queued == 1


def test_import_file_without_a_mapped_column_names_the_files_columns(
    queue_client: redis.Redis, tmp_path: Path
) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(
        "order_id,customer_id,created_at,currency,order_total,sku,product_id,"
        "quantity,unit_price\n"
    )

    with pytest.raises(ImportFileError) as raised:
        run_import(queue_client, source, "webshop-orders", kind="orders")

    assert raised.value.msg == (
        "the file has no column 'category'; its columns: order_id, customer_id, "
        "created_at, currency, order_total, sku, product_id, quantity, unit_price"
    )
