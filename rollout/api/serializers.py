from typing import Any

from rest_framework import serializers

from rollout.models import Evaluation, EvaluationDataset, Gate


class DatasetInputSerializer(serializers.Serializer):
    """Multipart: `file` (CSV or Parquet) + `label_column`, or `feature_service` + `file` (the
    entity file). JSON: `feature_service` + `entity_file` (a path in the team's batch inputs
    area, `batch-inputs/<team>/…`) + `label_column`."""

    file = serializers.FileField(required=False)
    label_column = serializers.CharField(max_length=200)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    feature_service = serializers.CharField(max_length=100, required=False, allow_blank=True)
    entity_file = serializers.CharField(max_length=500, required=False, allow_blank=True)


class DatasetOutputSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    model = serializers.CharField(source="model.name", read_only=True)

    class Meta:
        model = EvaluationDataset
        fields = [
            "id",
            "model",
            "name",
            "label_column",
            "rows",
            "columns",
            "source",
            "feature_service",
            "status",
            "message",
            "job",
            "created_by",
            "created_at",
        ]


class GateInputSerializer(serializers.Serializer):
    dataset = serializers.IntegerField(min_value=1)
    rules = serializers.ListField(
        child=serializers.CharField(max_length=200, trim_whitespace=False, allow_blank=True),
        allow_empty=False,
        max_length=50,
    )


class GateOutputSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)
    updated_by = serializers.CharField(source="updated_by.username", read_only=True, default=None)
    dataset = DatasetOutputSerializer(read_only=True)

    class Meta:
        model = Gate
        fields = ["model", "dataset", "rules", "updated_by", "updated_at"]


class EvaluationRequestSerializer(serializers.Serializer):
    dataset = serializers.IntegerField(min_value=1, required=False)


class EvaluationOutputSerializer(serializers.ModelSerializer):
    status = serializers.CharField(source="effective_status")
    version = serializers.IntegerField(source="version.version")
    job_status = serializers.SerializerMethodField()

    class Meta:
        model = Evaluation
        fields = [
            "id",
            "version",
            "dataset",
            "job",
            "job_status",
            "status",
            "error",
            "metrics",
            "curves",
            "rows",
            "seconds",
            "created_at",
        ]

    def get_job_status(self, obj: Evaluation) -> str | None:
        return obj.job.status if obj.job is not None else None


def verdicts_data(verdicts: list[Any]) -> list[dict[str, Any]]:
    return [verdict.as_dict() for verdict in verdicts]
