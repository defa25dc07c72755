"""Writes for the registry: models, versions (upload and validation) and aliases.

Permissions are checked by the entry points (API views, admin, pages) with the team rules of
`tenancy/rules.py`; these services trust their caller, so the management command and the demo can
use them too. One check stays here because every path must make it: a version linked to a feature
service reads that service's feature values at predict time, so its model's team must be allowed
to read them when the link is made.
"""

import hashlib
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import sklearn
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from jobs import services as job_services
from jobs.models import Job
from mlplatform.errors import ApplicationError, ConflictError, NotFoundError
from mlplatform.tasks import enqueue_after_commit
from registry import graphs, scanning, signals, tasks
from registry.models import AliasChange, ModelAlias, ModelVersion, RegisteredModel, artifact_path
from registry.sandbox import SandboxError, sandbox_validate
from registry.traffic import TrafficPolicy
from registry.types import Signature
from tenancy.services import PermissionDeniedError, owner_resolve, team_may_read

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
EXTENSIONS = {
    ".skops": ModelVersion.Format.SKOPS,
    ".joblib": ModelVersion.Format.JOBLIB,
    ".pkl": ModelVersion.Format.PICKLE,
    ".pickle": ModelVersion.Format.PICKLE,
}
MAX_INPUT_EXAMPLE_ROWS = 100
ALIAS_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


# --- models ------------------------------------------------------------------------------


