"""Admin views of evaluation datasets, gates and evaluations: read-only lists. They are written
through the API (`/api/v1/models/{name}/evaluation-datasets/`, `…/gate/`, `…/evaluations/`),
whose services check the files and rules and queue the jobs."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from rollout.models import Evaluation, EvaluationDataset, Gate


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(EvaluationDataset)
class EvaluationDatasetAdmin(_ReadOnly):
    list_display = ["name", "model", "source", "label_column", "rows", "status", "created_at"]
    list_filter = ["source", "status"]
    search_fields = ["name", "model__name"]


@admin.register(Gate)
class GateAdmin(_ReadOnly):
    list_display = ["model", "dataset", "rules", "updated_by", "updated_at"]
    search_fields = ["model__name"]


@admin.register(Evaluation)
class EvaluationAdmin(_ReadOnly):
    list_display = ["version", "dataset", "status", "rows", "seconds", "job", "created_at"]
    list_filter = ["status"]
