"""The batch models moved from the jobs app to the batch app without touching their tables: a
database at the old head keeps its schedules and jobs, and their content type (with what points
at it: permissions, audit trail entries) becomes batch's."""

from typing import Any

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from batch.models import BatchJob, BatchSchedule
from jobs.models import Job

OLD_JOBS = ("jobs", "0007_job_output_retention")


def _migrate(targets: list[tuple[str, str | None]]) -> Any:
    """Migrate the test database to `targets`; returns the apps of the state reached."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    ContentType.objects.clear_cache()
    reached = [(app, name) for app, name in targets if name is not None]
    return executor.loader.project_state(reached).apps


def _leaves() -> list[tuple[str, str | None]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


# Apps newer than the move, whose migrations need jobs' later ones: absent at the old head.
LATER_APPS = ("batch", "rollout", "monitoring")


def _old_head() -> list[tuple[str, str | None]]:
    """Every app at its newest migration, but jobs before the move and none of the apps that
    came after it."""
    others = [leaf for leaf in _leaves() if leaf[0] not in ("jobs", *LATER_APPS)]
    return [*others, OLD_JOBS, *((app, None) for app in LATER_APPS)]


@pytest.mark.django_db(transaction=True)
def test_a_fresh_database_has_the_batch_models_under_the_batch_label() -> None:
    content_type = ContentType.objects.get_for_model(BatchSchedule)

    assert content_type.app_label == "batch"
    assert not ContentType.objects.filter(app_label="jobs", model="batchschedule").exists()
    assert Permission.objects.filter(
        content_type=content_type, codename="add_batchschedule"
    ).exists()


@pytest.mark.django_db(transaction=True)
def test_rows_and_content_types_survive_the_move_from_jobs_to_batch(
    django_user_model: Any,
) -> None:
    # Given a database at the old head (batch models in the jobs app) holding a schedule and a
    # batch job, a permission on schedules held by a user, and a schedule's audit trail entry
    old = _migrate(_old_head())
    try:
        old_type = old.get_model("contenttypes", "ContentType").objects.get(
            app_label="jobs", model="batchschedule"
        )
        model = old.get_model("registry", "RegisteredModel").objects.create(name="churn")
        version = old.get_model("registry", "ModelVersion").objects.create(
            model=model, version=1, artifact="a.skops", sha256="0" * 64, size_bytes=1
        )
        schedule = old.get_model("jobs", "BatchSchedule").objects.create(
            name="nightly", model=model, folder="batch-inputs/"
        )
        job = old.get_model("jobs", "Job").objects.create(kind="batch_scoring")
        old.get_model("jobs", "BatchJob").objects.create(
            job=job,
            version=version,
            input_format="csv",
            output_format="csv",
            chunk_rows=10,
            lease_seconds=60,
            max_attempts=3,
            schedule=schedule,
        )
        permission = Permission.objects.get(
            content_type_id=old_type.pk, codename="add_batchschedule"
        )
        user = django_user_model.objects.create_user("ops")
        user.user_permissions.add(permission)
        LogEntry.objects.create(
            content_type_id=old_type.pk,
            object_pk=str(schedule.pk),
            object_id=schedule.pk,
            object_repr="nightly",
            action=LogEntry.Action.CREATE,
        )
    finally:
        # When the database is migrated forward
        _migrate(_leaves())

    # Then the rows are the batch app's, in the same tables
    moved = BatchSchedule.objects.get(pk=schedule.pk)
    assert moved.name == "nightly"
    assert BatchJob.objects.get(pk=job.pk).schedule == moved
    assert Job.objects.get(pk=job.pk).batch.version_id == version.pk
    # And the content type kept its id under the new label, with what points at it
    content_type = ContentType.objects.get_for_model(BatchSchedule)
    assert content_type.pk == old_type.pk
    assert content_type.app_label == "batch"
    user = django_user_model.objects.get(pk=user.pk)
    assert user.has_perm("batch.add_batchschedule")
    assert not user.has_perm("jobs.add_batchschedule")
    trail = LogEntry.objects.get_for_object(moved)
    assert list(trail.values_list("object_repr", flat=True)) == ["nightly"]