def _check_finite(value: Any, *, field: str) -> None:
    """JSON columns refuse NaN and infinities (PostgreSQL jsonb cannot store them)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ApplicationError(f"{field}: NaN and infinite numbers are not allowed.")
    if isinstance(value, dict):
        for item in value.values():
            _check_finite(item, field=field)
    elif isinstance(value, list):
        for item in value:
            _check_finite(item, field=field)


def _check_tags(tags: Any, *, field: str = "tags") -> dict[str, Any]:
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise ApplicationError(f'{field}: must be a JSON object, like {{"team": "risk"}}.')
    _check_finite(tags, field=field)
    return tags


def model_fields_check(*, tags: Any) -> dict[str, Any]:
    """The rules on a model's editable fields, shared by create, update and the admin form.

    Raises:
        ApplicationError: tags are not a JSON object of finite values.
    """
    return _check_tags(tags)


def model_create(
    *,
    name: str,
    description: str = "",
    tags: dict[str, Any] | None = None,
    owner: Group | str | None = None,
    user: Any = None,
) -> RegisteredModel:
    """Register a new model name.

    Raises:
        ConflictError: the name is taken.
        ApplicationError: the name is not a slug, or tags/owner are invalid.
    """
    model = RegisteredModel(
        name=name,
        description=description or "",
        tags=_check_tags(tags),
        owner=owner_resolve(owner),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    if RegisteredModel.objects.filter(name=name).exists():
        raise ConflictError(f"name: a model named {name!r} already exists.")
    try:
        model.full_clean()
    except ValidationError as exc:
        if "name" in exc.message_dict and RegisteredModel.objects.filter(name=name).exists():
            raise ConflictError(f"name: a model named {name!r} already exists.") from exc
        raise
    try:
        with transaction.atomic():
            model.save()
    except IntegrityError as exc:
        raise ConflictError(f"name: a model named {name!r} already exists.") from exc
    return model


def model_update(
    *,
    model: RegisteredModel,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
    owner: Group | str | None = None,
    clear_owner: bool = False,
    log_sample_rate: float | None = None,
    reset_log_sample_rate: bool = False,
) -> RegisteredModel:
    """Change a model's description, tags, owner or log sample rate (its name is its address
    and never changes). The serving processes see a new rate within their route cache's TTL.

    Raises:
        ApplicationError: the sample rate is not a number from 0 to 1, or tags/owner are invalid.
    """
    if log_sample_rate is not None:
        valid = isinstance(log_sample_rate, int | float) and not isinstance(log_sample_rate, bool)
        if not (valid and math.isfinite(log_sample_rate) and 0.0 <= log_sample_rate <= 1.0):
            raise ApplicationError(
                "log_sample_rate: a number from 0 to 1, or null.",
                extra={"field": "log_sample_rate"},
            )
        model.log_sample_rate = float(log_sample_rate)
    elif reset_log_sample_rate:
        model.log_sample_rate = None
    if description is not None:
        model.description = description
    if tags is not None:
        model.tags = _check_tags(tags)
    if clear_owner:
        model.owner = None
    elif owner is not None:
        model.owner = owner_resolve(owner)
    model.full_clean()
    model.save()
    return model


def _version_files(versions: Any) -> list[tuple[Any, str]]:
    """(storage, name) of every artifact and compiled graph of `versions`."""
    files: list[tuple[Any, str]] = []
    for field_name in ("artifact", "graph"):
        field: Any = ModelVersion._meta.get_field(field_name)
        files += [(field.storage, getattr(v, field_name).name) for v in versions]
    return [(storage, name) for storage, name in files if name]


def _files_remove_on_commit(files: list[tuple[Any, str]]) -> None:
    def remove() -> None:
        for storage, name in files:
            storage.delete(name)

    transaction.on_commit(remove)


def model_delete(*, model: RegisteredModel) -> None:
    """Delete a model, its versions, and (after commit) their artifacts and compiled graphs."""
    with transaction.atomic():
        files = _version_files(model.versions.all())
        model.delete()
        _files_remove_on_commit(files)


def version_delete(*, version: ModelVersion, user: Any = None) -> None:
    """Delete a version, recording each alias that pointed at it as removed (as `alias_delete`
    does), and (after commit) its artifact and compiled graph."""
    changer = user if getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        RegisteredModel.objects.select_for_update().filter(pk=version.model_id).first()
        for existing in ModelAlias.objects.filter(version=version).order_by("alias"):
            existing.delete()
            AliasChange.objects.create(
                model_id=version.model_id,
                alias=existing.alias,
                from_version=version.version,
                to_version=None,
                changed_by=changer,
            )
        files = _version_files([version])
        version.delete()
        _files_remove_on_commit(files)


# --- upload ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inspected:
    format: str
    sha256: str
    size: int


def artifact_inspect(*, file: IO[bytes], filename: str = "") -> Inspected:
    """Size cap, magic bytes and streaming sha256 of an upload; nothing is deserialised.

    Raises:
        ApplicationError: empty, too large, or not a skops/joblib/pickle container.
    """
    from django.conf import settings

    limit = int(settings.MLPLATFORM_MAX_ARTIFACT_BYTES)
    digest = hashlib.sha256()
    size = 0
    head = b""
    file.seek(0)
    for block in iter(lambda: file.read(CHUNK), b""):
        if len(head) < 8:
            head += block[: 8 - len(head)]
        size += len(block)
        if size > limit:
            raise ApplicationError(
                f"artifact: the file is larger than {limit} bytes (MLPLATFORM_MAX_ARTIFACT_BYTES)."
            )
        digest.update(block)
    file.seek(0)
    if size == 0:
        raise ApplicationError("artifact: the file is empty.")
    container = scanning.sniff(head)
    suffix = Path(filename or "").suffix.lower()
    fmt = EXTENSIONS.get(suffix)
    if container is None:
        reason = scanning.container_problem(head).removeprefix("Refused: ")
        raise ApplicationError(f"artifact: {reason}")
    if fmt is None:
        if suffix:
            raise ApplicationError(
                f"artifact: unsupported file extension {suffix!r}; "
                "use .skops, .joblib, .pkl or .pickle."
            )
        fmt = ModelVersion.Format.SKOPS if container == "zip" else ModelVersion.Format.JOBLIB
    if fmt == ModelVersion.Format.SKOPS and container != "zip":
        raise ApplicationError("artifact: a .skops file must be a zip archive made by skops.")
    if fmt != ModelVersion.Format.SKOPS and container == "zip":
        raise ApplicationError("artifact: a zip archive must be uploaded as .skops.")
    if fmt == ModelVersion.Format.PICKLE and container != "pickle":
        raise ApplicationError(
            f"artifact: a {container}-compressed file must be uploaded as .joblib."
        )
    return Inspected(format=str(fmt), sha256=digest.hexdigest(), size=size)


def _check_metrics(metrics: Any) -> dict[str, Any]:
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise ApplicationError('metrics: must be a JSON object, like {"accuracy": 0.93}.')
    for key, value in metrics.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ApplicationError(f"metrics: {key!r} must be a finite number.")
    return metrics


def _check_input_example(example: Any) -> list[dict[str, Any]] | None:
    if example is None or example == []:
        return None
    if isinstance(example, dict):
        example = [example]
    if not isinstance(example, list) or not all(isinstance(row, dict) for row in example):
        raise ApplicationError(
            'input_example: must be a JSON list of records, like [{"age": 41, "plan": "pro"}].'
        )
    if len(example) > MAX_INPUT_EXAMPLE_ROWS:
        raise ApplicationError(f"input_example: at most {MAX_INPUT_EXAMPLE_ROWS} rows.")
    _check_finite(example, field="input_example")
    return example


def version_upload(
    *,
    model: RegisteredModel,
    file: IO[bytes],
    user: Any,
    description: str = "",
    metrics: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    input_example: list[dict[str, Any]] | None = None,
    feature_service: Any = None,
) -> ModelVersion:
    """Store an artifact as the model's next version (pending) and queue its validation.

    Raises:
        ApplicationError: the file or a metadata field is invalid (nothing is stored).
        PermissionDeniedError: the model's team may not read the feature service's values.
    """
    if feature_service is not None:
        feature_service_link_check(model=model, feature_service=feature_service)
    filename = getattr(file, "name", "") or ""
    metrics = _check_metrics(metrics)
    tags = _check_tags(tags)
    example = _check_input_example(input_example)
    inspected = artifact_inspect(file=file, filename=filename)
    field = ModelVersion._meta.get_field("artifact")
    storage = field.storage  # type: ignore[attr-defined]
    placeholder = ModelVersion(model=model, sha256=inspected.sha256, format=inspected.format)
    stored_name = storage.save(artifact_path(placeholder, filename), file)
    uploader = user if getattr(user, "is_authenticated", False) else None
    try:
        for attempt in range(5):
            try:
                version = _version_insert(
                    model=model,
                    stored_name=stored_name,
                    inspected=inspected,
                    uploader=uploader,
                    description=description or "",
                    metrics=metrics,
                    tags=tags,
                    example=example,
                    feature_service=feature_service,
                )
                break
            except IntegrityError:
                # The row lock makes this rare; a unique-constraint race is retried, never gapped.
                if attempt == 4:
                    raise
    except BaseException:
        storage.delete(stored_name)
        raise
    return version


def feature_service_link_check(*, model: RegisteredModel, feature_service: Any) -> None:
    """A version linked to a feature service reads its groups' online values at every
    prediction, with no check on that hot path: the model's team must own each group or hold a
    read grant on it now.

    Raises:
        PermissionDeniedError: a group belongs to another team that granted no read.
    """
    groups = {feature.group for feature in feature_service.features.select_related("group")}
    for group in sorted(groups, key=lambda g: g.name):
        if not team_may_read(team=model.owner, obj=group):
            owner = group.owner.name if group.owner else "no team (admin-only)"
            raise PermissionDeniedError(
                f"feature_service: the feature group {group.name} belongs to {owner}; the team "
                f"of {model.name} needs a read grant on it before a version may use "
                f"{feature_service.name}."
            )


def _version_insert(
    *,
    model: RegisteredModel,
    stored_name: str,
    inspected: Inspected,
    uploader: Any,
    description: str,
    metrics: dict[str, Any],
    tags: dict[str, Any],
    example: list[dict[str, Any]] | None,
    feature_service: Any,
) -> ModelVersion:
    with transaction.atomic():
        # Serialises concurrent uploads of one model: numbers come out 1, 2, 3… with no gap.
        RegisteredModel.objects.select_for_update().filter(pk=model.pk).first()
        last = model.versions.aggregate(last=Max("version"))["last"] or 0
        number = last + 1
        job = job_services.job_create(
            owner=model.owner,
            kind=Job.Kind.MODEL_VALIDATION,
            description=f"Validate {model.name} v{number}",
            submitted_by=uploader,
            total=3,
            unit="steps",
        )
        version = ModelVersion.objects.create(
            model=model,
            version=number,
            artifact=stored_name,
            sha256=inspected.sha256,
            size_bytes=inspected.size,
            format=inspected.format,
            status=ModelVersion.Status.PENDING,
            description=description,
            metrics=metrics,
            tags=tags,
            input_example=example,
            feature_service=feature_service,
            uploaded_by=uploader,
            validation_job=job,
        )
        job.params = {"model": model.name, "version": number, "version_id": version.pk}
        job.save(update_fields=["params", "updated_at"])
        # A broker hiccup must not undo an accepted upload (the send is robust): the version
        # stays pending and `version_requeue_stale` (a periodic task) sends it again.
        enqueue_after_commit(tasks.version_validate_task, version.pk)
    return version


def version_update(
    *,
    version: ModelVersion,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> ModelVersion:
    """Change a version's metadata; its artifact never changes."""
    if description is not None:
        version.description = description
    if tags is not None:
        version.tags = _check_tags(tags)
    if metrics is not None:
        version.metrics = _check_metrics(metrics)
    version.save(update_fields=["description", "tags", "metrics", "updated_at"])
    return version


