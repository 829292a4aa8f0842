"""What cars.py and orders.py share, as each reference service carried its own copy: settings
from the environment, the asyncpg pool of a worker, bearer-token verification with PyJWT,
the error shape {"error":{"code","message"[,"fields"]}} and timestamps formatted as our
components write them (RFC 3339 in UTC, `Z`, fraction only when non-zero: none, 3 or 6
digits, as chrono prints them).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional

import asyncpg
import jwt
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

# --- settings (the reference design's names) --------------------------------------------

MIN_SECRET_BYTES = 32
LEEWAY_SECONDS = 30
MAX_TOKEN_BYTES = 4096


def postgres_dsn() -> str:
    """POSTGRES_URL, accepting the reference design's SQLAlchemy form `postgresql+asyncpg://...`."""
    url = os.environ.get("POSTGRES_URL", "").strip()
    if not url:
        raise RuntimeError("POSTGRES_URL is not set")
    scheme, sep, rest = url.partition("://")
    if "+" in scheme:
        scheme = scheme.split("+", 1)[0]
    return f"{scheme}{sep}{rest}"


def jwt_secret() -> str:
    secret = os.environ.get("JWT_SECRET_KEY", "")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise RuntimeError(
            f"JWT_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes "
            f"(it has {len(secret.encode())})"
        )
    return secret


def pool_size() -> int:
    """PG_POOL_SIZE connections per worker; asyncpg's own default is 10."""
    return int(os.environ.get("PG_POOL_SIZE", "10"))


async def create_pool() -> asyncpg.Pool:
    size = pool_size()
    return await asyncpg.create_pool(postgres_dsn(), min_size=size, max_size=size)


# --- errors ---------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: Optional[list[dict[str, str]]] = None,
        headers: Optional[dict[str, str]] = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers


def error_response(error: ApiError) -> JSONResponse:
    inner: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.fields is not None:
        inner["fields"] = error.fields
    headers = dict(error.headers or {})
    if error.status == 401:
        headers["www-authenticate"] = (
            "Bearer" if error.code == "missing_token" else 'Bearer error="invalid_token"'
        )
    return JSONResponse({"error": inner}, status_code=error.status, headers=headers)


def unprocessable(fields: list[dict[str, str]], message: Optional[str] = None) -> ApiError:
    if message is None:
        if len(fields) == 1:
            message = f"invalid field {fields[0]['field']}: {fields[0]['message']}"
        else:
            message = f"{len(fields)} fields are invalid"
    return ApiError(422, "validation_failed", message, fields=fields)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _field_message(error: dict[str, Any]) -> str:
    """Pydantic's error in our words where ours has words for it."""
    kind = error.get("type", "")
    value = error.get("input")
    if kind == "missing" or (kind in ("string_type", "int_type") and value is None):
        return "is required"
    if kind == "string_type":
        return f"must be a string, not {_kind(value)}"
    if kind == "int_type":
        if isinstance(value, float):
            return "must be a whole number"
        return f"must be an integer, not {_kind(value)}"
    return str(error.get("msg", "is invalid"))


def validation_error(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error")
            message = "the request body is not valid JSON"
            return ApiError(400, "malformed_json", f"{message}: {reason}" if reason else message)
        if loc == ("body",):
            if error.get("type") == "missing":
                return ApiError(
                    400, "malformed_json", "the request body is empty; expected a JSON document"
                )
            return unprocessable(
                [], f"the request body must be a JSON object, not {_kind(error.get('input'))}"
            )
    fields = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        fields.append({"field": ".".join(loc), "message": _field_message(error)})
    return unprocessable(fields)


_DB_UNAVAILABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        path = request.url.path
        if exc.status_code == 404:
            error = ApiError(404, "not_found", f"no resource at {path}")
        elif exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "")
            allow = ", ".join(m for m in allow.split(", ") if m and m != "HEAD")
            error = ApiError(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed on {path}",
                headers={"allow": allow} if allow else None,
            )
        else:
            error = ApiError(exc.status_code, "http_error", str(exc.detail))
        return error_response(error)

    for kind in _DB_UNAVAILABLE:

        @app.exception_handler(kind)
        async def _db_down(_request: Request, _exc: Exception) -> JSONResponse:
            return error_response(
                ApiError(503, "database_unavailable", "the database is unavailable")
            )

    @app.exception_handler(asyncpg.PostgresError)
    async def _db_failed(_request: Request, _exc: Exception) -> JSONResponse:
        return error_response(ApiError(500, "internal", "a database query failed"))


# --- the caller -----------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    user_id: uuid.UUID
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role == "staff"

    def may_access(self, owner: uuid.UUID) -> bool:
        return self.user_id == owner or self.is_staff


def _invalid(message: str) -> ApiError:
    return ApiError(401, "invalid_token", message)


class TokenVerifier:
    """HS256 only, whatever the token's header says; `exp` and `iat` with 30 s leeway."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def verify(self, token: str) -> Caller:
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise _invalid("the access token is malformed")
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                leeway=LEEWAY_SECONDS,
                options={"require": ["sub", "role", "exp", "iat"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise ApiError(401, "token_expired", "the access token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _invalid("the access token is not valid yet") from None
        except jwt.InvalidAlgorithmError:
            raise _invalid("the access token is not signed with HS256") from None
        except jwt.InvalidSignatureError:
            raise _invalid("the access token's signature is invalid") from None
        except jwt.InvalidTokenError:
            raise _invalid("the access token is malformed") from None
        role = claims.get("role")
        sub = claims.get("sub")
        if role not in ("customer", "staff") or not isinstance(sub, str):
            raise _invalid("the access token is malformed")
        try:
            user_id = uuid.UUID(sub)
        except ValueError:
            raise _invalid("the access token is malformed") from None
        return Caller(user_id=user_id, role=role)


def bearer_token(authorization: Optional[str]) -> str:
    if authorization is None:
        raise ApiError(
            401,
            "missing_token",
            "this endpoint needs an `Authorization: Bearer <token>` header; "
            "get a token from POST /api/users/login",
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _invalid("the Authorization header must be `Bearer <token>`")
    return token.strip()


def caller_dependency(state_holder: dict[str, Any]):
    """A FastAPI dependency: the verified caller of the request."""

    async def current_caller(authorization: Optional[str] = Header(default=None)) -> Caller:
        return state_holder["verifier"].verify(bearer_token(authorization))

    return current_caller


# --- values ---------------------------------------------------------------------------


def rfc3339(value: datetime) -> str:
    """`2030-05-01T10:30:00Z`, `...:00.123Z` or `...:00.123456Z`, as chrono serializes."""
    value = value.astimezone(timezone.utc)
    micros = value.microsecond
    if micros == 0:
        fraction = ""
    elif micros % 1000 == 0:
        fraction = f".{micros // 1000:03d}"
    else:
        fraction = f".{micros:06d}"
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}{fraction}Z"
    )


def parse_uuid(text: str) -> Optional[uuid.UUID]:
    try:
        return uuid.UUID(text.strip())
    except (ValueError, AttributeError):
        return None
