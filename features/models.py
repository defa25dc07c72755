from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.urls import reverse


class Entity(models.Model):
    """What features describe (a customer, a card); identified by its join keys."""

    name = models.SlugField(max_length=100, unique=True)
    join_keys = models.JSONField(help_text="Ordered list of key column names.")
    description = models.TextField(blank=True)
    # The team whose members may change it (tenancy/rules.py); none: admin-only.
    owner = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="entities"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "entities"

    def __str__(self) -> str:
        return self.name


class DataSource(models.Model):
    class Kind(models.TextChoices):
        FILE = "file", "Uploaded file"
        STORAGE_PATH = "storage_path", "Path in storage"
        SQL_TABLE = "sql_table", "SQL table"

    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.FILE)
    file = models.FileField(upload_to="feature-sources/", max_length=300, blank=True)
    path = models.CharField(max_length=500, blank=True, help_text="Storage path or SQL table.")
    description = models.TextField(blank=True)
    # The team whose members may change it and build feature groups on it; none: admin-only.
    owner = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="data_sources"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FeatureGroup(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    entity = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="groups")
    description = models.TextField(blank=True)
    source = models.ForeignKey(
        DataSource, null=True, blank=True, on_delete=models.SET_NULL, related_name="groups"
    )
    transformation_sql = models.TextField(blank=True)
    transformation_sources = models.ManyToManyField(
        DataSource, blank=True, related_name="transformed_groups"
    )
    ttl_seconds = models.PositiveBigIntegerField(null=True, blank=True)
    # {"column": "available_at"} | {"daily_at": "02:00"} | {"lag_seconds": 93600}
    # | {} (ingestion time)
    availability = models.JSONField(default=dict, blank=True)
    naive_timestamps_utc = models.BooleanField(
        default=False, help_text="Interpret timestamps without a zone as UTC instead of rejecting."
    )
    # Five-field cron (UTC) on which the transformation runs; kept in sync with a beat task.
    schedule = models.CharField(
        max_length=100, blank=True, help_text="Cron 'minute hour day month weekday' (UTC)."
    )
    # Join key column -> "int64" | "string", fixed by the first ingestion so partitions agree.
    key_dtypes = models.JSONField(default=dict, blank=True)
    # Rows that became available up to this instant are in the online store.
    materialised_at = models.DateTimeField(null=True, blank=True)
    owner = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="feature_groups"
    )
    tags = models.JSONField(default=dict, blank=True)
    tasks = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("features:group-detail", kwargs={"name": self.name})


class Feature(models.Model):
    class Dtype(models.TextChoices):
        INT64 = "int64"
        FLOAT64 = "float64"
        BOOL = "bool"
        STRING = "string"
        DATETIME = "datetime"

    group = models.ForeignKey(FeatureGroup, on_delete=models.CASCADE, related_name="features")
    name = models.SlugField(max_length=100)
    dtype = models.CharField(max_length=20, choices=Dtype.choices)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=dict, blank=True)
    # {"count", "nulls", "min", "max", "mean", "std",
    #  "histogram": {"edges": [...], "counts": [...]}}
    statistics = models.JSONField(default=dict, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["group", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["group", "name"], name="unique_feature_per_group"),
        ]

    def __str__(self) -> str:
        return f"{self.group.name}:{self.name}"

    def get_absolute_url(self) -> str:
        return reverse(
            "features:feature-detail", kwargs={"group": self.group.name, "name": self.name}
        )


class FeatureService(models.Model):
    """A named set of features a model uses; a model version links to one."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    features = models.ManyToManyField(Feature, related_name="services")
    owner = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="feature_services"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OfflinePartition(models.Model):
    """One immutable Parquet file of a group's offline store; appends add partitions."""

    class Origin(models.TextChoices):
        INGESTION = "ingestion"
        TRANSFORMATION = "transformation"

    group = models.ForeignKey(FeatureGroup, on_delete=models.CASCADE, related_name="partitions")
    path = models.CharField(max_length=400, help_text="Name in the default storage.")
    origin = models.CharField(max_length=20, choices=Origin.choices, default=Origin.INGESTION)
    rows = models.BigIntegerField(default=0)
    min_event_timestamp = models.DateTimeField(null=True, blank=True)
    max_event_timestamp = models.DateTimeField(null=True, blank=True)
    max_available_at = models.DateTimeField(null=True, blank=True)
    # Set once a materialisation has read the whole partition (see features/online.py).
    materialised = models.BooleanField(default=False)
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # sha256 of the uploaded file it came from: the same upload is never stored twice.
    upload_sha256 = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "upload_sha256"],
                condition=~models.Q(upload_sha256=""),
                name="unique_partition_upload",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group.name}/{self.path.rsplit('/', 1)[-1]}"


class OnlineValue(models.Model):
    """Latest available feature values of one entity in one group (the DB online store)."""

    group = models.ForeignKey(FeatureGroup, on_delete=models.CASCADE, related_name="online_values")
    entity_key = models.CharField(max_length=500)
    values = models.JSONField(default=dict)
    event_timestamp = models.DateTimeField()
    available_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["group", "entity_key"]
        constraints = [
            models.UniqueConstraint(fields=["group", "entity_key"], name="unique_online_value"),
        ]

    def __str__(self) -> str:
        return f"{self.group.name}[{self.entity_key}]"
