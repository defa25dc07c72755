from django.db import migrations, models

EXPIRY = "jobs: delete expired outputs and what failed or cancelled jobs left"


def create_expiry(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    hourly, _ = IntervalSchedule.objects.get_or_create(every=3600, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=EXPIRY,
        defaults={"task": "jobs.job_outputs_expire", "interval": hourly, "enabled": True},
    )


def delete_expiry(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=EXPIRY).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0006_batchschedule_owner"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="output_expired_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(create_expiry, delete_expiry),
    ]