# --- validation ------------------------------------------------------------------------------


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def _finish(
    version: ModelVersion, *, status: str, message: str, report_job: bool = True, **fields: Any
) -> ModelVersion:
    version.status = status
    version.status_message = message[:5000]
    for key, value in fields.items():
        setattr(version, key, value)
    version.save(
        update_fields=["status", "status_message", "updated_at", *fields.keys()],
    )
    if version.validation_job_id and report_job:
        if status == ModelVersion.Status.READY:
            job_services.job_succeed(
                job_id=version.validation_job_id, result={"status": status, "message": message}
            )
        else:
            job_services.job_fail(job_id=version.validation_job_id, error=message)
    logger.info("validated %s: %s %s", version, status, message)
    if status == ModelVersion.Status.READY:
        transaction.on_commit(
            lambda: signals.version_ready.send(sender=ModelVersion, version=version)
        )
    return version


def version_requeue_stale(*, queued_for: float = 300, running_for: float | None = None) -> int:
    """Send validation again for pending versions whose message was lost or whose worker died.

    A version counts as stale when its job is still queued `queued_for` seconds after upload,
    or has been running without progress past the task's hard time limit. Validation is
    idempotent, so a duplicate message only costs a second look. Returns how many were sent.
    """
    from datetime import timedelta

    from django.conf import settings
    from django.db.models import Q
    from django.utils import timezone

    if running_for is None:
        running_for = float(settings.MLPLATFORM_SANDBOX_TIMEOUT_SECONDS) + 3600
    now = timezone.now()
    stale = ModelVersion.objects.filter(status=ModelVersion.Status.PENDING).filter(
        Q(
            validation_job__status=Job.Status.QUEUED,
            created_at__lt=now - timedelta(seconds=queued_for),
        )
        | Q(
            validation_job__status=Job.Status.RUNNING,
            validation_job__updated_at__lt=now - timedelta(seconds=running_for),
        )
        | Q(validation_job__isnull=True, created_at__lt=now - timedelta(seconds=queued_for))
    )
    ids = list(stale.values_list("pk", flat=True))
    for version_id in ids:
        tasks.version_validate_task.delay(version_id)
    if ids:
        logger.warning("re-sent validation for %d stale pending versions: %s", len(ids), ids)
    return len(ids)


