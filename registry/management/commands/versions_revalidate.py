"""`python manage.py versions_revalidate`: put versions accepted before the current walls through
them (sandboxed scan, tree checks, compilation). Run by `make run` and by the deploy steps after
`migrate`; a version with no engine recorded is not served until this has run."""

from typing import Any

from django.core.management.base import BaseCommand

from registry import services


class Command(BaseCommand):
    help = "Re-validate ready versions that have no serving engine recorded."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = services.version_revalidate_all(stdout=self.stdout)
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "none"
        self.stdout.write(f"Re-validated: {summary}.")
