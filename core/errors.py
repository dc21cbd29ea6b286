"""One exception tree for domain errors and one body shape for every error.

Every error the api returns looks like::

    {"detail": [{"type": "profile_not_found", "loc": ["path", "ref"], "msg": "..."}]}

Validation errors from FastAPI, HTTP errors from Starlette and domain errors all
take that shape, so clients parse one thing.
"""

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """Base of every error a domain raises on purpose."""

    code: str = "error"
    status_code: int = 400

    def __init__(
        self,
        msg: str,
        *,
        loc: Sequence[str | int] = (),
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(msg)
        self.msg = msg
        self.loc = list(loc)
        # Several problems at once (e.g. each invalid field), in the error body shape.
        self.details = details

    def to_details(self) -> list[dict[str, Any]]:
        return self.details or [{"type": self.code, "loc": self.loc, "msg": self.msg}]


class NotFoundError(DomainError):
    code = "not_found"
    status_code = 404


class InvalidInputError(DomainError):
    code = "invalid_input"
    status_code = 422


class ConflictError(DomainError):
    code = "conflict"
    status_code = 409


class UnauthorizedError(DomainError):
    code = "unauthorized"
    status_code = 401


class UnavailableError(DomainError):
    code = "unavailable"
    status_code = 503


def error_body(details: list[dict[str, Any]]) -> dict[str, Any]:
    return {"detail": details}


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for error in exc.errors():
        detail = {"type": error["type"], "loc": list(error["loc"]), "msg": error["msg"]}
        if error["type"] == "json_invalid":
            context = error.get("ctx", {}).get("error", "")
            detail["msg"] = f"request body is not valid JSON: {context}".rstrip(": ")
        details.append(detail)
    return details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        # No WWW-Authenticate: a browser would answer it with a login prompt.
        return JSONResponse(error_body(exc.to_details()), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(
        _request: Request, exc: RequestValidationError
    ) -> JSONResponse:
        return JSONResponse(error_body(_validation_details(exc)), status_code=422)

    @app.exception_handler(ValidationError)
    async def _model(_request: Request, exc: ValidationError) -> JSONResponse:
        # A body validated inside a route (after routing picked its schema).
        details = [
            {"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        return JSONResponse(error_body(details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else f"http_{exc.status_code}"
        detail = {"type": code, "loc": [], "msg": str(exc.detail)}
        return JSONResponse(
            error_body([detail]), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
        detail = {"type": "internal_error", "loc": [], "msg": "internal error"}
        return JSONResponse(error_body([detail]), status_code=500)
