"""The api's errors: one vocabulary, raised wherever the cause is found, mapped to HTTP here.

Queries and routes raise `NotFound`, `Forbidden`, `Conflict`, `Invalid` or `Unauthorized`
with what the client is told; `install` registers the one handler that turns them into
`{"detail": ...}` responses, and the handler of last resort (500). Routes document the errors
they can answer with `responses(...)`, so the OpenAPI document and the behaviour share words.

404, 403, 409: 404 for what the caller must not learn exists (someone else's generation, an
unpublished video); 403 where the object is public but the action is not the caller's; 409 for
states that forbid the action.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import sqlalchemy.exc
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from genvid_api.budget_models import BudgetExceededBody

log = logging.getLogger(__name__)

Responses = dict[int | str, dict[str, Any]]


class ErrorBody(BaseModel):
    """Every error but 422: `{"detail": "message"}`."""

    detail: str


class FieldError(BaseModel):
    """One entry of a 422's `detail`, shaped as FastAPI's own validation errors."""

    model_config = ConfigDict(extra="allow")

    type: str
    loc: list[str | int]
    msg: str


class InvalidBody(BaseModel):
    """422: the fields to blame (as FastAPI's validation does), or a message about the whole
    request."""

    detail: list[FieldError] | str


class ApiError(Exception):
    """An answer other than success, with the body's `detail` and any headers."""

    status_code: ClassVar[int]
    body: ClassVar[type[BaseModel]] = ErrorBody

    def __init__(
        self,
        detail: str | list[dict[str, Any]] | dict[str, Any],
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class NotFound(ApiError):
    """Missing, or not the caller's to know of (indistinguishable on purpose)."""

    status_code = status.HTTP_404_NOT_FOUND

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")


class Forbidden(ApiError):
    """Visible to the caller, but this action on it is not theirs."""

    status_code = status.HTTP_403_FORBIDDEN


class Conflict(ApiError):
    """The object's state forbids the action."""

    status_code = status.HTTP_409_CONFLICT


class Invalid(ApiError):
    """The request cannot be accepted as it is; see `field` for one input to blame."""

    status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
    body = InvalidBody

    @classmethod
    def field(cls, loc: Sequence[str], msg: str, type: str, **extra: Any) -> Invalid:
        """FastAPI's shape, so a client reads every 422 alike (`extra`: e.g. `input`)."""
        return cls([{"type": type, "loc": list(loc), "msg": msg, **extra}])


class OverBudget(ApiError):
    """The estimated cost does not fit in a budget; `detail` says which, and when it resets."""

    status_code = status.HTTP_402_PAYMENT_REQUIRED
    body = BudgetExceededBody


class TooManyRequests(ApiError):
    """A request-rate limit; the client may retry after `Retry-After` seconds."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class Unauthorized(ApiError):
    """No credentials (`error=None`), or ones that prove nothing (RFC 6750's challenge)."""

    status_code = status.HTTP_401_UNAUTHORIZED

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        challenge = "Bearer" if error is None else f'Bearer error="{error}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds until the limit's window ends",
        "schema": {"type": "integer"},
    }
}


def responses(*documented: tuple[type[ApiError], str]) -> Responses:
    """The OpenAPI `responses` of a route (or router): (error, when it is answered) pairs."""
    return {
        error.status_code: {
            "description": description,
            "model": error.body,
            **({"headers": _RETRY_AFTER} if error is TooManyRequests else {}),
        }
        for error, description in documented
    }


# On every router whose routes take the current user.
AUTH_RESPONSES = responses((Unauthorized, "Missing, invalid, expired or forged access token"))


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


# What a dependency that is down, frozen or unreachable makes a request raise: a timeout
# (connecting, a statement, waiting for the pool) or a lost connection (Postgres, NATS).
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    TimeoutError,
    ConnectionError,
)
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("dependency unavailable on %s %s: %r", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "The service is temporarily unavailable; try again shortly."},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
    )


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"detail": "Internal server error"}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR
    )


# What any operation with a body may answer before validation.
_BODY_ERRORS = {
    "400": "The body could not be parsed",
    "413": "The body is larger than GENVID_MAX_BODY_BYTES (genvid_api.body_limit)",
}


def _document_unparsable_bodies(app: FastAPI) -> None:
    """FastAPI answers a body it cannot decode (not UTF-8, say) with 400 before validation, and
    the body limit a body too large with 413; say so on every operation that takes a body,
    present and future."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    if "requestBody" in operation:
                        for code, description in _BODY_ERRORS.items():
                            operation["responses"].setdefault(
                                code,
                                {
                                    "description": description,
                                    "content": {
                                        "application/json": {
                                            "schema": {"$ref": "#/components/schemas/ErrorBody"}
                                        }
                                    },
                                },
                            )
            schema.setdefault("components", {}).setdefault("schemas", {}).setdefault(
                "ErrorBody", ErrorBody.model_json_schema()
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    """The error handlers, and the 400 every operation with a body can answer."""
    app.add_exception_handler(ApiError, _api_error)
    for error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, _unavailable)
    app.add_exception_handler(Exception, _internal_error)
    _document_unparsable_bodies(app)
