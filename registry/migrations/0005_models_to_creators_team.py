from django.db import migrations


def to_creators_team(apps, schema_editor):
    """A registered model without a team goes to its creator's first team, where a creator is
    recorded; the rest stay admin-only (superusers change them, or hand them to a team)."""
    RegisteredModel = apps.get_model("registry", "RegisteredModel")
    for model in RegisteredModel.objects.filter(owner=None).exclude(created_by=None):
        team = model.created_by.groups.order_by("name").first()
        if team is not None:
            RegisteredModel.objects.filter(pk=model.pk).update(owner=team)


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("registry", "0004_version_engine_graph_protections"),
    ]

    operations = [
        migrations.RunPython(to_creators_team, migrations.RunPython.noop),
    ]
