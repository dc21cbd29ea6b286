"""The demo catalog in memory, as `cdp demo` imports it: the Magento Luma clothes,
its gear, and the review figures. Used by tests and evaluation scripts that need
the products without a database."""

from pathlib import Path

from catalog.importers import Review, read_magento, read_magento_simple, read_reviews
from catalog.models import Product, ProductCreate
from catalog.service import with_brand
from core.settings import ROOT

DEMO_DIR = ROOT / "data" / "demo" / "catalog"
DEMO_CATALOG = DEMO_DIR / "magento-products.csv"
DEMO_GEAR = sorted(DEMO_DIR.glob("magento-gear-*.csv"))
DEMO_REVIEWS = DEMO_DIR / "magento-reviews.csv"
# Luma's export names no brand: everything is its own label.
DEMO_BRAND = "Luma"


def demo_products(directory: Path = DEMO_DIR) -> list[Product]:
    rows = list(read_magento(directory / DEMO_CATALOG.name))
    for path in sorted(directory.glob("magento-gear-*.csv")):
        rows.extend(read_magento_simple(path))
    products = [
        Product(**with_brand(r, DEMO_BRAND).model_dump())
        for r in rows
        if isinstance(r, ProductCreate)
    ]
    ratings: dict[str, list[int]] = {}
    for review in read_reviews(directory / DEMO_REVIEWS.name):
        if isinstance(review, Review):
            ratings.setdefault(review.sku, []).append(review.rating)
    for product in products:
        values = ratings.get(product.sku)
        if values:
            product.review_count = len(values)
            product.rating = round(sum(values) / len(values), 2)
    return products
