from django.db import migrations

SWEEPER = "batch scoring: re-enqueue chunks whose lease expired"


def create_sweeper(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=SWEEPER,
        defaults={"task": "jobs.batch_sweep", "interval": every_minute, "enabled": True},
    )


def delete_sweeper(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SWEEPER).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0002_batchschedule_batchjob_batchchunk"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_sweeper, delete_sweeper)]
