"""One error shape for the whole API: ``{"error": ..., "detail": ..., "fields": [...]}`` (fields
on a 422), and an OpenAPI document that says so for every operation."""

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

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


# What any operation may answer, whatever its route declares: the kernel's own refusals.
_KERNEL_ERRORS: dict[int, tuple[str, type[BaseModel]]] = {
    400: ("Bad request: a control character in the URL, a malformed header", ErrorBody),
    401: ("Authentication required: no token, or one unknown, expired or revoked", ErrorBody),
    403: (Forbidden.error, ErrorBody),
    404: (NotFound.error, ErrorBody),
    412: (PreconditionFailed.error, ErrorBody),
    413: ("Request body too large", ErrorBody),
    422: (InvalidInput.error, ValidationErrorBody),
    428: (PreconditionRequired.error, ErrorBody),
}


Dependency = TypeVar("Dependency", bound=Callable[..., Any])


def raises(*errors: type[AppError]) -> Callable[[Dependency], Dependency]:
    """Mark a dependency with the errors it raises: every operation that depends on it, however
    deep, documents them (see `document_errors`)."""

    def mark(dependency: Dependency) -> Dependency:
        dependency.raises = errors  # type: ignore[attr-defined]
        return dependency

    return mark


def document_errors(app: FastAPI) -> None:
    """Make the OpenAPI document say every error an operation can answer, in the shape the
    handlers below send (FastAPI's own 422 body, which this API never sends, is replaced):
    400 anywhere (the URL and header checks), 401 where a token is read, 403 where an
    administrator is required, 404 where a path names a record, 412 and 428 where If-Match
    is read (each dependency marked with what it `raises`), 413 where a body is read, 422
    wherever there is input."""
    plain = app.openapi
    done: list[int] = []  # the id of the document patched (FastAPI rebuilds it on new routes)

    def openapi() -> dict[str, Any]:
        schema = plain()
        if done != [id(schema)]:
            _add_errors(app, schema)
            done[:] = [id(schema)]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_errors(app: FastAPI, schema: dict[str, Any]) -> None:
    from fastapi.routing import APIRoute, iter_route_contexts

    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorBody, FieldError, ValidationErrorBody):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        model_schema.pop("$defs", None)
        components[model.__name__] = model_schema
    for route in iter_route_contexts(app.routes):  # the routes of included routers too
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        path = schema["paths"].get(route.path_format, {})
        for method in route.methods or ():
            operation = path.get(method.lower())
            if operation is not None:
                _document_operation(operation, _statuses(route))
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def _statuses(route: Any) -> set[int]:
    calls = _dependency_calls(route.dependant)
    statuses = {400} | {e.status_code for call in calls for e in getattr(call, "raises", ())}
    if route.dependant.path_params:
        statuses.add(404)
    if route.body_field is not None:
        statuses |= {413, 422}
    if _has_input(route.dependant):
        statuses.add(422)
    return statuses


def _has_input(dependant: Any) -> bool:
    """Whether the operation reads a parameter (path, query, header, cookie), here or in one
    of its dependencies."""
    own = (
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
    )
    return bool(own) or any(_has_input(d) for d in dependant.dependencies)


def _dependency_calls(dependant: Any) -> set[Any]:
    calls = set()
    for sub in dependant.dependencies:
        calls.add(sub.call)
        calls |= _dependency_calls(sub)
    return calls


def _document_operation(operation: dict[str, Any], statuses: set[int]) -> None:
    responses_ = operation.setdefault("responses", {})
    for status, (description, model) in _KERNEL_ERRORS.items():
        key = str(status)
        declared = responses_.get(key)
        if status not in statuses and declared is None:
            continue
        content = {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        }
        if declared is None:
            responses_[key] = {"description": description, "content": content}
        elif status == 422 or "content" not in declared:
            declared["content"] = content  # FastAPI's default 422 body is not what is sent
    for key, declared in responses_.items():
        if key.startswith(("4", "5")) and "content" not in declared:
            declared["content"] = {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
            }


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc if part not in ("body", "query", "path", "header"))


def install(app: FastAPI) -> None:
    document_errors(app)

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
