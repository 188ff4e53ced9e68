"""Dashboard pages. Thin: read from selectors, render templates."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from events import selectors as event_selectors


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "reports/overview.html", {"stats": event_selectors.event_stats()})
