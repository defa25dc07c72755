"""Output shapes of the feature store API (inputs are parsed by each view's Input serializer)."""

from typing import Any

from rest_framework import serializers

from features import offline
from features.models import DataSource, Entity, Feature, FeatureGroup, FeatureService


class EntityOutput(serializers.ModelSerializer):
    class Meta:
        model = Entity
        fields = ["name", "join_keys", "description", "created_at"]


class SourceOutput(serializers.ModelSerializer):
    file = serializers.SerializerMethodField()

    class Meta:
        model = DataSource
        fields = ["name", "kind", "file", "path", "description", "created_at"]

    def get_file(self, source: DataSource) -> str | None:
        return source.file.name or None


class FeatureOutput(serializers.ModelSerializer):
    group = serializers.CharField(source="group.name")
    entity = serializers.CharField(source="group.entity.name")
    ref = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Feature
        fields = [
            "ref",
            "name",
            "group",
            "entity",
            "dtype",
            "description",
            "tags",
            "statistics",
            "url",
        ]

    def get_ref(self, feature: Feature) -> str:
        return f"{feature.group.name}:{feature.name}"

    def get_url(self, feature: Feature) -> str:
        return feature.get_absolute_url()


class GroupFeatureOutput(serializers.ModelSerializer):
    class Meta:
        model = Feature
        fields = ["name", "dtype", "description", "tags", "statistics"]


class GroupOutput(serializers.ModelSerializer):
    entity = serializers.CharField(source="entity.name")
    join_keys = serializers.JSONField(source="entity.join_keys")
    owner = serializers.SerializerMethodField()
    source = serializers.SerializerMethodField()  # type: ignore[assignment]
    transformation_sources = serializers.SerializerMethodField()
    features = GroupFeatureOutput(many=True)
    summary = serializers.SerializerMethodField()

    class Meta:
        model = FeatureGroup
        fields = [
            "name",
            "entity",
            "join_keys",
            "description",
            "features",
            "ttl_seconds",
            "availability",
            "naive_timestamps_utc",
            "tags",
            "tasks",
            "owner",
            "source",
            "transformation_sql",
            "transformation_sources",
            "schedule",
            "key_dtypes",
            "materialised_at",
            "summary",
            "created_at",
            "updated_at",
        ]

    def get_owner(self, group: FeatureGroup) -> str | None:
        return group.owner.name if group.owner else None

    def get_source(self, group: FeatureGroup) -> str | None:
        return group.source.name if group.source else None

    def get_transformation_sources(self, group: FeatureGroup) -> list[str]:
        return [s.name for s in group.transformation_sources.all()]

    def get_summary(self, group: FeatureGroup) -> dict[str, Any]:
        return offline.group_summary(group=group)


class ServiceOutput(serializers.ModelSerializer):
    features = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    model_versions = serializers.SerializerMethodField()

    class Meta:
        model = FeatureService
        fields = ["name", "description", "features", "owner", "model_versions", "created_at"]

    def get_features(self, service: FeatureService) -> list[str]:
        return [
            f"{f.group.name}:{f.name}"
            for f in service.features.select_related("group").order_by(
                "group__name", "position", "name"
            )
        ]

    def get_owner(self, service: FeatureService) -> str | None:
        return service.owner.name if service.owner else None

    def get_model_versions(self, service: FeatureService) -> list[dict[str, Any]]:
        return [
            {"model": v.model.name, "version": v.version}
            for v in service.model_versions.select_related("model")
        ]
