"""One error shape for the whole API: ``{"error": ..., "detail": ...}``."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel


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
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        body: dict[str, Any] = {"error": exc.error, "detail": exc.detail}
        if isinstance(exc, InvalidInput):
            body["fields"] = exc.fields
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {"field": _field_path(e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()
        ]
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse(
            {"error": "Validation failed", "detail": detail, "fields": fields}, status_code=422
        )
