import django.db.models.deletion
from django.db import migrations, models


def to_creators_team(apps, schema_editor):
    """Schedules and jobs without a team go to their creator's (submitter's) first team, where
    one is recorded; the rest stay admin-only."""
    BatchSchedule = apps.get_model("jobs", "BatchSchedule")
    Job = apps.get_model("jobs", "Job")
    for model, creator in ((BatchSchedule, "created_by"), (Job, "submitted_by")):
        for row in model.objects.filter(owner=None).exclude(**{creator: None}):
            team = getattr(row, creator).groups.order_by("name").first()
            if team is not None:
                model.objects.filter(pk=row.pk).update(owner=team)


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("jobs", "0005_job_owner"),
    ]

    operations = [
        migrations.AddField(
            model_name="batchschedule",
            name="owner",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="auth.group"),
        ),
        migrations.RunPython(to_creators_team, migrations.RunPython.noop),
    ]
