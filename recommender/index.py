"""The faiss index over the catalog's product vectors."""

import logging
import re
from dataclasses import dataclass, field

import faiss
import numpy as np

from catalog.models import Product

logger = logging.getLogger(__name__)

# Below this many products exact search is both fastest and perfect.
EXACT_SEARCH_LIMIT = 10_000
_WORD = re.compile(r"[a-z0-9]+")


def product_text(product: Product) -> str:
    """What the model reads of a product: name, categories, attributes, description."""
    attributes = "; ".join(
        f"{k.replace('_', ' ')}: {', '.join(v) if isinstance(v, list) else v}"
        for k, v in product.attributes.items()
        if v not in ("No", "")
    )
    parts = [product.name, " / ".join(product.categories), attributes]
    if product.colors:
        parts.append("colours: " + ", ".join(product.colors))
    parts.append(product.description)
    return ". ".join(p for p in parts if p)


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def make_faiss_index(dim: int, size: int) -> faiss.Index:
    if size < EXACT_SEARCH_LIMIT:
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = 128
    return index


@dataclass
class ProductIndex:
    products: list[Product]
    vectors: np.ndarray
    index: faiss.Index
    words: list[set[str]] = field(default_factory=list)
    position: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, products: list[Product], vectors: np.ndarray) -> "ProductIndex":
        dim = vectors.shape[1] if len(vectors) else 384
        index = make_faiss_index(dim, len(products))
        if len(products):
            index.add(vectors)
        logger.info(
            "index built",
            extra={"products": len(products), "type": type(index).__name__},
        )
        return cls(
            products=products,
            vectors=vectors,
            index=index,
            words=[words(product_text(p)) for p in products],
            position={p.sku: i for i, p in enumerate(products)},
        )

    def __len__(self) -> int:
        return len(self.products)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        if not len(self.products):
            return []
        k = min(k, len(self.products))
        scores, ids = self.index.search(vector.reshape(1, -1).astype(np.float32), k)
        return [
            (int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0
        ]
