"""`retrieve_weather`: find the place, call the forecast tool, apply the agronomic rules."""

from __future__ import annotations

import logging
from typing import Any

from langgraph.runtime import Runtime

from alim.errors import WeatherUnavailable
from alim.understanding import Understanding
from graphs.context import Context, context_of
from graphs.deps import GraphDeps
from graphs.messages import last_user_text
from graphs.nodes import Node
from graphs.state import State
from tools.farm_rules import advise
from tools.weather import Forecast, make_weather_tool

log = logging.getLogger(__name__)


def make_retrieve_weather(deps: GraphDeps) -> Node:
    async def retrieve_weather(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        gazetteer = deps.gazetteer()
        # The route node already looked the question's place up (Understanding.place).
        u = Understanding.from_dict(state.get("understanding"))
        named = gazetteer.get(u.place) if u is not None and u.place else None
        if u is None:
            named = gazetteer.find(last_user_text(state["messages"]))
        place, found_by = named, "question"
        region = (state.get("profile") or {}).get("region")
        if place is None and region:
            place, found_by = gazetteer.get(region), "profile"
        partner_region = context_of(runtime).default_region
        if place is None and partner_region:
            place, found_by = gazetteer.get(partner_region), "assistant"
        if place is None:
            place, found_by = gazetteer.get(deps.config().default_place), "default"
        if place is None:
            return {"place": None, "forecast": None, "weather_error": "unknown_place"}
        language = state.get("language") or "az"
        where = {
            "id": place.id,
            "name": place.name(language),
            "lat": place.lat,
            "lon": place.lon,
            "found_by": found_by,
        }
        tool = make_weather_tool(deps.weather())
        try:
            raw = await tool.ainvoke(
                {"latitude": place.lat, "longitude": place.lon, "days": deps.config().weather_days}
            )
        except WeatherUnavailable as exc:
            log.warning("weather unavailable: %s", exc.message)
            return {"place": where, "forecast": None, "weather_error": exc.code}
        forecast = Forecast.from_dict(raw)
        advice = [
            {"rule": a.rule, "dates": list(a.dates), "values": a.values} for a in advise(forecast)
        ]
        return {"place": where, "forecast": raw, "weather_error": None, "advice": advice}

    return retrieve_weather
