"""One error shape for the whole API: ``{"error": ..., "detail": ...}``."""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException


class AppError(Exception):
    status_code = 400
    error = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class NotFound(AppError):
    status_code = 404
    error = "Not found"


class Conflict(AppError):
    status_code = 409
    error = "Conflict"


class Unauthorized(AppError):
    status_code = 401
    error = "Authentication required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status_code = 403
    error = "Forbidden"


class PreconditionFailed(AppError):
    status_code = 412
    error = "Precondition failed"


def check_version(expected: int, current: int, what: str) -> None:
    """Optimistic concurrency: refuse a write based on a version someone else has replaced."""
    if expected != current:
        raise PreconditionFailed(
            f"The {what} was changed by someone else (now version {current}, you sent "
            f"{expected}). Reload it and apply your change again."
        )


class PreconditionRequired(AppError):
    status_code = 428
    error = "Precondition required"


class InvalidInput(AppError):
    """A request that is well-formed but names something that does not fit (422)."""

    status_code = 422
    error = "Validation failed"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.fields = [{"field": field, "message": message}]


class ErrorBody(BaseModel):
    error: str
    detail: str


class FieldError(BaseModel):
    field: str
    message: str


class ValidationErrorBody(ErrorBody):
    fields: list[FieldError]


def responses(*errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route, so the OpenAPI spec shows what it can answer."""
    out: dict[int | str, dict[str, Any]] = {}
    for err in errors:
        model = ValidationErrorBody if err is InvalidInput else ErrorBody
        out[err.status_code] = {"model": model, "description": err.error}
    return out


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc if part not in ("body", "query", "path", "header"))


def install(app: FastAPI) -> None:
    @app.exception_handler(StaleDataError)
    async def _stale(_request: Request, _exc: StaleDataError) -> JSONResponse:
        # Two writers passed the If-Match check at the same moment; the database saw both.
        return JSONResponse(
            {
                "error": PreconditionFailed.error,
                "detail": "The record was changed by someone else at the same moment. Reload it "
                "and apply your change again.",
            },
            status_code=412,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(_request: Request, _exc: IntegrityError) -> JSONResponse:
        # A uniqueness rule checked first in the service, lost to a concurrent writer.
        return JSONResponse(
            {
                "error": Conflict.error,
                "detail": "This conflicts with a record stored at the same moment (a ref or an "
                "identifier already in use). Reload and try again.",
            },
            status_code=409,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {"error": HTTPStatus(exc.status_code).phrase, "detail": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        body: dict[str, Any] = {"error": exc.error, "detail": exc.detail}
        if isinstance(exc, InvalidInput):
            body["fields"] = exc.fields
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {
                "field": _field_path(e["loc"]) if e["type"] != "json_invalid" else "body",
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        fields = [{"field": f["field"] or "body", "message": f["message"]} for f in fields]
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse(
            {"error": "Validation failed", "detail": detail, "fields": fields}, status_code=422
        )