def version_reject(*, version_id: int, message: str) -> ModelVersion | None:
    """Mark a pending version rejected (used when validation itself breaks)."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None or version.status != ModelVersion.Status.PENDING:
        return version
    return _finish(version, status=ModelVersion.Status.REJECTED, message=message)


def _scan_limits() -> dict[str, Any]:
    from django.conf import settings

    return {
        "max_opcodes": int(settings.MLPLATFORM_SCAN_MAX_OPCODES),
        "max_seconds": float(settings.MLPLATFORM_SCAN_MAX_SECONDS),
        "max_expanded_bytes": int(settings.MLPLATFORM_MAX_EXPANDED_BYTES),
    }


def _graph_store(version: ModelVersion, graph: bytes) -> None:
    from django.core.files.base import ContentFile

    version.graph_sha256 = hashlib.sha256(graph).hexdigest()
    version.graph.save(f"{version.graph_sha256}.onnx", ContentFile(graph), save=False)


def version_validate(*, version_id: int, force: bool = False) -> ModelVersion:
    """Scan, load, check, smoke-predict and compile a pending version, all in the sandbox.

    Idempotent: a version that is already ready or rejected is returned unchanged, unless
    `force` (re-validation of versions accepted before the current walls).
    """
    from django.conf import settings

    version = ModelVersion.objects.select_related("model").get(pk=version_id)
    if version.status != ModelVersion.Status.PENDING and not force:
        return version
    job_id = version.validation_job_id
    if job_id and not force and not job_services.job_start(job_id=job_id, total=3):
        return _finish(
            version, status=ModelVersion.Status.REJECTED, message="Validation was cancelled."
        )
    try:
        outcome = sandbox_validate(
            open_artifact=lambda: version.artifact.open("rb"),
            sha256=version.sha256,
            fmt=version.format,
            input_example=version.input_example,
            timeout=float(settings.MLPLATFORM_SANDBOX_TIMEOUT_SECONDS),
            memory_mb=int(settings.MLPLATFORM_SANDBOX_MEMORY_MB),
            scan_limits=_scan_limits(),
            tolerance=float(settings.MLPLATFORM_ONNX_TOLERANCE),
            allow_unsafe=bool(settings.MLPLATFORM_UNSAFE_SANDBOX),
        )
    except SandboxError as exc:
        return _finish(
            version, status=ModelVersion.Status.REJECTED, message=str(exc), report_job=not force
        )
    if job_id and not force:
        job_services.job_advance(job_id=job_id, done=2)
    result = outcome.report
    protections = outcome.protections
    if not result.get("ok"):
        return _finish(
            version,
            status=ModelVersion.Status.REJECTED,
            message=(
                str(result.get("error"))
                if result.get("stage") in ("scan", "trees")
                else f"The model could not be loaded and used: {result.get('error')}"
            ),
            protections=protections,
            engine="",
            report_job=not force,
        )
    versions = dict(result.get("library_versions") or {})
    server = sklearn.__version__
    trained = result.get("trained_with_sklearn") or server
    versions["trained_with_sklearn"] = trained
    if _major_minor(trained) != _major_minor(server):
        return _finish(
            version,
            status=ModelVersion.Status.REJECTED,
            message=(
                f"The model was saved with scikit-learn {trained}, but this server runs "
                f"scikit-learn {server}; re-save it with scikit-learn "
                f"{'.'.join(_major_minor(server))}.x."
            ),
            library_versions=versions,
            protections=protections,
            engine="",
            report_job=not force,
        )
    compilation = dict(result.get("compilation") or {})
    engine = ModelVersion.Engine.PYTHON
    if result.get("engine") == "onnx":
        try:
            compilation["graph"] = graphs.graph_verify(outcome.graph)
        except graphs.GraphError as exc:
            compilation = {"fallback_reason": f"the compiled graph was refused: {exc}"}
        else:
            _graph_store(version, outcome.graph)
            engine = ModelVersion.Engine.ONNX
    message = "Validated."
    if trained != server:
        message = (
            f"Validated, with a warning: saved with scikit-learn {trained}, served with {server} "
            "(same major.minor)."
        )
    signature = Signature.from_json(result["signature"]).with_trusted_types(
        result.get("trusted_types") or []
    )
    return _finish(
        version,
        status=ModelVersion.Status.READY,
        message=message,
        signature=signature,
        library_versions=versions,
        protections=protections,
        engine=engine,
        compilation=compilation,
        graph=version.graph,
        graph_sha256=version.graph_sha256,
        runner_failures=0,
        report_job=not force,
    )


def version_revalidate_all(*, stdout: Any = None) -> dict[str, int]:
    """Put every ready version that was accepted before the current walls (no engine recorded)
    through them again: it is compiled or runner-served, or rejected with the reason. Returns
    counts per outcome."""
    counts: dict[str, int] = {}
    stale = ModelVersion.objects.filter(status=ModelVersion.Status.READY, engine="")
    for version_id in stale.values_list("pk", flat=True):
        version = version_validate(version_id=version_id, force=True)
        outcome = version.engine or version.status
        counts[outcome] = counts.get(outcome, 0) + 1
        if stdout is not None:
            stdout.write(f"{version}: {version.status} ({outcome}) {version.status_message}\n")
    return counts


def version_runner_failed(*, version_id: int, reason: str) -> ModelVersion | None:
    """Count a runner crash or timeout against a version; past
    MLPLATFORM_RUNNER_MAX_FAILURES it is quarantined (no longer served), with the reason."""
    from django.conf import settings
    from django.db.models import F

    limit = max(1, int(settings.MLPLATFORM_RUNNER_MAX_FAILURES))
    with transaction.atomic():
        ModelVersion.objects.filter(pk=version_id).update(runner_failures=F("runner_failures") + 1)
        version = ModelVersion.objects.select_for_update().filter(pk=version_id).first()
        if version is None:
            return None
        if version.status == ModelVersion.Status.READY and version.runner_failures >= limit:
            version.status = ModelVersion.Status.QUARANTINED
            version.status_message = (
                f"Quarantined after {version.runner_failures} runner failures; the last: {reason}"
            )[:5000]
            version.save(update_fields=["status", "status_message", "updated_at"])
            logger.warning("quarantined %s: %s", version, reason)
    return version


# --- aliases ------------------------------------------------------------------------------


def alias_check(*, model: RegisteredModel, alias: str, version_number: int) -> ModelVersion:
    """The version `alias` may point at: a ready one of `model`.

    Raises:
        ApplicationError: bad alias name. NotFoundError: no such version.
        ConflictError: the version is not ready.
    """
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise ApplicationError(
            "alias: use lowercase letters, digits, '-' and '_' (at most 64), e.g. production."
        )
    version = model.versions.filter(version=version_number).first()
    if version is None:
        raise NotFoundError(f"version: {model.name} has no version {version_number}.")
    if version.status != ModelVersion.Status.READY:
        raise ConflictError(
            f"version: {model.name} v{version_number} is {version.status}; "
            "only ready versions may take an alias."
        )
    return version


def _policy_versions(
    model: RegisteredModel, primary: ModelVersion, policy: TrafficPolicy
) -> tuple[ModelVersion | None, list[ModelVersion]]:
    """The canary and shadow versions a policy names: ready versions of `model`, none of them
    the alias's own version or named twice."""
    canary = None
    if policy.canary_version is not None:
        if policy.canary_version == primary.version:
            raise ApplicationError(
                "canary.version: the canary must differ from the alias's version.",
                extra={"field": "canary.version"},
            )
        canary = _ready_version(model, policy.canary_version, field="canary.version")
    shadows = []
    for number in policy.shadows:
        if number == primary.version or number == policy.canary_version:
            raise ApplicationError(
                f"shadows: v{number} already answers this alias's requests; a shadow is "
                "another version.",
                extra={"field": "shadows"},
            )
        shadows.append(_ready_version(model, number, field="shadows"))
    return canary, shadows


