"""Input and output shapes of the registry API (DESIGN.md §11)."""

import json
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry.models import AliasChange, ModelAlias, ModelVersion, RegisteredModel
from registry.services import alias_policy
from registry.types import Signature


@extend_schema_field(OpenApiTypes.OBJECT)
class JsonTextField(serializers.Field):
    """A JSON value sent as text in a multipart form, or as JSON in a JSON body."""

    def __init__(self, *, kind: type, example: str, **kwargs: Any) -> None:
        self.kind = kind
        self.example = example
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            if not data.strip():
                return None
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise serializers.ValidationError(f"not valid JSON ({exc.msg}).") from exc
            except RecursionError:
                raise serializers.ValidationError("JSON nested too deeply.") from None
        if self.kind is list and isinstance(data, dict):
            data = [data]
        if not isinstance(data, self.kind):
            raise serializers.ValidationError(f"must be a JSON {self.example}.")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class ModelInputSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    tags = JsonTextField(kind=dict, example="object", required=False, allow_null=True)
    owner = serializers.CharField(required=False, allow_blank=True, allow_null=True)


class ModelUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True)
    tags = JsonTextField(kind=dict, example="object", required=False)
    owner = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    log_sample_rate = serializers.FloatField(
        required=False,
        allow_null=True,
        min_value=0.0,
        max_value=1.0,
        help_text="The share of prediction requests logged, 0 to 1 (null: the server's "
        "default, MLPLATFORM_LOG_SAMPLE_RATE).",
    )

    def validate_log_sample_rate(self, value: float | None) -> float | None:
        raw = self.initial_data.get("log_sample_rate")
        if isinstance(raw, bool):
            raise serializers.ValidationError("A number from 0 to 1, or null.")
        return value


class CanarySerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    percent = serializers.FloatField(min_value=0, max_value=100)
    routing_field = serializers.CharField(required=False, allow_blank=True)


class BoundsSerializer(serializers.Serializer):
    max_error_rate = serializers.FloatField(required=False, min_value=0, max_value=1)
    max_p99_ms = serializers.FloatField(required=False, min_value=0)
    window_seconds = serializers.FloatField(required=False, min_value=1)
    min_requests = serializers.IntegerField(required=False, min_value=1)


class AliasOutputSerializer(serializers.ModelSerializer):
    """An alias with its traffic policy (registry/traffic.py)."""

    version = serializers.IntegerField(source="version.version")
    canary = serializers.SerializerMethodField()
    shadows = serializers.SerializerMethodField()
    bounds = serializers.SerializerMethodField()

    class Meta:
        model = ModelAlias
        fields = ["alias", "version", "canary", "shadows", "bounds", "updated_at"]

    @extend_schema_field(CanarySerializer(allow_null=True))
    def get_canary(self, obj: ModelAlias) -> dict[str, Any] | None:
        return alias_policy(obj).to_json()["canary"]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_shadows(self, obj: ModelAlias) -> list[int]:
        return list(alias_policy(obj).shadows)

    @extend_schema_field(BoundsSerializer)
    def get_bounds(self, obj: ModelAlias) -> dict[str, float]:
        return alias_policy(obj).bounds


class ModelOutputSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.name", default=None)
    aliases = serializers.SerializerMethodField()
    latest_version = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = [
            "name",
            "description",
            "owner",
            "tags",
            "log_sample_rate",
            "aliases",
            "latest_version",
            "created_at",
            "updated_at",
            "url",
        ]

    def get_aliases(self, obj: RegisteredModel) -> dict[str, int]:
        return {a.alias: a.version.version for a in obj.aliases.all()}

    def get_latest_version(self, obj: RegisteredModel) -> dict[str, Any] | None:
        latest = obj.versions.order_by("-version").first()
        if latest is None:
            return None
        return {"version": latest.version, "status": latest.status}

    def get_url(self, obj: RegisteredModel) -> str:
        return obj.get_absolute_url()


class VersionInputSerializer(serializers.Serializer):
    artifact = serializers.FileField(allow_empty_file=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    metrics = JsonTextField(kind=dict, example="object", required=False, allow_null=True)
    tags = JsonTextField(kind=dict, example="object", required=False, allow_null=True)
    input_example = JsonTextField(
        kind=list, example="list of records", required=False, allow_null=True
    )


class VersionUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True)
    metrics = JsonTextField(kind=dict, example="object", required=False)
    tags = JsonTextField(kind=dict, example="object", required=False)


class SignatureJsonField(serializers.JSONField):
    """A version's signature, shown in its stored JSON form (registry/types.py)."""

    def to_representation(self, value: Any) -> Any:
        assert isinstance(value, Signature)
        return value.to_json()


class VersionOutputSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    aliases = serializers.SerializerMethodField()
    uploaded_by = serializers.CharField(source="uploaded_by.get_username", default=None)
    job = serializers.IntegerField(source="validation_job_id", default=None)
    artifact_url = serializers.SerializerMethodField()
    signature = SignatureJsonField(read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "model",
            "version",
            "status",
            "status_message",
            "sha256",
            "size_bytes",
            "format",
            "signature",
            "library_versions",
            "engine",
            "graph_sha256",
            "compilation",
            "protections",
            "runner_failures",
            "metrics",
            "tags",
            "description",
            "input_example",
            "aliases",
            "job",
            "created_at",
            "uploaded_by",
            "artifact_url",
        ]

    def get_aliases(self, obj: ModelVersion) -> list[str]:
        return sorted(a.alias for a in obj.aliases.all())

    def get_artifact_url(self, obj: ModelVersion) -> str:
        return f"/api/v1/models/{obj.model.name}/versions/{obj.version}/artifact"


class AliasInputSerializer(serializers.Serializer):
    """The version and, optionally, the traffic policy (registry/traffic.py checks it) and the
    reason for moving past a failed promotion gate (with the override permission)."""

    version = serializers.IntegerField(min_value=1)
    canary = CanarySerializer(required=False, allow_null=True)
    shadows = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)
    bounds = BoundsSerializer(required=False)
    override_reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class AliasChangeOutputSerializer(serializers.ModelSerializer):
    changed_by = serializers.CharField(source="changed_by.get_username", default=None)

    class Meta:
        model = AliasChange
        fields = [
            "alias",
            "from_version",
            "to_version",
            "kind",
            "reason",
            "policy",
            "changed_by",
            "changed_at",
        ]
