"""Rule-based farm advice from a daily forecast (tools/farm_rules.py)."""

from __future__ import annotations

import pytest

from tools.farm_rules import Advice, advise
from tools.weather import DailyForecast, Forecast

# A mild, calm, slightly rainy day on which no rule fires.
NEUTRAL = {"t_max": 20.0, "t_min": 10.0, "precipitation_mm": 2.0, "wind_max_kmh": 18.0}


def day(date: str = "2025-05-10", **values: float | None) -> DailyForecast:
    fields = {**NEUTRAL, **values}
    return DailyForecast(date=date, **fields)  # type: ignore[arg-type]


def forecast(*days: DailyForecast) -> Forecast:
    return Forecast(latitude=41.36, longitude=48.51, days=list(days))


def rules(*days: DailyForecast) -> list[str]:
    return [a.rule for a in advise(forecast(*days))]


def only(rule: str, *days: DailyForecast) -> Advice:
    matching = [a for a in advise(forecast(*days)) if a.rule == rule]
    assert len(matching) == 1
    return matching[0]


def test_a_neutral_forecast_gives_no_advice() -> None:
    assert advise(forecast(day(), day("2025-05-11"))) == []


def test_an_empty_forecast_gives_no_advice() -> None:
    assert advise(forecast()) == []


@pytest.mark.parametrize(("mm", "fires"), [(4.9, False), (5.0, True), (12.0, True)])
def test_rain_postpones_irrigation_from_5_mm(mm: float, fires: bool) -> None:
    assert ("rain_postpone" in rules(day(precipitation_mm=mm))) is fires


@pytest.mark.parametrize(("kmh", "fires"), [(20.0, False), (20.1, True), (35.0, True)])
def test_wind_over_20_kmh_forbids_spraying(kmh: float, fires: bool) -> None:
    assert ("wind_no_spray" in rules(day(wind_max_kmh=kmh))) is fires


@pytest.mark.parametrize(("t_min", "fires"), [(0.1, False), (0.0, True), (-3.0, True)])
def test_frost_from_0_c(t_min: float, fires: bool) -> None:
    assert ("frost" in rules(day(t_min=t_min))) is fires


@pytest.mark.parametrize(("t_max", "fires"), [(34.9, False), (35.0, True), (41.0, True)])
def test_heat_from_35_c(t_max: float, fires: bool) -> None:
    assert ("heat" in rules(day(t_max=t_max, precipitation_mm=3.0))) is fires


@pytest.mark.parametrize(
    ("rain", "t_max", "fires"),
    [
        ((0.0, 0.0, 0.0), 28.0, True),
        ((0.3, 0.3, 0.3), 30.0, True),  # 0.9 mm in the whole period
        ((0.5, 0.5, 0.0), 30.0, False),  # 1 mm in the whole period
        ((0.0, 0.0, 0.0), 27.9, False),  # dry but not hot
    ],
)
def test_dry_spell_needs_under_1_mm_in_the_period_and_28_c(
    rain: tuple[float, ...], t_max: float, fires: bool
) -> None:
    days = [
        day(f"2025-07-0{i + 1}", precipitation_mm=mm, t_max=t_max - i * 2)
        for i, mm in enumerate(rain)
    ]
    assert ("dry_spell" in rules(*days)) is fires


@pytest.mark.parametrize(
    ("values", "fires"),
    [
        ({"wind_max_kmh": 15.0, "precipitation_mm": 0.9, "t_max": 5.0}, True),
        ({"wind_max_kmh": 5.0, "precipitation_mm": 0.0, "t_max": 29.9}, True),
        ({"wind_max_kmh": 15.1, "precipitation_mm": 0.0, "t_max": 20.0}, False),
        ({"wind_max_kmh": 5.0, "precipitation_mm": 1.0, "t_max": 20.0}, False),
        ({"wind_max_kmh": 5.0, "precipitation_mm": 0.0, "t_max": 4.9}, False),
        ({"wind_max_kmh": 5.0, "precipitation_mm": 0.0, "t_max": 30.0}, False),
        ({"wind_max_kmh": None, "precipitation_mm": 0.0, "t_max": 20.0}, False),  # unknown wind
    ],
)
def test_spray_window_is_calm_dry_and_mild(values: dict[str, float | None], fires: bool) -> None:
    assert ("spray_window" in rules(day(**values))) is fires


