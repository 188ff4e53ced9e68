"""POST /api/v1/erasure: ask for a person to be erased (202 with the request's id and status)."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.authentication import KeyPrincipal
from events.permissions import HasScope
from governance.services.erasure import ErasureInputError, erasure_request_create


class ErasureRequestCreateApi(APIView):
    permission_classes = [HasScope("admin")]

    class InputSerializer(serializers.Serializer):
        user_id = serializers.CharField(max_length=128)
        anonymous_ids = serializers.ListField(
            child=serializers.CharField(max_length=128), required=False, default=list, max_length=99
        )

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.CharField()
        created_at = serializers.DateTimeField()

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
