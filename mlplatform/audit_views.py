"""Browse the audit trail of one object: `/audit/<app.model>/<pk>/` and the same under /api/v1/."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlplatform.api import Pagination
from mlplatform.audit import audit_record_as_dict, audit_records, audit_visible, tracked_model


def _object(*, user: Any, label: str, pk: str) -> tuple[Model | None, type[Model]]:
    """The object (None once deleted) and its class; 404 for what the user may not see."""
    model = tracked_model(label)
    if model is None:
        raise Http404(f"No audit trail for {label!r}.")
    obj = model._default_manager.filter(pk=pk).first() if pk.isdigit() else None
    if obj is None:
        # A deleted object's trail is for superusers (its owner is gone with it).
        if getattr(user, "is_superuser", False) and pk.isdigit():
            return None, model
        raise Http404("Not found.")
    if not audit_visible(user=user, obj=obj):
        raise Http404("Not found.")  # the same answer as for an object that does not exist
    return obj, model


class AuditRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    action = serializers.ChoiceField(choices=["create", "update", "delete", "access"])
    object = serializers.CharField()
    actor = serializers.CharField(allow_null=True)
    remote_addr = serializers.CharField(allow_null=True)
    timestamp = serializers.DateTimeField()
    changes = serializers.DictField(child=serializers.ListField(), help_text="field -> [from, to]")


class AuditApi(APIView):
    @extend_schema(
        tags=["audit"],
        responses={
            200: AuditRecordSerializer(many=True),
            404: OpenApiResponse(
                inline_serializer("AuditNotFound", {"detail": serializers.CharField()})
            ),
        },
        description=(
            "Who changed this object, when, and each field from which value to which, newest "
            "first. `label` is `app.model` (e.g. `features.featuregroup`); visible to those who "
            "may change the object."
        ),
    )
    def get(self, request: Request, label: str, pk: str) -> Response:
        _, model = _object(user=request.user, label=label, pk=pk)
        records = audit_records(model=model, pk=pk)
        paginator = Pagination()
        page = paginator.paginate_queryset(records, request, view=self)
        return paginator.get_paginated_response([audit_record_as_dict(r) for r in page or []])


@login_required
def audit_page(request: HttpRequest, label: str, pk: str) -> HttpResponse:
    obj, model = _object(user=request.user, label=label, pk=pk)
    records = audit_records(model=model, pk=pk)
    page = Paginator(records, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "audit.html",
        {
            "obj": obj,
            "kind": model._meta.verbose_name,
            "label": label,
            "pk": pk,
            "page": page,
            "records": [audit_record_as_dict(r) for r in page],
        },
    )
