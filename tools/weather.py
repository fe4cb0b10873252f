"""Daily weather forecasts from Open-Meteo (`/v1/forecast`, no key), with a small TTL cache.

Any failure (unreachable, timeout, non-200, junk JSON) raises `WeatherUnavailable`; the graph turns
it into a graceful "forecast unavailable" answer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from cachetools import TTLCache
from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from alim.errors import WeatherUnavailable

DAILY_VARIABLES = (
    "temperature_2m_max",
    "temperature_2m_min",
    "precipitation_sum",
    "wind_speed_10m_max",
)


@dataclass(frozen=True)
class DailyForecast:
    date: str
    t_max: float | None
    """°C"""
    t_min: float | None
    """°C"""
    precipitation_mm: float | None
    wind_max_kmh: float | None


@dataclass(frozen=True)
class Forecast:
    latitude: float
    longitude: float
    days: list[DailyForecast]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Forecast:
        return cls(
            latitude=data["latitude"],
            longitude=data["longitude"],
            days=[DailyForecast(**d) for d in data["days"]],
        )


class WeatherClient:
    """Open-Meteo client. `base_url` ends in `/v1` (configurable for tests and mirrors)."""

    def __init__(
        self,
        base_url: str = "https://api.open-meteo.com/v1",
        *,
        timeout: float = 5.0,
        cache_ttl: float = 900.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._transport = transport
        self._cache: TTLCache[tuple[float, float, int], Forecast] | None = (
            TTLCache(maxsize=512, ttl=cache_ttl) if cache_ttl > 0 else None
        )

    async def forecast(self, latitude: float, longitude: float, days: int = 5) -> Forecast:
        key = (round(latitude, 2), round(longitude, 2), days)
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        params: dict[str, str | int | float] = {
            "latitude": key[0],
            "longitude": key[1],
            "daily": ",".join(DAILY_VARIABLES),
            "timezone": "auto",
            "forecast_days": days,
            "wind_speed_unit": "kmh",
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self._transport) as client:
                response = await client.get(f"{self.base_url}/forecast", params=params)
        except httpx.HTTPError as exc:
            raise WeatherUnavailable(f"forecast service unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise WeatherUnavailable(f"forecast service answered {response.status_code}")
        try:
            forecast = parse_forecast(response.json())
        except (ValueError, KeyError, TypeError) as exc:
            raise WeatherUnavailable(f"forecast service sent an unusable answer: {exc}") from exc
        if self._cache is not None:
            self._cache[key] = forecast
        return forecast


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def parse_forecast(payload: Any) -> Forecast:
    """Validate an Open-Meteo response (parallel arrays under `daily`) into a Forecast."""
    if not isinstance(payload, dict) or not isinstance(payload.get("daily"), dict):
        raise ValueError("no 'daily' object")
    daily = payload["daily"]
    dates = daily.get("time")
    if not isinstance(dates, list) or not dates:
        raise ValueError("no daily dates")
    columns = []
    for name in DAILY_VARIABLES:
        column = daily.get(name)
        if not isinstance(column, list) or len(column) != len(dates):
            raise ValueError(f"'{name}' missing or of the wrong length")
        columns.append([_number(v) for v in column])
    days = [DailyForecast(str(d), *(col[i] for col in columns)) for i, d in enumerate(dates)]
    return Forecast(float(payload["latitude"]), float(payload["longitude"]), days)


class ForecastArgs(BaseModel):
    latitude: float = Field(ge=-90, le=90, description="Latitude in degrees")
    longitude: float = Field(ge=-180, le=180, description="Longitude in degrees")
    days: int = Field(5, ge=1, le=16, description="Number of forecast days")


def make_weather_tool(client: WeatherClient) -> StructuredTool:
    """The `weather_forecast` tool: daily max/min temperature, precipitation and wind."""

    async def weather_forecast(latitude: float, longitude: float, days: int = 5) -> dict[str, Any]:
        return (await client.forecast(latitude, longitude, days)).to_dict()

    return StructuredTool.from_function(
        coroutine=weather_forecast,
        name="weather_forecast",
        description=(
            "Daily forecast for a location: max/min temperature (°C), precipitation (mm) and "
            "maximum wind speed (km/h). Raises WeatherUnavailable when the service is down."
        ),
        args_schema=ForecastArgs,
    )
