from django.db import migrations

RETENTION = "serving: delete prediction log partitions and rows past their retention"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    # Twenty past each hour: partitions are hourly, so one expires every hour.
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute="20",
        hour="*",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    PeriodicTask.objects.get_or_create(
        name=RETENTION,
        defaults={
            "task": "serving.tasks.prediction_log_expire",
            "crontab": schedule,
            "enabled": True,
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=RETENTION).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("serving", "0004_rejection_minutes"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
