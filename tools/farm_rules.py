"""Explicit agronomic rules that turn a daily forecast into farm advice.

Each rule has an id, a documented threshold and a message in az / en / ru; every piece of advice
names the rule that produced it, so a farmer (or an agronomist reviewing a turn) can see why.

| rule          | condition (per forecast day)                 | advice                       |
|---------------|----------------------------------------------|------------------------------|
| rain_postpone | precipitation ≥ 5 mm                         | postpone irrigation          |
| wind_no_spray | max wind > 20 km/h                           | do not spray                 |
| frost         | min temperature ≤ 0 °C                       | frost protection             |
| heat          | max temperature ≥ 35 °C                      | irrigate morning / evening   |
| dry_spell     | < 1 mm in the whole period and max ≥ 28 °C   | plan irrigation, check soil  |
| spray_window  | wind ≤ 15 km/h, rain < 1 mm, 5 °C ≤ max < 30 | a good day to spray, if need |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tools.weather import DailyForecast, Forecast

RAIN_POSTPONE_MM = 5.0
WIND_NO_SPRAY_KMH = 20.0
FROST_C = 0.0
HEAT_C = 35.0
DRY_SPELL_MM = 1.0
DRY_SPELL_HOT_C = 28.0
SPRAY_WIND_KMH = 15.0

_TEXT: dict[str, dict[str, str]] = {
    "rain_postpone": {
        "az": "{dates}: {mm} mm yağış gözlənilir — suvarmanı təxirə salın.",
        "en": "{dates}: {mm} mm of rain expected — postpone irrigation.",
        "ru": "{dates}: ожидается {mm} мм осадков — отложите полив.",
    },
    "wind_no_spray": {
        "az": "{dates}: külək {kmh} km/saata qədər — dərmanlama (çiləmə) aparmayın.",
        "en": "{dates}: wind up to {kmh} km/h — do not spray.",
        "ru": "{dates}: ветер до {kmh} км/ч — не проводите опрыскивание.",
    },
    "frost": {
        "az": "{dates}: minimum {c} °C — şaxta riski; axşamdan suvarın, tinglərin və "
        "çiçəkləyən bitkilərin üstünü örtün.",
        "en": "{dates}: minimum {c} °C — frost risk; irrigate the evening before and cover "
        "seedlings and flowering plants.",
        "ru": "{dates}: минимум {c} °C — риск заморозков; полейте накануне вечером и укройте "
        "рассаду и цветущие растения.",
    },
    "heat": {
        "az": "{dates}: maksimum {c} °C — istilik stresi; səhər tezdən və ya axşam suvarın, "
        "günortanın istisində gübrə və dərman verməyin.",
        "en": "{dates}: maximum {c} °C — heat stress; irrigate early morning or in the evening "
        "and do not fertilise or spray in the midday heat.",
        "ru": "{dates}: максимум {c} °C — тепловой стресс; поливайте рано утром или вечером, "
        "не вносите удобрения и не опрыскивайте в полуденную жару.",
    },
    "dry_spell": {
        "az": "Bu dövrdə yağış demək olar ki, gözlənilmir və hava istidir — torpağın nəmliyini "
        "yoxlayın və suvarmanı planlaşdırın.",
        "en": "Almost no rain is expected in this period and it is hot — check soil moisture "
        "and plan irrigation.",
        "ru": "В этот период осадков почти не ожидается и жарко — проверьте влажность почвы "
        "и запланируйте полив.",
    },
    "spray_window": {
        "az": "{dates}: sakit və quru hava — lazım olsa, dərmanlama üçün əlverişli gündür.",
        "en": "{dates}: calm and dry — a suitable day to spray, if needed.",
        "ru": "{dates}: тихо и сухо — подходящий день для опрыскивания, если оно нужно.",
    },
}


@dataclass(frozen=True)
class Advice:
    rule: str
    dates: tuple[str, ...]
    values: dict[str, float]

    def text(self, language: str) -> str:
        template = _TEXT[self.rule].get(language, _TEXT[self.rule]["en"])
        shown = ", ".join(_short_date(d) for d in self.dates)
        return template.format(dates=shown, **{k: _fmt(v) for k, v in self.values.items()})


def _short_date(iso: str) -> str:
    parts = iso.split("-")
    return f"{parts[2]}.{parts[1]}" if len(parts) == 3 else iso


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def _days(forecast: Forecast, test: Callable[[DailyForecast], bool]) -> list[DailyForecast]:
    return [d for d in forecast.days if test(d)]


def advise(forecast: Forecast) -> list[Advice]:
    """Apply every rule to the forecast; the order is the order of the table above."""
    out: list[Advice] = []
    rainy = _days(forecast, lambda d: (d.precipitation_mm or 0) >= RAIN_POSTPONE_MM)
    if rainy:
        mm = max(d.precipitation_mm or 0 for d in rainy)
        out.append(Advice("rain_postpone", tuple(d.date for d in rainy), {"mm": mm}))
    windy = _days(forecast, lambda d: (d.wind_max_kmh or 0) > WIND_NO_SPRAY_KMH)
    if windy:
        kmh = max(d.wind_max_kmh or 0 for d in windy)
        out.append(Advice("wind_no_spray", tuple(d.date for d in windy), {"kmh": kmh}))
    frosty = _days(forecast, lambda d: d.t_min is not None and d.t_min <= FROST_C)
    if frosty:
        c = min(d.t_min for d in frosty if d.t_min is not None)
        out.append(Advice("frost", tuple(d.date for d in frosty), {"c": c}))
    hot = _days(forecast, lambda d: d.t_max is not None and d.t_max >= HEAT_C)
    if hot:
        c = max(d.t_max for d in hot if d.t_max is not None)
        out.append(Advice("heat", tuple(d.date for d in hot), {"c": c}))
    total_rain = sum(d.precipitation_mm or 0 for d in forecast.days)
    hottest = max((d.t_max for d in forecast.days if d.t_max is not None), default=None)
    if total_rain < DRY_SPELL_MM and hottest is not None and hottest >= DRY_SPELL_HOT_C:
        out.append(Advice("dry_spell", (), {}))
    calm = _days(
        forecast,
        lambda d: (
            (d.wind_max_kmh is not None and d.wind_max_kmh <= SPRAY_WIND_KMH)
            and (d.precipitation_mm or 0) < 1.0
            and d.t_max is not None
            and 5.0 <= d.t_max < 30.0
        ),
    )
    if calm:
        out.append(Advice("spray_window", tuple(d.date for d in calm[:2]), {}))
    return out
