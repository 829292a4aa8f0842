"""car-service as the FastAPI reference design builds it (FastAPI + asyncpg + PyJWT), on our
`cars.cars` table (migrations/0001_cars.sql), answering with the bodies our car-service
component answers.

    uvicorn --app-dir bench/seed-stack cars:app --workers 2

Env: POSTGRES_URL, JWT_SECRET_KEY (at least 32 bytes), PG_POOL_SIZE (per worker, default 10).
"""

from __future__ import annotations

import unicodedata
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, Optional

from fastapi import Depends, FastAPI, Response
from pydantic import BaseModel, StrictInt, StrictStr, field_serializer, field_validator
from pydantic_core import PydanticCustomError

import common
from common import ApiError, Caller

SERVICE = "car-service"
STATE: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(_app: FastAPI):
    STATE["verifier"] = common.TokenVerifier(common.jwt_secret())
    STATE["pool"] = await common.create_pool()
    try:
        yield
    finally:
        await STATE["pool"].close()


app = FastAPI(title=SERVICE, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
common.install_error_handlers(app)
current_caller = common.caller_dependency(STATE)


# --- schemas --------------------------------------------------------------------------


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid", message)


def _is_plate_letter(c: str) -> bool:
    if not c.isalpha():
        return False
    code = ord(c)
    latin = c.isascii() or 0x00C0 <= code <= 0x024F
    cyrillic = 0x0400 <= code <= 0x04FF
    return latin or cyrillic


def _name(value: str) -> str:
    value = value.strip()
    if not value:
        raise _invalid("must not be empty")
    if len(value) > 64:
        raise _invalid("must be at most 64 characters")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise _invalid("must not contain control characters")
    return value


class CarCreate(BaseModel):
    owner_id: Optional[StrictStr] = None
    license_plate: StrictStr
    vin: StrictStr
    make: StrictStr
    model: StrictStr
    year: StrictInt

    @field_validator("owner_id")
    @classmethod
    def _owner_id(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and common.parse_uuid(value) is None:
            raise _invalid("must be a UUID")
        return value

    @field_validator("license_plate")
    @classmethod
    def _plate(cls, value: str) -> str:
        plate = value.strip().upper()
        allowed = all(_is_plate_letter(c) or c in "0123456789 -" for c in plate)
        has_sign = any(_is_plate_letter(c) or c in "0123456789" for c in plate)
        if not (1 <= len(plate) <= 12 and allowed and has_sign):
            raise _invalid("must be 1 to 12 Latin or Cyrillic letters, digits, spaces or dashes")
        return plate

    @field_validator("vin")
    @classmethod
    def _vin(cls, value: str) -> str:
        vin = value.strip()
        if not (
            len(vin) == 17
            and vin.isascii()
            and vin.isalnum()
            and not any(c in "IOQ" for c in vin.upper())
        ):
            raise _invalid("must be 17 letters or digits, without I, O or Q")
        return vin.upper()

    @field_validator("make", "model")
    @classmethod
    def _names(cls, value: str) -> str:
        return _name(value)

    @field_validator("year")
    @classmethod
    def _year(cls, value: int) -> int:
        last = datetime.now(timezone.utc).year + 1
        if not 1886 <= value <= last:
            raise _invalid(f"must be between 1886 and {last}")
        return value


class CarResponse(BaseModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    license_plate: str
    vin: str
    make: str
    model: str
    year: int
    created_at: datetime

    @field_serializer("created_at")
    def _created_at(self, value: datetime) -> str:
        return common.rfc3339(value)


# --- SQL ------------------------------------------------------------------------------

COLUMNS = "id, owner_id, license_plate, vin, make, model, year, created_at"

INSERT = f"""
    INSERT INTO cars.cars (owner_id, license_plate, vin, make, model, year)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (vin) DO NOTHING
    RETURNING {COLUMNS}
"""

FIND = f"SELECT {COLUMNS} FROM cars.cars WHERE id = $1"


def car_not_found(car_id: object) -> ApiError:
    return ApiError(404, "car_not_found", f"no car with id {car_id}")


# --- routes ---------------------------------------------------------------------------


@app.get("/api/cars/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok", "service": SERVICE}


@app.get("/api/cars/health")
async def ready() -> dict[str, str]:
    await STATE["pool"].fetchval("SELECT 1")
    return {"status": "ok", "service": SERVICE}


@app.post("/api/cars", status_code=201, response_model=CarResponse)
async def create_car(
    car: CarCreate, response: Response, caller: Caller = Depends(current_caller)
) -> Any:
    owner = caller.user_id
    if car.owner_id is not None:
        named = common.parse_uuid(car.owner_id)
        if not caller.may_access(named):
            raise ApiError(
                403,
                "foreign_owner",
                f"owner_id {named} is not you: a car can only be registered for yourself "
                "(leave owner_id out, or use your own id)",
            )
        owner = named
    row = await STATE["pool"].fetchrow(
        INSERT, owner, car.license_plate, car.vin, car.make, car.model, car.year
    )
    if row is None:
        raise ApiError(409, "duplicate_vin", f"a car with VIN {car.vin} is already registered")
    response.headers["location"] = f"/api/cars/{row['id']}"
    return dict(row)


@app.get("/api/cars/{car_id}", response_model=CarResponse)
async def get_car(car_id: str, caller: Caller = Depends(current_caller)) -> Any:
    parsed = common.parse_uuid(car_id)
    if parsed is None:
        raise car_not_found(car_id)
    row = await STATE["pool"].fetchrow(FIND, parsed)
    if row is None or not caller.may_access(row["owner_id"]):
        raise car_not_found(parsed)
    return dict(row)
