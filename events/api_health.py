"""Health endpoints: one for people, one for load balancers (ready), one for supervisors (live)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from events import health
from events.api import _EventApi


class HealthApi(_EventApi):
    """Everything, for people: 200 "ok" or "degraded" (Redis down: the web still ingests, so a
    load balancer must keep this host), 503 "down" when the database is down."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        body = health.health_full()
        return Response(body, status=503 if body["status"] == "down" else 200)


class HealthReadyApi(HealthApi):
    """Readiness for load balancers: 200 when the database answers within a second, else 503."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        body = health.health_ready()
        return Response(body, status=200 if body["status"] == "ok" else 503)


class HealthLiveApi(HealthApi):
    """Liveness for supervisors: the process answers; no dependency is asked."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response(health.health_live())
