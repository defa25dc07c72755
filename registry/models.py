import json
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.fields.json import KeyTransform
from django.db.models.query_utils import DeferredAttribute
from django.urls import reverse

from registry.types import Signature, SignatureError


class RegisteredModel(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        Group,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="registered_models",
        help_text="The team whose members may add versions and move aliases.",
    )
    tags = models.JSONField(default=dict, blank=True)
    # The share of its prediction requests logged, for monitoring (None: the default setting).
    log_sample_rate = models.FloatField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("registry:model-detail", kwargs={"name": self.name})


def artifact_path(instance: "ModelVersion", filename: str) -> str:
    # The client's file name is never used: it could traverse paths or collide.
    return f"artifacts/{instance.model_id}/{instance.sha256}.{instance.format}"


def graph_path(instance: "ModelVersion", filename: str) -> str:
    return f"artifacts/{instance.model_id}/{instance.graph_sha256}.onnx"


class _SignatureEncoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, Signature):
            return o.to_json()
        return super().default(o)


class _SignatureAttribute(DeferredAttribute):
    """Converts on assignment too, so `version.signature` is a Signature whatever was given
    (the JSON a factory, a test or the validator's result holds)."""

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = self.field.to_python(value)


class SignatureField(models.JSONField):
    """A `registry.types.Signature` in Python, its JSON form in the column: the one place that
    reads and writes a stored signature. The column is a plain JSON field (and so are the
    migrations' historical models, which see dicts)."""

    descriptor_class = _SignatureAttribute
    # What django-stubs types `version.signature` as.
    _pyi_private_set_type: Signature | dict[str, Any]
    _pyi_private_get_type: Signature

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The encoder serves what encodes the Python value itself (validation, the audit trail).
        kwargs["encoder"] = _SignatureEncoder
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        kwargs.pop("encoder", None)
        return name, "django.db.models.JSONField", args, kwargs

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        data = super().from_db_value(value, expression, connection)
        if data is None or isinstance(expression, KeyTransform):
            return data  # a key of the JSON (`signature__task`), not the signature
        return self.to_python(data)

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, Signature):
            return value
        try:
            return Signature.from_json(value)
        except SignatureError as exc:
            raise ValidationError(str(exc), code="invalid") from exc

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, Signature):
            value = value.to_json()
        return super().get_prep_value(value)

    def value_from_object(self, obj: models.Model) -> Any:
        value = super().value_from_object(obj)  # forms and serialisers see the JSON form
        return value.to_json() if isinstance(value, Signature) else value


class ModelVersion(models.Model):
    class Format(models.TextChoices):
        SKOPS = "skops"
        JOBLIB = "joblib"
        PICKLE = "pickle"

    class Status(models.TextChoices):
        PENDING = "pending"
        READY = "ready"
        REJECTED = "rejected"
        # Served once, then its runners kept crashing or hanging: no longer served.
        QUARANTINED = "quarantined"

    class Engine(models.TextChoices):
        ONNX = "onnx"  # a compiled graph run by onnxruntime in the serving process
        PYTHON = "python"  # the pickle itself, run only by sandboxed model runners

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    artifact = models.FileField(upload_to=artifact_path, max_length=300)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.BigIntegerField(default=0)
    format = models.CharField(max_length=10, choices=Format.choices)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    status_message = models.TextField(blank=True)
    # How a ready version is served; blank for versions validated before the sandbox and
    # compilation walls existed, which are not served until re-validated.
    engine = models.CharField(max_length=10, choices=Engine.choices, blank=True)
    graph = models.FileField(upload_to=graph_path, max_length=300, blank=True)
    graph_sha256 = models.CharField(max_length=64, blank=True)
    # {"inputs": "matrix" | "columns", "outputs": {...}, "max_deviation": float, "tolerance",
    #  "probe_rows": n, "fallback_reason": str}: what compilation did and measured.
    compilation = models.JSONField(default=dict, blank=True)
    # Which isolation the validation ran under: seccomp, Landlock, user, rlimits.
    protections = models.JSONField(default=dict, blank=True)
    runner_failures = models.PositiveIntegerField(default=0)
    # {"sklearn": "1.9.1", "numpy": …, "scipy": …, "python": …, "trained_with_sklearn": …}
    library_versions = models.JSONField(default=dict, blank=True)
    # What the version takes and returns (registry/types.py); {} until it is validated.
    signature = SignatureField(default=dict, blank=True)
    input_example = models.JSONField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True)
    feature_service = models.ForeignKey(
        "features.FeatureService",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_versions",
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The background job that scans and loads the artifact; users watch it on /jobs/.
    validation_job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="unique_model_version"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    def get_absolute_url(self) -> str:
        return reverse(
            "registry:version-detail", kwargs={"name": self.model.name, "version": self.version}
        )


class ModelAlias(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.SlugField(max_length=64)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    # The alias's traffic policy (docs/rollout.md): a share of its requests answered by a canary
    # version, sticky by a routing key; shadow versions scoring copies of its requests off the
    # request path; bounds that remove a canary breaking them.
    canary_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    canary_percent = models.FloatField(default=0.0)
    # A request field (an entity key, say) whose value keeps a caller on one side of the split.
    routing_field = models.CharField(max_length=100, blank=True)
    shadows = models.ManyToManyField(ModelVersion, blank=True, related_name="shadowing")
    # {"max_error_rate": 0.05, "max_p99_ms": 50, "window_seconds": 60, "min_requests": 100}
    bounds = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "alias"]
        constraints = [
            models.UniqueConstraint(fields=["model", "alias"], name="unique_model_alias"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias} → v{self.version.version}"


class AliasChange(models.Model):
    """Audit trail: who moved which alias, when, from which version to which, and why."""

    class Kind(models.TextChoices):
        SET = "set"  # pointed at a version (created or moved)
        OVERRIDE = "override"  # moved past a failed or missing promotion gate, with a reason
        ROLLBACK = "rollback"  # returned to the version it pointed at before
        POLICY = "policy"  # its traffic policy (canary, shadows, bounds) changed
        CANARY_REMOVED = "canary_removed"  # the canary broke the policy's bounds
        DELETE = "delete"

    model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="alias_changes"
    )
    alias = models.SlugField(max_length=64)
    from_version = models.PositiveIntegerField(null=True, blank=True)
    to_version = models.PositiveIntegerField(null=True, blank=True)  # null: alias deleted
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SET)
    reason = models.TextField(blank=True)
    # The traffic policy after the change: {"canary": {...} | None, "shadows": [...], "bounds"}.
    policy = models.JSONField(default=dict, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias}: {self.from_version} → {self.to_version}"
