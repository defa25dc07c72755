import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
        ('jobs', '0008_batch_models_to_batch_app'),
        ('registry', '0005_models_to_creators_team'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    # The tables exist: the jobs app created them (jobs 0002, 0004, 0006), and the models keep
    # their names. Only the migration state moves here (jobs 0008 removed it from jobs).
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='BatchSchedule',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.SlugField(max_length=100, unique=True)),
                        ('alias', models.SlugField(blank=True, default='production', max_length=64)),
                        ('folder', models.CharField(help_text='Storage folder whose newest CSV/Parquet file is scored.', max_length=300)),
                        ('outputs', models.JSONField(blank=True, default=list)),
                        ('id_columns', models.JSONField(blank=True, default=list)),
                        ('output_format', models.CharField(choices=[('csv', 'CSV'), ('parquet', 'Parquet')], default='csv', max_length=10)),
                        ('crontab', models.CharField(default='0 2 * * *', help_text='minute hour day-of-month month day-of-week', max_length=100)),
                        ('enabled', models.BooleanField(default=True)),
                        ('last_input', models.CharField(blank=True, max_length=300)),
                        ('last_run_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='batch_schedules', to='registry.registeredmodel')),
                        ('owner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='auth.group')),
                        ('periodic_task', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='django_celery_beat.periodictask')),
                    ],
                    options={
                        'db_table': 'jobs_batchschedule',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='BatchJob',
                    fields=[
                        ('job', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='batch', serialize=False, to='jobs.job')),
                        ('input_format', models.CharField(choices=[('csv', 'CSV'), ('parquet', 'Parquet')], max_length=10)),
                        ('output_format', models.CharField(choices=[('csv', 'CSV'), ('parquet', 'Parquet')], max_length=10)),
                        ('outputs', models.JSONField(default=list)),
                        ('id_columns', models.JSONField(blank=True, default=list)),
                        ('columns', models.JSONField(default=list)),
                        ('as_of', models.BooleanField(default=False)),
                        ('staged_input', models.CharField(blank=True, max_length=300)),
                        ('chunk_rows', models.PositiveIntegerField()),
                        ('lease_seconds', models.PositiveIntegerField()),
                        ('max_attempts', models.PositiveSmallIntegerField()),
                        ('rows_total', models.BigIntegerField(blank=True, null=True)),
                        ('chunks_total', models.PositiveIntegerField(blank=True, null=True)),
                        ('watch_token', models.CharField(blank=True, max_length=32)),
                        ('watch_beat_at', models.DateTimeField(blank=True, null=True)),
                        ('assembly_claimed_at', models.DateTimeField(blank=True, null=True)),
                        ('version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='batch_jobs', to='registry.modelversion')),
                        ('schedule', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='jobs', to='batch.batchschedule')),
                    ],
                    options={
                        'db_table': 'jobs_batchjob',
                    },
                ),
                migrations.CreateModel(
                    name='BatchChunk',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('index', models.PositiveIntegerField()),
                        ('row_start', models.BigIntegerField()),
                        ('row_count', models.PositiveIntegerField()),
                        ('byte_start', models.BigIntegerField(blank=True, null=True)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], db_index=True, default='pending', max_length=10)),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('claimed_by', models.CharField(blank=True, max_length=200)),
                        ('claimed_at', models.DateTimeField(blank=True, null=True)),
                        ('lease_expires_at', models.DateTimeField(blank=True, null=True)),
                        ('enqueued_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('output_part', models.CharField(blank=True, max_length=300)),
                        ('error', models.TextField(blank=True)),
                        ('batch', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='chunks', to='batch.batchjob')),
                    ],
                    options={
                        'db_table': 'jobs_batchchunk',
                        'ordering': ['batch', 'index'],
                        'constraints': [models.UniqueConstraint(fields=('batch', 'index'), name='unique_batch_chunk_index')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
