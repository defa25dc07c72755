import django.db.models.deletion
from django.db import migrations, models


def services_to_creators_team(apps, schema_editor):
    """A feature service without a team goes to its creator's first team, where one is recorded.
    Entities, sources and groups record no creator: those without a team stay admin-only."""
    FeatureService = apps.get_model("features", "FeatureService")
    for service in FeatureService.objects.filter(owner=None).exclude(created_by=None):
        team = service.created_by.groups.order_by("name").first()
        if team is not None:
            FeatureService.objects.filter(pk=service.pk).update(owner=team)


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("features", "0002_featuregroup_key_dtypes_featuregroup_materialised_at_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="datasource",
            name="owner",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="data_sources", to="auth.group"),
        ),
        migrations.AddField(
            model_name="entity",
            name="owner",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="entities", to="auth.group"),
        ),
        migrations.RunPython(services_to_creators_team, migrations.RunPython.noop),
    ]
