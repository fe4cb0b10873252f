"""A local stand-in for Open-Meteo's `/v1/forecast`, answering realistic JSON (or failures)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


def open_meteo_payload(
    lat: float,
    lon: float,
    days: int = 5,
    *,
    t_max: list[float] | None = None,
    t_min: list[float] | None = None,
    rain: list[float] | None = None,
    wind: list[float] | None = None,
) -> dict[str, Any]:
    start = date(2026, 11, 23)
    dates = [(start + timedelta(days=i)).isoformat() for i in range(days)]
    return {
        "latitude": lat,
        "longitude": lon,
        "generationtime_ms": 0.12,
        "utc_offset_seconds": 14400,
        "timezone": "Asia/Baku",
        "timezone_abbreviation": "GMT+4",
        "elevation": 600.0,
        "daily_units": {
            "time": "iso8601",
            "temperature_2m_max": "°C",
            "temperature_2m_min": "°C",
            "precipitation_sum": "mm",
            "wind_speed_10m_max": "km/h",
        },
        "daily": {
            "time": dates,
            "temperature_2m_max": (t_max or [12.0, 10.5, 9.0, 11.2, 13.0])[:days],
            "temperature_2m_min": (t_min or [3.1, 1.0, -1.5, 0.4, 2.2])[:days],
            "precipitation_sum": (rain or [0.0, 7.4, 2.0, 0.0, 0.0])[:days],
            "wind_speed_10m_max": (wind or [9.0, 24.5, 14.0, 8.0, 6.0])[:days],
        },
    }


@dataclass
class FakeWeather:
    behaviour: str = "ok"  # ok | 500 | junk | slow
    requests: list[dict[str, str]] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)

    def app(self) -> Starlette:
        async def forecast(request: Request) -> Response:
            params = dict(request.query_params)
            self.requests.append(params)
            if self.behaviour == "500":
                return PlainTextResponse("upstream error", status_code=500)
            if self.behaviour == "junk":
                return JSONResponse({"reason": "nonsense", "daily": {"time": "x"}})
            if self.behaviour == "slow":
                await asyncio.sleep(5)
            days = int(params.get("forecast_days", 5))
            return JSONResponse(
                open_meteo_payload(
                    float(params["latitude"]), float(params["longitude"]), days, **self.overrides
                )
            )

        return Starlette(routes=[Route("/v1/forecast", forecast)])
