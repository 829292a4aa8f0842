"""order-service as the FastAPI reference design builds it (FastAPI + asyncpg + PyJWT + httpx):
POST /api/orders asks car-service for the car over HTTP (its car_client), then inserts into our
`orders.orders` table (migrations/0002_orders.sql, 0004_order_lines.sql, 0017_capacity.sql),
answering with the body our order-service component answers. The order takes the lowest bay
free for its half hour, as order-service places an order without work (none free: 409
`slot_taken`); the opening hours are not checked (the reference design has none).

    CAR_SERVICE_URL=http://127.0.0.1:<cars port> uvicorn --app-dir bench/seed-stack orders:app --workers 2

Env: POSTGRES_URL, JWT_SECRET_KEY, CAR_SERVICE_URL, PG_POOL_SIZE (per worker, default 10).
"""

from __future__ import annotations

import os
import re
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, Optional

import asyncpg
import httpx
from fastapi import Depends, FastAPI, Header, Response
from pydantic import BaseModel, StrictStr, field_serializer, field_validator
from pydantic_core import PydanticCustomError

import common
from common import ApiError, Caller

SERVICE = "order-service"
STATE: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(_app: FastAPI):
    base = os.environ.get("CAR_SERVICE_URL", "").strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise RuntimeError("CAR_SERVICE_URL must be an http:// or https:// URL")
    STATE["car_service_url"] = base
    STATE["verifier"] = common.TokenVerifier(common.jwt_secret())
    STATE["pool"] = await common.create_pool()
    # One client per worker, kept for its life: pooled keep-alive connections to car-service.
    STATE["http"] = httpx.AsyncClient(
        timeout=httpx.Timeout(10.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
    )
    try:
        yield
    finally:
        await STATE["http"].aclose()
        await STATE["pool"].close()


app = FastAPI(title=SERVICE, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
common.install_error_handlers(app)
current_caller = common.caller_dependency(STATE)


# --- schemas --------------------------------------------------------------------------

RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)
TIME_FORMAT = "must be an RFC 3339 date-time with an offset, e.g. 2030-05-01T10:30:00+03:00"


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid", message)


def parse_desired_time(text: str, now: datetime) -> datetime:
    """A bookable time: RFC 3339 with an offset, on the hour or half hour, in the future."""
    match = RFC3339.match(text.strip())
    if match is None:
        raise _invalid(TIME_FORMAT)
    date, hour, minute, second, fraction, offset = match.groups()
    if offset in ("Z", "z"):
        offset = "+00:00"
    try:
        value = datetime.fromisoformat(f"{date}T{hour}:{minute}:{second}{offset}")
    except ValueError:
        raise _invalid(TIME_FORMAT) from None
    if value.minute % 30 != 0 or value.second != 0 or (fraction and fraction.strip("0")):
        raise _invalid("must start on the hour or the half hour, e.g. 10:00 or 10:30")
    utc = value.astimezone(timezone.utc)
    if utc <= now:
        raise _invalid(f"must be in the future: {common.rfc3339(utc)} has passed")
    return utc


class OrderCreate(BaseModel):
    car_id: StrictStr
    desired_time: StrictStr
    description: Optional[StrictStr] = None

    @field_validator("car_id")
    @classmethod
    def _car_id(cls, value: str) -> str:
        parsed = common.parse_uuid(value)
        if parsed is None:
            raise _invalid("must be a UUID")
        return str(parsed)

    @field_validator("desired_time")
    @classmethod
    def _desired_time(cls, value: str) -> datetime:
        # Read as a string, kept as the UTC datetime it names.
        return parse_desired_time(value, datetime.now(timezone.utc))

    @field_validator("description")
    @classmethod
    def _description(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        if len(value) > 2000:
            raise _invalid("must be at most 2000 characters")
        if "\0" in value:
            raise _invalid("must not contain NUL characters")
        return value


class OrderResponse(BaseModel):
    id: uuid.UUID
    car_id: uuid.UUID
    user_id: uuid.UUID
    desired_time: datetime
    ends_at: datetime
    bay: Optional[int]
    assigned_to: Optional[uuid.UUID]
    description: str
    status: str
    items: list[dict[str, Any]]
    total: float
    created_at: datetime

    @field_serializer("desired_time", "ends_at", "created_at")
    def _times(self, value: datetime) -> str:
        return common.rfc3339(value)


# --- car-service (the reference design's car_client) --------------------------------------


async def fetch_car(car_id: str, authorization: Optional[str]) -> dict[str, Any]:
    """GET {CAR_SERVICE_URL}/api/cars/{car_id} as the caller: its owner and how it is named
    (`owner_id`, `license_plate`, `make`, `model`); 404 car_not_found is no such car (or not
    theirs); anything else unexpected is car-service failing."""
    headers = {"accept": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    try:
        reply = await STATE["http"].get(
            f"{STATE['car_service_url']}/api/cars/{car_id}", headers=headers
        )
    except httpx.TimeoutException:
        raise ApiError(504, "car_service_timeout", "car-service did not answer in time") from None
    except httpx.HTTPError:
        raise ApiError(503, "car_service_unavailable", "car-service is unavailable") from None
    failed = ApiError(502, "car_service_failed", "car-service failed to answer")
    try:
        body = reply.json()
    except ValueError:
        raise failed from None
    if reply.status_code == 200 and isinstance(body, dict):
        owner_id = body.get("owner_id")
        owner = common.parse_uuid(owner_id) if isinstance(owner_id, str) else None
        if owner is not None:
            car: dict[str, Any] = {"owner_id": owner}
            for name in ("license_plate", "make", "model"):
                value = body.get(name)
                car[name] = value if isinstance(value, str) else None
            return car
    elif reply.status_code == 404 and isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("code") == "car_not_found":
            raise ApiError(404, "car_not_found", f"no car with id {car_id}")
    raise failed


# --- SQL ------------------------------------------------------------------------------

# The order, with its car's names, for one half hour from $3 in the lowest bay (1 to orders.shop.bays) no other live order holds at
# any moment of it, in the range expressions of the exclusion constraint (its index answers).
# No row: every bay is taken.
INSERT = """
    WITH want AS (
        SELECT $3::timestamptz AS starts, $3::timestamptz + interval '30 minutes' AS ends
    ), free AS (
        SELECT min(b) AS bay FROM want, orders.shop AS shop, generate_series(1, shop.bays) AS b
        WHERE NOT EXISTS (
            SELECT 1 FROM orders.orders AS x
            WHERE x.bay IS NOT NULL AND x.status <> 'cancelled'
              AND int4range(x.bay, x.bay, '[]') && int4range(b, b, '[]')
              AND tstzrange(x.desired_time, x.ends_at) && tstzrange(want.starts, want.ends))
    )
    INSERT INTO orders.orders (car_id, user_id, desired_time, ends_at, bay, description,
        status, total_kopecks, car_plate, car_make, car_model)
    SELECT $1::uuid, $2::uuid, want.starts, want.ends, free.bay, $4::text, 'created', 0,
        $5::text, $6::text, $7::text
    FROM want, free WHERE free.bay IS NOT NULL
    RETURNING id, car_id, user_id, desired_time, ends_at, bay, assigned_to, description,
        status, total_kopecks, created_at
"""


def slot_taken(at: datetime) -> ApiError:
    return ApiError(
        409,
        "slot_taken",
        f"every bay is taken at some time during the work from {common.rfc3339(at)}; "
        "GET /api/orders/slots lists the free start times",
    )


# --- routes ---------------------------------------------------------------------------


@app.get("/api/orders/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok", "service": SERVICE}


@app.get("/api/orders/health")
async def ready() -> dict[str, str]:
    await STATE["pool"].fetchval("SELECT 1")
    return {"status": "ok", "service": SERVICE}


@app.post("/api/orders", status_code=201, response_model=OrderResponse)
async def create_order(
    order: OrderCreate,
    response: Response,
    caller: Caller = Depends(current_caller),
    authorization: Optional[str] = Header(default=None),
) -> Any:
    # Ask car-service before taking a pooled connection; the order belongs to the car's owner.
    car = await fetch_car(order.car_id, authorization)
    try:
        row = await STATE["pool"].fetchrow(
            INSERT,
            uuid.UUID(order.car_id),
            car["owner_id"],
            order.desired_time,
            order.description or "",
            car["license_plate"],
            car["make"],
            car["model"],
        )
    except asyncpg.exceptions.ExclusionViolationError:
        # Another booking took the bay between the statement's read and its write.
        raise slot_taken(order.desired_time) from None
    if row is None:
        raise slot_taken(order.desired_time)
    response.headers["location"] = f"/api/orders/{row['id']}"
    result = dict(row)
    result["items"] = []
    result["total"] = row["total_kopecks"] / 100
    return result
