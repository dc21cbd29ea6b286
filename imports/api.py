"""Import routes: upload a file, name its mapping, get the report. Admin only."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, File, Form, UploadFile
from sqlmodel import Session

from catalog import service as catalog
from catalog.models import ImportReport as CatalogImportReport
from core.auth import AdminOnly
from core.db import get_session
from core.errors import InvalidInputError
from core.redis import get_redis
from core.settings import get_settings
from imports import mapping as mappings
from imports import service
from imports.models import EventKind, ImportReport, Mapping

router = APIRouter(prefix="/v1/imports", tags=["imports"], dependencies=[AdminOnly])
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
SessionDep = Annotated[Session, Depends(get_session)]


@router.post("/catalog", response_model=CatalogImportReport)
def import_catalog(
    file: UploadFile,
    session: SessionDep,
    fmt: Annotated[str, Form(alias="format", description="magento")] = "magento",
    brand: Annotated[
        str | None,
        Form(description="brand of the products whose rows name none", max_length=100),
    ] = None,
) -> CatalogImportReport:
    """Import a product catalog export; importing the same file again changes
    nothing. Within seconds the recommender indexes the new products and the
    assistant knows their categories, colours, sizes and names."""
    with _saved(file) as path:
        try:
            return catalog.import_file(session, path, fmt=fmt, brand=brand)
        except ValueError as exc:
            raise InvalidInputError(str(exc), loc=["body", "format"]) from None


@router.post("/{kind}", response_model=ImportReport)
def import_events(
    kind: EventKind,
    file: UploadFile,
    client: RedisDep,
    mapping: Annotated[
        str | None, Form(description="name of a shipped mapping, e.g. cdnow-orders")
    ] = None,
    mapping_file: Annotated[
        UploadFile | None, File(description="or a mapping file of your own")
    ] = None,
) -> ImportReport:
    """Queue the orders, store purchases or contacts of an uploaded file; rows the
    mapping cannot read are listed by line in the report, the others imported."""
    loaded = _mapping(kind, mapping, mapping_file)
    with _saved(file) as path:
        return service.import_file(
            client,
            get_settings().tracking.stream,
            path,
            loaded,
            file_name=file.filename or path.name,
        )


def _mapping(kind: str, name: str | None, upload: UploadFile | None) -> Mapping:
    # A name, never a path: the api does not read files of the server on request.
    if upload is not None:
        text = upload.file.read().decode("utf-8", errors="replace")
        return mappings.parse(text, name=upload.filename or "mapping", kind=kind)
    if not name:
        raise InvalidInputError(
            f"name a mapping in 'mapping' ({', '.join(mappings.shipped_names())}) "
            "or upload one as 'mapping_file'",
            loc=["body", "mapping"],
        )
    path = mappings.shipped_path(name)
    return mappings.parse(path.read_text(encoding="utf-8"), name=path.name, kind=kind)


@contextmanager
def _saved(upload: UploadFile) -> Iterator[Path]:
    """The upload as a file on disk: parquet needs to seek, the readers a path."""
    suffix = Path(upload.filename or "").suffix
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        shutil.copyfileobj(upload.file, handle)
        handle.flush()
        yield Path(handle.name)