def _ready_version(model: RegisteredModel, number: int, *, field: str) -> ModelVersion:
    version = model.versions.filter(version=number).first()
    if version is None:
        raise NotFoundError(
            f"{field}: {model.name} has no version {number}.", extra={"field": field}
        )
    if version.status != ModelVersion.Status.READY:
        raise ConflictError(
            f"{field}: {model.name} v{number} is {version.status}; only ready versions serve.",
            extra={"field": field},
        )
    return version


def alias_policy(link: ModelAlias) -> TrafficPolicy:
    """The traffic policy an alias has now."""
    canary = link.canary_version
    return TrafficPolicy(
        canary_version=canary.version if canary is not None else None,
        canary_percent=link.canary_percent if canary is not None else 0.0,
        routing_field=link.routing_field if canary is not None else "",
        shadows=tuple(sorted(shadow.version for shadow in link.shadows.all())),
        bounds=dict(link.bounds or {}) if canary is not None else {},
    )


def _moving(
    *,
    model: RegisteredModel,
    alias: str,
    version: ModelVersion,
    previous: ModelVersion | None,
    user: Any,
    reason: str,
    kind: str,
) -> str:
    """Asks the layers above (the promotion gate) whether the alias may move; returns the audit
    kind (an override when a receiver let it through only because of the reason)."""
    answers = signals.alias_moving.send(
        sender=ModelAlias,
        model=model,
        alias=alias,
        version=version,
        previous=previous,
        user=user,
        reason=reason,
        kind=kind,
    )
    if any(isinstance(answer, dict) and answer.get("override") for _, answer in answers):
        return AliasChange.Kind.OVERRIDE
    return kind


