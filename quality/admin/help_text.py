"""Help text shared by the rule and check forms."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join


def kinds_help(helps: dict[str, str]) -> str:
    """An HTML list of kinds and what each one's parameters mean."""
    return format_html(
        "<ul>{}</ul>",
        format_html_join("", "<li><b>{}</b>: {}</li>", ((k, v) for k, v in helps.items())),
    )
