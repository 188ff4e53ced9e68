"""POST /api/v1/erasure: ask for a person to be erased (202 with the request's id and status)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.authentication import KeyPrincipal
from events.openapi import AUTH_ERROR_TEXTS, error_response
from events.permissions import HasScope
from governance.services.erasure import ErasureInputError, erasure_request_create

# An id with something besides white space (the service refuses blank ids) and no NUL. Ids are
# kept as sent, spaces included: events store them untrimmed, so erasure must match them so.
ID_PATTERN = (
    r"^[^\x00]*[^\x00\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f"
    r"\u205f\u3000][^\x00]*$"
)


def _id_field(**kwargs) -> serializers.RegexField:
    return serializers.RegexField(ID_PATTERN, max_length=128, trim_whitespace=False, **kwargs)


class ErasureRequestCreateApi(APIView):
    permission_classes = [HasScope("admin")]

    class InputSerializer(serializers.Serializer):
        user_id = _id_field()
        anonymous_ids = serializers.ListField(
            child=_id_field(), required=False, default=list, max_length=99
        )

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(
        request=InputSerializer,
        responses={
            202: OutputSerializer,
            400: error_response("A missing, blank, too long or mistyped id (field, rule)."),
            **{code: error_response(text) for code, text in AUTH_ERROR_TEXTS.items()},
            415: error_response("Content-Type is not application/json."),
        },
        summary="Ask for a person's events to be erased",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            created = erasure_request_create(
                user_id=data.validated_data["user_id"],
                anonymous_ids=data.validated_data["anonymous_ids"],
                via="api",
                requested_by=request.user if not isinstance(request.user, KeyPrincipal) else None,
                requested_by_label=str(request.user),
            )
        except ErasureInputError as exc:
            raise serializers.ValidationError(
                {exc.field: [serializers.ErrorDetail(exc.message, code=exc.rule)]}
            ) from exc
        return Response(self.OutputSerializer(created).data, status=status.HTTP_202_ACCEPTED)