def alias_set(
    *,
    model: RegisteredModel,
    alias: str,
    version_number: int,
    user: Any,
    policy: TrafficPolicy | None = None,
    reason: str = "",
) -> ModelAlias:
    """Point `alias` at a ready version (creating or moving it) and record the change.

    `policy` replaces the alias's traffic policy; without one the policy stays, less a canary
    or shadow that is the alias's new version. A move to another version first passes the
    receivers of `signals.alias_moving` (the promotion gate); `reason` is an override's reason.

    Raises:
        ApplicationError: bad alias name or policy. NotFoundError: no such version.
        ConflictError: a version is not ready, or the gate refused the move.
    """
    version = alias_check(model=model, alias=alias, version_number=version_number)
    canary, shadows = _policy_versions(model, version, policy) if policy is not None else (None, [])
    changer = user if getattr(user, "is_authenticated", False) else None
    reason = (reason or "").strip()[:2000]
    existing = ModelAlias.objects.filter(model=model, alias=alias).select_related("version").first()
    kind: str = AliasChange.Kind.SET
    if existing is None or existing.version_id != version.pk:
        kind = _moving(
            model=model,
            alias=alias,
            version=version,
            previous=existing.version if existing else None,
            user=user,
            reason=reason,
            kind=AliasChange.Kind.SET,
        )
    with transaction.atomic():
        RegisteredModel.objects.select_for_update().filter(pk=model.pk).first()
        current = ModelAlias.objects.filter(model=model, alias=alias).select_related("version")
        existing = current.first()
        previous = existing.version.version if existing else None
        before = alias_policy(existing) if existing else TrafficPolicy()
        if existing is None:
            existing = ModelAlias.objects.create(model=model, alias=alias, version=version)
        elif existing.version_id != version.pk:
            existing.version = version
            existing.save(update_fields=["version", "updated_at"])
        if policy is not None:
            existing.canary_version = canary
            existing.canary_percent = policy.canary_percent
            existing.routing_field = policy.routing_field
            existing.bounds = policy.bounds
            existing.save(
                update_fields=[
                    "canary_version",
                    "canary_percent",
                    "routing_field",
                    "bounds",
                    "updated_at",
                ]
            )
            existing.shadows.set(shadows)
        else:  # the new version is no longer its own canary or shadow
            if existing.canary_version_id == version.pk:
                existing.canary_version = None
                existing.canary_percent = 0.0
                existing.bounds = {}
                existing.save(
                    update_fields=["canary_version", "canary_percent", "bounds", "updated_at"]
                )
            existing.shadows.remove(version)
        after = alias_policy(existing)
        if previous == version.version and after == before:
            return existing
        AliasChange.objects.create(
            model=model,
            alias=alias,
            from_version=previous,
            to_version=version.version,
            changed_by=changer,
            kind=kind if previous != version.version else AliasChange.Kind.POLICY,
            reason=reason,
            policy=after.to_json(),
        )
    return existing


