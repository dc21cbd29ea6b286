"""Errors of the assistant's platform side."""

from core.errors import ConflictError


class EmptyCatalogError(ConflictError):
    code = "catalog_empty"
