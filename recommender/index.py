"""The faiss index over the catalog's product vectors."""

import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime

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


def department(product: Product) -> str:
    return product.categories[0].split("/", 1)[0] if product.categories else ""


def parallel_departments(products: list[Product]) -> dict[str, set[str]]:
    """Departments sharing at least half of their sub-categories."""
    below: dict[str, set[str]] = {}
    for product in products:
        for path in product.categories:
            top, _, rest = path.partition("/")
            if rest:
                below.setdefault(top, set()).add(rest)
    parallel: dict[str, set[str]] = {}
    for a, a_paths in below.items():
        for b, b_paths in below.items():
            shared = len(a_paths & b_paths)
            if a != b and shared >= 0.5 * min(len(a_paths), len(b_paths)):
                parallel.setdefault(a, set()).add(b)
    return parallel


def make_faiss_index(dim: int, size: int) -> faiss.Index:
    if size < EXACT_SEARCH_LIMIT:
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = 128
    return index


@dataclass
class ProductIndex:
    """Products by position, their vectors and the faiss index over them.

    Positions only grow. A product whose text changed gets a new position and its
    old one is retired; a stock or review change replaces the product in place;
    a removed product is retired. Readers never see a half-made change: lists and
    arrays are extended or replaced, never shrunk, and faiss is touched under a lock.
    """

    products: list[Product]
    vectors: np.ndarray
    index: faiss.Index
    words: list[set[str]] = field(default_factory=list)
    position: dict[str, int] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # A variant's sku to its product's, so events naming a variant find the product.
    parent_of: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # When the catalog's first product was created: nothing is "new" before then.
    opened: datetime | None = None
    # Departments that mirror each other ("Men" and "Women" both have Tops/Jackets):
    # they serve different people, so one never completes the other.
    parallel: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        products: list[Product],
        vectors: np.ndarray,
        texts: list[str] | None = None,
    ) -> "ProductIndex":
        dim = vectors.shape[1] if len(vectors) else 384
        index = make_faiss_index(dim, len(products))
        if len(products):
            index.add(vectors)
        logger.info(
            "index built",
            extra={"products": len(products), "type": type(index).__name__},
        )
        built = cls(
            products=list(products),
            vectors=vectors,
            index=index,
            words=[words(product_text(p)) for p in products],
            position={p.sku: i for i, p in enumerate(products)},
            texts=texts if texts is not None else [product_text(p) for p in products],
            alive=np.ones(len(products), dtype=bool),
            opened=min((p.created_at for p in products), default=None),
            parallel=parallel_departments(products),
        )
        for product in products:
            built._note_variants(product)
        return built

    def __len__(self) -> int:
        return len(self.position)

    @property
    def retired(self) -> int:
        return len(self.products) - len(self.position)

    def get(self, sku: str) -> Product | None:
        """The live product with this sku or with a variant of this sku."""
        position = self.position.get(self.parent_of.get(sku, sku))
        return None if position is None else self.products[position]

    def replace(self, product: Product) -> None:
        """Same text, new facts (stock, price, reviews): swapped in place."""
        self.products[self.position[product.sku]] = product
        self._note_variants(product)

    def retire(self, sku: str) -> None:
        position = self.position.pop(sku, None)
        if position is not None:
            self.alive[position] = False

    def add(
        self, products: list[Product], vectors: np.ndarray, texts: list[str]
    ) -> None:
        """New products, or new text for known ones (their old position is retired)."""
        start = len(self.products)
        # Everything a search could return exists before faiss can return it.
        self.vectors = np.vstack([self.vectors, vectors]) if start else vectors
        self.products.extend(products)
        self.texts.extend(texts)
        self.words.extend(words(t) for t in texts)
        self.alive = np.concatenate([self.alive, np.zeros(len(products), dtype=bool)])
        with self.lock:
            self.index.add(vectors)
        for offset, product in enumerate(products):
            self.retire(product.sku)
            self.position[product.sku] = start + offset
            self.alive[start + offset] = True
            self._note_variants(product)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k live products nearest to ``vector``, as (position, similarity)."""
        if not self.position:
            return []
        wanted = min(k + self.retired, len(self.products))
        with self.lock:
            scores, ids = self.index.search(
                vector.reshape(1, -1).astype(np.float32), wanted
            )
        alive = self.alive
        found = [
            (int(i), float(s))
            for i, s in zip(ids[0], scores[0], strict=True)
            if 0 <= i < len(alive) and alive[i]
        ]
        return found[:k]

    def _note_variants(self, product: Product) -> None:
        for variant in product.variants:
            if variant.get("sku"):
                self.parent_of[variant["sku"]] = product.sku
