from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from features import selectors, services
from mlplatform.errors import ApplicationError


class Command(BaseCommand):
    help = "Ingest a CSV or Parquet file into a feature group's offline store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("group", help="Feature group name.")
        parser.add_argument("file", type=Path, help="CSV or Parquet file.")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        try:
            group = selectors.group_get(name=options["group"])
            rows = services.ingest_path(group=group, path=path)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Ingested {rows} rows into {group.name}."))
