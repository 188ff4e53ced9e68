"""Number formats for the dashboards, so every page writes a rate or an amount the same way."""

from __future__ import annotations

from functools import cache
from typing import Any

import pycountry
from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

from events.schema import UNKNOWN_COUNTRY
from reports.charts import UNKNOWN_COUNTRY_LABEL

register = template.Library()


@register.filter
def ratio_pct(value: float | None, digits: int = 1) -> str:
    """0.1234 -> `12.3%`; None (nothing to divide by) -> an en dash."""
    if value is None:
        return "–"
    return f"{100 * value:.{digits}f}%"


@register.filter
def pct(value: float | None, digits: int = 1) -> str:
    """12.34 (already a percentage) -> `12.3%`."""
    if value is None:
        return "–"
    return f"{value:.{digits}f}%"


@register.filter
def money(value: float | None) -> str:
    if value is None:
        return "–"
    return intcomma(f"{value:.2f}")


@register.filter
def metric(value: Any, kind: str) -> str:
    """A KPI value in its kind: `int`, `ratio` or `money`."""
    if kind == "ratio":
        return ratio_pct(value)
    if kind == "money":
        return money(value)
    return intcomma(value)


@register.filter
def change(value: float | None) -> str:
    """Signed change against the previous period: `+4.2%`, `-1.0%`, or `new` when the
    previous period had nothing."""
    if value is None:
        return "new"
    return f"{value:+.1f}%"


@register.filter
def duration(seconds: float | None) -> str:
    """Seconds as the largest sensible unit: `42 s`, `7 min`, `3 h`, `2 d`."""
    if seconds is None:
        return "–"
    seconds = max(0.0, float(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


@register.filter
def country_label(code: str) -> str:
    """A country code as shown: the code, or "Unknown" for events whose country could not be
    told (ADR 0014)."""
    return UNKNOWN_COUNTRY_LABEL if code == UNKNOWN_COUNTRY else code


@cache
def _country_options_html() -> str:
    countries = sorted(pycountry.countries, key=lambda country: country.name)
    known = format_html_join(
        "",
        '<option value="{}">{} ({})</option>',
        ((country.alpha_2, country.name, country.alpha_2) for country in countries),
    )
    return known + format_html_join(
        "", '<option value="{}">{}</option>', [(UNKNOWN_COUNTRY, UNKNOWN_COUNTRY_LABEL)]
    )


@register.simple_tag
def country_options(selected: str | None) -> SafeString:
    """Every ISO country as an <option>, sorted by name: built once, not looped per render
    (a 250-item template loop was most of a partial's render time)."""
    html = _country_options_html()
    if selected:
        html = html.replace(f'value="{selected}">', f'value="{selected}" selected>', 1)
    return mark_safe(html)  # noqa: S308 - built by format_html_join from ISO data
