from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0007_job_output_retention'),
    ]

    # The batch models moved to the batch app with their tables (`db_table` keeps `jobs_batch*`):
    # only Django's picture of the models changes here, not the database. The batch app's
    # 0001_initial adds them to its own state; its 0002 moves their content types.
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='batchjob',
                    name='job',
                ),
                migrations.RemoveField(
                    model_name='batchjob',
                    name='schedule',
                ),
                migrations.RemoveField(
                    model_name='batchjob',
                    name='version',
                ),
                migrations.RemoveField(
                    model_name='batchschedule',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='batchschedule',
                    name='model',
                ),
                migrations.RemoveField(
                    model_name='batchschedule',
                    name='owner',
                ),
                migrations.RemoveField(
                    model_name='batchschedule',
                    name='periodic_task',
                ),
                migrations.DeleteModel(
                    name='BatchChunk',
                ),
                migrations.DeleteModel(
                    name='BatchJob',
                ),
                migrations.DeleteModel(
                    name='BatchSchedule',
                ),
            ],
            database_operations=[],
        ),
    ]