def alias_rollback(*, model: RegisteredModel, alias: str, user: Any) -> ModelAlias:
    """Return `alias` to the version it pointed at before its last move (from the audit trail),
    ending any canary. Not gated: the version served before.

    Raises:
        NotFoundError: no such alias. ConflictError: nothing to return to, or that version is no
        longer ready.
    """
    link = ModelAlias.objects.filter(model=model, alias=alias).select_related("version").first()
    if link is None:
        raise NotFoundError(f"alias: {model.name} has no alias {alias!r}.")
    last_move = (
        AliasChange.objects.filter(model=model, alias=alias, to_version=link.version.version)
        .exclude(from_version=None)
        .exclude(from_version=link.version.version)
        .order_by("-changed_at", "-id")
        .first()
    )
    if last_move is None or last_move.from_version is None:
        raise ConflictError(
            f"alias: {model.name}@{alias} has no earlier version to return to.",
            extra={"field": "alias"},
        )
    target = _ready_version(model, last_move.from_version, field="version")
    kind = _moving(
        model=model,
        alias=alias,
        version=target,
        previous=link.version,
        user=user,
        reason="",
        kind=AliasChange.Kind.ROLLBACK,
    )
    changer = user if getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        RegisteredModel.objects.select_for_update().filter(pk=model.pk).first()
        link = ModelAlias.objects.select_related("version").get(pk=link.pk)
        previous = link.version.version
        link.version = target
        link.canary_version = None
        link.canary_percent = 0.0
        link.bounds = {}
        link.save(
            update_fields=["version", "canary_version", "canary_percent", "bounds", "updated_at"]
        )
        link.shadows.remove(target)
        AliasChange.objects.create(
            model=model,
            alias=alias,
            from_version=previous,
            to_version=target.version,
            changed_by=changer,
            kind=kind,
            reason=f"returned to v{target.version}",
            policy=alias_policy(link).to_json(),
        )
    return link


