"""The batch models' content types move from app label `jobs` to `batch`, keeping their ids, so
what points at them stays attached: permissions (and the groups holding them), audit trail
entries (django-auditlog), grants. Permission codenames are unchanged, so `jobs.add_batchschedule`
is now `batch.add_batchschedule`."""

from django.db import migrations

MODELS = ("batchschedule", "batchjob", "batchchunk")


def _move(apps, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MODELS:
        old = ContentType.objects.filter(app_label=source, model=model).first()
        if old is None:
            continue  # a fresh database: post_migrate creates the batch ones
        # One created under the new label in between (a migrate run that stopped at 0001) holds
        # only what that run's post_migrate made (its default permissions): the old one wins.
        ContentType.objects.filter(app_label=target, model=model).delete()
        old.app_label = target
        old.save(update_fields=["app_label"])


def forwards(apps, schema_editor):
    _move(apps, "jobs", "batch")


def backwards(apps, schema_editor):
    _move(apps, "batch", "jobs")


class Migration(migrations.Migration):
    dependencies = [
        ("batch", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
