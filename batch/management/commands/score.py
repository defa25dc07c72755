"""`python manage.py score <model> <file> [--version n | --alias a] [--wait]`."""

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from batch import inputs, selectors, submit
from jobs.models import Job
from mlplatform.errors import ApplicationError


class Command(BaseCommand):
    help = "Queue a batch scoring job for a local CSV or Parquet file; --wait shows its progress."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # `--version n` picks the model version, replacing Django's own --version flag.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="Registered model name.")
        parser.add_argument("file", help="CSV (with a header) or Parquet file to score.")
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--version", type=int, help="Version number (default: production).")
        target.add_argument("--alias", help="Alias to resolve now, e.g. staging.")
        parser.add_argument(
            "--outputs", default="predict", help="predict, predict_proba or both, comma-separated."
        )
        parser.add_argument("--id-columns", default="", help="Columns to carry through.")
        parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
        parser.add_argument(
            "--as-of",
            action="store_true",
            help="The file holds entity keys + event_timestamp; join features point in time.",
        )
        parser.add_argument("--wait", action="store_true", help="Follow progress until done.")
        parser.add_argument("--output", help="With --wait: copy the output file here.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            version = selectors.batch_version_pin(
                model_name=options["model"], version=options["version"], alias=options["alias"]
            )
            with path.open("rb") as stream:
                job = submit.batch_job_submit(
                    version=version,
                    stream=stream,
                    filename=path.name,
                    outputs=inputs.outputs_parse(options["outputs"]),
                    id_columns=inputs.names_parse(options["id_columns"]),
                    output_format=inputs.format_parse(options["format"]),
                    as_of=options["as_of"],
                )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Job {job.pk} queued: {job.description} ({job.get_absolute_url()})")
        if options["wait"]:
            job = self._follow(job)
            if job.status != Job.Status.SUCCEEDED:
                raise CommandError(f"Job {job.pk} {job.status}: {job.error}")
            self.stdout.write(f"Job {job.pk} succeeded: {job.output.name}")
            if options["output"]:
                with job.output.open("rb") as source, open(options["output"], "wb") as target:
                    for block in iter(lambda: source.read(1024 * 1024), b""):
                        target.write(block)
                self.stdout.write(f"Output written to {options['output']}")

    def _follow(self, job: Job) -> Job:
        with tqdm(
            total=job.progress_total, unit="rows", file=self.stderr, dynamic_ncols=True
        ) as bar:
            while True:
                job.refresh_from_db()
                if job.progress_total is not None and bar.total != job.progress_total:
                    bar.total = job.progress_total
                bar.update(job.progress_done - bar.n)
                bar.set_postfix_str(job.status)
                if job.is_finished:
                    return job
                time.sleep(0.5)