def alias_canary_remove(*, alias_id: int, canary_version_id: int, reason: str) -> bool:
    """Take a canary out of its alias's policy (it broke the policy's bounds) and record why.
    Returns False when the alias no longer has that canary (another process removed it)."""
    with transaction.atomic():
        link = (
            ModelAlias.objects.select_for_update()
            .select_related("model", "version")
            .filter(pk=alias_id, canary_version_id=canary_version_id)
            .first()
        )
        if link is None:
            return False
        canary_number = (
            ModelVersion.objects.filter(pk=canary_version_id)
            .values_list("version", flat=True)
            .first()
        )
        link.canary_version = None
        link.canary_percent = 0.0
        link.bounds = {}
        link.save(update_fields=["canary_version", "canary_percent", "bounds", "updated_at"])
        AliasChange.objects.create(
            model=link.model,
            alias=link.alias,
            from_version=link.version.version,
            to_version=link.version.version,
            changed_by=None,
            kind=AliasChange.Kind.CANARY_REMOVED,
            reason=f"canary v{canary_number} removed: {reason}"[:2000],
            policy=alias_policy(link).to_json(),
        )
    logger.warning("%s@%s: canary removed: %s", link.model.name, link.alias, reason)
    return True


def alias_delete(*, model: RegisteredModel, alias: str, user: Any) -> None:
    """Remove an alias and record it. Raises NotFoundError if the model has no such alias."""
    changer = user if getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        existing = (
            ModelAlias.objects.select_for_update()
            .select_related("version")
            .filter(model=model, alias=alias)
            .first()
        )
        if existing is None:
            raise NotFoundError(f"alias: {model.name} has no alias {alias!r}.")
        previous = existing.version.version
        existing.delete()
        AliasChange.objects.create(
            model=model,
            alias=alias,
            from_version=previous,
            to_version=None,
            changed_by=changer,
            kind=AliasChange.Kind.DELETE,
        )