def test_spray_window_names_at_most_the_first_two_calm_days() -> None:
    calm = {"wind_max_kmh": 5.0, "precipitation_mm": 0.0, "t_max": 20.0}
    advice = only(
        "spray_window",
        day("2025-05-10", **calm),
        day("2025-05-11"),
        day("2025-05-12", **calm),
        day("2025-05-13", **calm),
    )
    assert advice.dates == ("2025-05-10", "2025-05-12")


def test_missing_values_fire_no_rule() -> None:
    blank = day(t_max=None, t_min=None, precipitation_mm=None, wind_max_kmh=None)
    assert advise(forecast(blank)) == []


def test_rules_name_the_days_they_fire_on_and_the_extreme_value() -> None:
    rain = only(
        "rain_postpone",
        day("2025-05-10", precipitation_mm=6.0),
        day("2025-05-11", precipitation_mm=1.0),
        day("2025-05-12", precipitation_mm=14.2),
    )
    assert rain.dates == ("2025-05-10", "2025-05-12")
    assert rain.values == {"mm": 14.2}
    frost = only("frost", day("2025-03-01", t_min=-1.0), day("2025-03-02", t_min=-4.5))
    assert frost.dates == ("2025-03-01", "2025-03-02")
    assert frost.values == {"c": -4.5}


def test_rules_come_in_the_documented_order() -> None:
    stormy_frost = day("2025-03-01", precipitation_mm=8.0, wind_max_kmh=40.0, t_min=-2.0)
    heat = day("2025-03-02", t_max=36.0, precipitation_mm=0.0)
    calm = day("2025-03-03", wind_max_kmh=5.0, precipitation_mm=0.0)
    assert rules(stormy_frost, heat, calm) == [
        "rain_postpone",
        "wind_no_spray",
        "frost",
        "heat",
        "spray_window",
    ]


def test_advice_text_names_the_dates_and_values_in_each_language() -> None:
    advice = only(
        "rain_postpone",
        day("2025-05-10", precipitation_mm=6.0),
        day("2025-05-12", precipitation_mm=12.0),
    )
    assert advice.text("az") == "10.05, 12.05: 12 mm yağış gözlənilir — suvarmanı təxirə salın."
    assert advice.text("en") == "10.05, 12.05: 12 mm of rain expected — postpone irrigation."
    assert advice.text("ru") == "10.05, 12.05: ожидается 12 мм осадков — отложите полив."


def test_fractional_values_keep_one_decimal() -> None:
    advice = only("wind_no_spray", day("2025-05-10", wind_max_kmh=23.46))
    assert advice.text("en") == "10.05: wind up to 23.5 km/h — do not spray."


@pytest.mark.parametrize(
    ("values", "rule", "words"),
    [
        ({"precipitation_mm": 9.0}, "rain_postpone", ("suvarma", "postpone", "отложите")),
        ({"wind_max_kmh": 30.0}, "wind_no_spray", ("çiləmə", "do not spray", "не проводите")),
        ({"t_min": -2.0}, "frost", ("şaxta", "frost", "заморозк")),
        ({"t_max": 38.0, "precipitation_mm": 0.0}, "heat", ("istilik", "heat", "жар")),
        (
            {"wind_max_kmh": 3.0, "precipitation_mm": 0.0},
            "spray_window",
            ("dərman", "spray", "опрыск"),
        ),
    ],
)
def test_every_dated_rule_has_az_en_ru_text_with_the_date(
    values: dict[str, float], rule: str, words: tuple[str, str, str]
) -> None:
    advice = only(rule, day("2025-06-07", **values))
    texts = {lang: advice.text(lang) for lang in ("az", "en", "ru")}
    assert len(set(texts.values())) == 3, "each language has its own text"
    for (lang, text), word in zip(texts.items(), words, strict=True):
        assert text.startswith("07.06: "), (lang, text)
        assert word in text, (lang, text)
        assert "{" not in text, (lang, text)


def test_dry_spell_text_in_each_language() -> None:
    advice = only("dry_spell", day(precipitation_mm=0.0, t_max=33.0))
    assert "suvarmanı planlaşdırın" in advice.text("az")
    assert "plan irrigation" in advice.text("en")
    assert "запланируйте полив" in advice.text("ru")


def test_an_unknown_language_falls_back_to_english() -> None:
    advice = only("frost", day("2025-03-01", t_min=-2.0))
    assert advice.text("de") == advice.text("en")
    assert advice.text("en").startswith("01.03: minimum -2 °C — frost risk")
