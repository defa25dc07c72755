from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("features", "0003_owners"),
    ]

    operations = [
        migrations.AddField(
            model_name="offlinepartition",
            name="upload_sha256",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddConstraint(
            model_name="offlinepartition",
            constraint=models.UniqueConstraint(
                condition=models.Q(("upload_sha256", ""), _negated=True),
                fields=("group", "upload_sha256"),
                name="unique_partition_upload",
            ),
        ),
    ]
