"""The Open-Meteo client, the `weather_forecast` tool and the graph's weather path, over real HTTP
against the local forecast stub (tests/support/fake_weather.py).

The stub's forecast starts 2026-11-23; day 2 (24.11) has 7.4 mm of rain and wind up to 24.5 km/h.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alim.errors import WeatherUnavailable
from alim.events import DoneEvent, ErrorEvent, Event, SourcesEvent, TokenEvent
from alim.settings import Settings
from alim.threads import Owner
from api.sse import with_outcome
from engine import Engine, GraphDeps, TurnRequest
from tests.conftest import UNREACHABLE, make_settings
from tests.support.fake_weather import FakeWeather
from tests.support.fakes import HashingEmbeddings
from tools.weather import DAILY_VARIABLES, WeatherClient, make_weather_tool

QUBA = (41.36, 48.51)
LENKERAN = (38.75, 48.85)
OWNER = Owner("p", "u")

RAIN_ADVICE_AZ = "24.11: 7.4 mm yağış gözlənilir — suvarmanı təxirə salın."
WIND_ADVICE_AZ = "24.11: külək 24.5 km/saata qədər — dərmanlama (çiləmə) aparmayın."
UNAVAILABLE_AZ = "hava proqnozunu əldə etmək mümkün olmadı"


# --------------------------------------------------------------------------- the client


async def test_forecast_parses_the_daily_arrays(fake_weather: tuple[FakeWeather, str]) -> None:
    stub, url = fake_weather
    forecast = await WeatherClient(url).forecast(*QUBA, days=5)

    assert (forecast.latitude, forecast.longitude) == QUBA
    assert [d.date for d in forecast.days] == [
        "2026-11-23",
        "2026-11-24",
        "2026-11-25",
        "2026-11-26",
        "2026-11-27",
    ]
    assert [d.t_max for d in forecast.days] == [12.0, 10.5, 9.0, 11.2, 13.0]
    assert [d.t_min for d in forecast.days] == [3.1, 1.0, -1.5, 0.4, 2.2]
    assert [d.precipitation_mm for d in forecast.days] == [0.0, 7.4, 2.0, 0.0, 0.0]
    assert [d.wind_max_kmh for d in forecast.days] == [9.0, 24.5, 14.0, 8.0, 6.0]
    assert len(stub.requests) == 1


async def test_forecast_asks_for_the_daily_variables_in_local_time(
    fake_weather: tuple[FakeWeather, str],
) -> None:
    stub, url = fake_weather
    forecast = await WeatherClient(url).forecast(*LENKERAN, days=3)

    assert len(forecast.days) == 3
    [params] = stub.requests
    assert set(params["daily"].split(",")) == set(DAILY_VARIABLES)
    assert params["timezone"] == "auto"
    assert params["forecast_days"] == "3"
    assert float(params["latitude"]) == pytest.approx(LENKERAN[0])
    assert float(params["longitude"]) == pytest.approx(LENKERAN[1])


async def test_a_repeated_question_is_served_from_the_cache(
    fake_weather: tuple[FakeWeather, str],
) -> None:
    stub, url = fake_weather
    client = WeatherClient(url, cache_ttl=900)
    first = await client.forecast(*QUBA)
    second = await client.forecast(*QUBA)
    assert second == first
    assert len(stub.requests) == 1

    await client.forecast(*LENKERAN)  # another place is another request
    assert len(stub.requests) == 2


async def test_without_a_cache_every_call_asks_the_service(
    fake_weather: tuple[FakeWeather, str],
) -> None:
    stub, url = fake_weather
    client = WeatherClient(url, cache_ttl=0)
    await client.forecast(*QUBA)
    await client.forecast(*QUBA)
    assert len(stub.requests) == 2


async def test_a_failure_is_not_cached(fake_weather: tuple[FakeWeather, str]) -> None:
    stub, url = fake_weather
    client = WeatherClient(url)
    stub.behaviour = "500"
    with pytest.raises(WeatherUnavailable):
        await client.forecast(*QUBA)
    stub.behaviour = "ok"
    forecast = await client.forecast(*QUBA)
    assert len(forecast.days) == 5


@pytest.mark.timeout(20)
@pytest.mark.parametrize("behaviour", ["500", "junk", "slow"])
async def test_a_broken_service_is_weather_unavailable(
    fake_weather: tuple[FakeWeather, str], behaviour: str
) -> None:
    stub, url = fake_weather
    stub.behaviour = behaviour
    with pytest.raises(WeatherUnavailable) as info:
        await WeatherClient(url, timeout=0.5).forecast(*QUBA)
    assert info.value.code == "weather_unavailable"
    assert info.value.status == 503


@pytest.mark.timeout(20)
async def test_an_unreachable_service_is_weather_unavailable() -> None:
    with pytest.raises(WeatherUnavailable):
        await WeatherClient(UNREACHABLE, timeout=0.5).forecast(*QUBA)


# --------------------------------------------------------------------------- the tool


async def test_the_tool_returns_the_forecast_as_a_dict(
    fake_weather: tuple[FakeWeather, str],
) -> None:
    stub, url = fake_weather
    tool = make_weather_tool(WeatherClient(url))
    assert tool.name == "weather_forecast"

    result = await tool.ainvoke({"latitude": QUBA[0], "longitude": QUBA[1], "days": 2})

    assert isinstance(result, dict)
    assert (result["latitude"], result["longitude"]) == QUBA
    assert result["days"][1] == {
        "date": "2026-11-24",
        "t_max": 10.5,
        "t_min": 1.0,
        "precipitation_mm": 7.4,
        "wind_max_kmh": 24.5,
    }
    assert len(result["days"]) == 2
    assert stub.requests[0]["forecast_days"] == "2"


async def test_the_tool_raises_weather_unavailable(
    fake_weather: tuple[FakeWeather, str],
) -> None:
    stub, url = fake_weather
    stub.behaviour = "500"
    tool = make_weather_tool(WeatherClient(url))
    with pytest.raises(WeatherUnavailable):
        await tool.ainvoke({"latitude": QUBA[0], "longitude": QUBA[1]})


# --------------------------------------------------------------------------- the graph


def weather_settings(tmp_path: Path, url: str, **overrides: Any) -> Settings:
    return make_settings(tmp_path, weather_base_url=url, **overrides)


async def run_turn(
    settings: Settings, message: str, profile: dict[str, Any] | None = None
) -> list[Event]:
    deps = GraphDeps(settings, _embeddings=HashingEmbeddings())
    async with Engine.open(settings, deps) as engine:
        request = TurnRequest(message, OWNER, profile=profile)
        return [e async for e in with_outcome(engine.stream(request))]


def answer_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TokenEvent))


def summary_of(events: list[Event]) -> SourcesEvent:
    [summary] = [e for e in events if isinstance(e, SourcesEvent)]
    return summary


def requested_place(stub: FakeWeather) -> tuple[float, float]:
    [params] = stub.requests
    return float(params["latitude"]), float(params["longitude"])


async def test_rain_question_for_quba_gets_the_forecast_and_rule_advice(
    fake_weather: tuple[FakeWeather, str], tmp_path: Path
) -> None:
    stub, url = fake_weather
    events = await run_turn(weather_settings(tmp_path, url), "Sabah Qubada yağış yağacaq?")

    assert not [e for e in events if isinstance(e, ErrorEvent)]
    assert isinstance(events[-1], DoneEvent)
    assert summary_of(events).route == "weather"
    answer = answer_of(events)
    assert "Quba üçün hava proqnozu" in answer
    assert RAIN_ADVICE_AZ in answer
    assert WIND_ADVICE_AZ in answer
    lat, lon = requested_place(stub)
    assert lat == pytest.approx(QUBA[0], abs=0.1)
    assert lon == pytest.approx(QUBA[1], abs=0.1)


async def test_weather_days_setting_reaches_the_service(
    fake_weather: tuple[FakeWeather, str], tmp_path: Path
) -> None:
    stub, url = fake_weather
    settings = weather_settings(tmp_path, url, weather_days=2)
    events = await run_turn(settings, "Sabah Qubada yağış yağacaq?")
    answer = answer_of(events)
    assert stub.requests[0]["forecast_days"] == "2"
    assert "• 24.11:" in answer
    assert "• 25.11:" not in answer


async def test_forecast_outage_gives_a_graceful_answer(
    fake_weather: tuple[FakeWeather, str], tmp_path: Path
) -> None:
    stub, url = fake_weather
    stub.behaviour = "500"
    events = await run_turn(weather_settings(tmp_path, url), "Sabah Qubada yağış yağacaq?")

    assert not [e for e in events if isinstance(e, ErrorEvent)]
    assert isinstance(events[-1], DoneEvent)
    answer = answer_of(events)
    assert f"Hazırda Quba üçün {UNAVAILABLE_AZ}" in answer
    assert "suvarmanı təxirə salın" not in answer  # no advice made up without a forecast
    summary = summary_of(events)
    assert summary.route == "weather"
    assert summary.escalated is False
    assert len(stub.requests) == 1


@pytest.mark.timeout(30)
async def test_unreachable_forecast_service_gives_a_graceful_answer(tmp_path: Path) -> None:
    events = await run_turn(make_settings(tmp_path), "Sabah Qubada yağış yağacaq?")
    assert not [e for e in events if isinstance(e, ErrorEvent)]
    assert UNAVAILABLE_AZ in answer_of(events)


async def test_profile_region_is_used_when_the_question_names_no_place(
    fake_weather: tuple[FakeWeather, str], tmp_path: Path
) -> None:
    stub, url = fake_weather
    events = await run_turn(
        weather_settings(tmp_path, url), "Sabah yağış yağacaq?", profile={"region": "Lənkəran"}
    )

    assert summary_of(events).route == "weather"
    assert "Lənkəran üçün hava proqnozu" in answer_of(events)
    lat, lon = requested_place(stub)
    assert lat == pytest.approx(LENKERAN[0], abs=0.1)
    assert lon == pytest.approx(LENKERAN[1], abs=0.1)


async def test_a_place_in_the_question_wins_over_the_profile(
    fake_weather: tuple[FakeWeather, str], tmp_path: Path
) -> None:
    stub, url = fake_weather
    events = await run_turn(
        weather_settings(tmp_path, url),
        "Sabah Qubada yağış yağacaq?",
        profile={"region": "Lənkəran"},
    )
    assert "Quba üçün hava proqnozu" in answer_of(events)
    lat, _ = requested_place(stub)
    assert lat == pytest.approx(QUBA[0], abs=0.1)


async def test_without_place_or_profile_the_default_place_is_used(
    fake_weather: tuple[FakeWeather, str], tmp_path: Path
) -> None:
    stub, url = fake_weather
    events = await run_turn(
        weather_settings(tmp_path, url, default_place="lenkeran"), "Sabah yağış yağacaq?"
    )
    assert "Lənkəran üçün hava proqnozu" in answer_of(events)
    lat, lon = requested_place(stub)
    assert (lat, lon) == pytest.approx(LENKERAN, abs=0.1)
