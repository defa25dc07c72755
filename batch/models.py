"""Batch scoring's records: schedules, jobs (the scoring side of a `jobs.Job`) and chunks.

The tables were created by the jobs app and keep its names (`jobs_batch*`); the batch app owns
the models since the split (see batch/migrations/0001_initial.py).
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from jobs.models import Job
from mlplatform.areas import area_path, team_area


class FileFormat(models.TextChoices):
    CSV = "csv", "CSV"
    PARQUET = "parquet", "Parquet"


# Where scheduled scoring finds its input files, one folder per team.
BATCH_INPUTS_AREA = "batch-inputs/"


class BatchSchedule(models.Model):
    """Score the newest file of a storage folder on a cron schedule (a django-celery-beat task)."""

    name = models.SlugField(max_length=100, unique=True)
    model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.CASCADE, related_name="batch_schedules"
    )
    # Resolved at every run, so a schedule follows the alias as it moves.
    alias = models.SlugField(max_length=64, default="production", blank=True)
    folder = models.CharField(
        max_length=300, help_text="Storage folder whose newest CSV/Parquet file is scored."
    )
    outputs = models.JSONField(default=list, blank=True)
    id_columns = models.JSONField(default=list, blank=True)
    output_format = models.CharField(
        max_length=10, choices=FileFormat.choices, default=FileFormat.CSV
    )
    crontab = models.CharField(
        max_length=100, default="0 2 * * *", help_text="minute hour day-of-month month day-of-week"
    )
    enabled = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    last_input = models.CharField(max_length=300, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    # The team whose members may change it (tenancy/rules.py); none: admin-only.
    owner = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "jobs_batchschedule"  # created by the jobs app before batch had its own
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The folder lies in the owning team's batch inputs area (`batch-inputs/<team>/`): a
        schedule must not score, and so publish, another team's files or the platform's own."""
        area = self.inputs_area()
        if area_path(self.folder, area) is None:
            raise ValidationError(
                {"folder": f"A schedule of this team reads folders under {area!r} only."}
            )

    def inputs_area(self) -> str:
        return team_area(BATCH_INPUTS_AREA, self.owner if self.owner_id else None)


class BatchJob(models.Model):
    """What a batch scoring job scores: the pinned version, the input, and the output's shape."""

    job = models.OneToOneField(
        Job, on_delete=models.CASCADE, primary_key=True, related_name="batch"
    )
    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="batch_jobs"
    )
    input_format = models.CharField(max_length=10, choices=FileFormat.choices)
    output_format = models.CharField(max_length=10, choices=FileFormat.choices)
    outputs = models.JSONField(default=list)
    id_columns = models.JSONField(default=list, blank=True)
    # The input's header in file order, read at submit (for as-of jobs: of the staged file).
    columns = models.JSONField(default=list)
    # As-of mode: the input holds entity keys + event_timestamp; the features are joined point in
    # time from the version's feature service into `staged_input` before chunks are planned.
    as_of = models.BooleanField(default=False)
    staged_input = models.CharField(max_length=300, blank=True)
    # Copied from settings at submit so every worker of this job agrees on them.
    chunk_rows = models.PositiveIntegerField()
    lease_seconds = models.PositiveIntegerField()
    max_attempts = models.PositiveSmallIntegerField()
    rows_total = models.BigIntegerField(null=True, blank=True)
    chunks_total = models.PositiveIntegerField(null=True, blank=True)
    # The coordinator's tick: one live token at a time, so duplicated ticks die out.
    watch_token = models.CharField(max_length=32, blank=True)
    watch_beat_at = models.DateTimeField(null=True, blank=True)
    assembly_claimed_at = models.DateTimeField(null=True, blank=True)
    schedule = models.ForeignKey(
        BatchSchedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )

    class Meta:
        db_table = "jobs_batchjob"

    def __str__(self) -> str:
        return f"Batch scoring #{self.pk} with {self.version}"

    def get_absolute_url(self) -> str:
        return self.job.get_absolute_url()


class BatchChunk(models.Model):
    """One slice of a batch job's rows; the unit of work, of retry and of crash recovery."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    batch = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    row_start = models.BigIntegerField()
    row_count = models.PositiveIntegerField()
    # CSV only: byte offset of the chunk's first row, so a chunk never reads the rows before it.
    byte_start = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_by = models.CharField(max_length=200, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    output_part = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    # Rows of this chunk counted in the job's progress so far (advanced block by block, never
    # backwards): the job's progress_done is the sum over its chunks, so a re-run counts only
    # the rows past what an earlier attempt reported.
    rows_done = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "jobs_batchchunk"
        ordering = ["batch", "index"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "index"], name="unique_batch_chunk_index"),
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} of job {self.batch_id} ({self.status})"

    @property
    def row_end(self) -> int:
        return self.row_start + self.row_count
