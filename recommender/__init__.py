"""Product recommendations and semantic search on sentence-transformers and faiss."""
