"""`manage.py allowlist_build [--check]`: regenerate registry/allowlist.json.

The work is in `registry.allowlist`; its docstring says how the list is made.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry import allowlist, scanning


class Command(BaseCommand):
    help = (
        "Regenerate registry/allowlist.json from the installed scikit-learn, numpy, scipy, joblib "
        "and skops; with --check, fail if the checked-in file is out of date."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="do not write; exit non-zero if the checked-in allowlist differs",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            built = allowlist.allowlist_build()
        except allowlist.AllowlistError as exc:
            raise CommandError(f"The allowlist needs a review: {exc}") from exc
        text = allowlist.allowlist_text(built.data)
        diff = allowlist.allowlist_diff(text)
        if options["check"]:
            if diff:
                self.stdout.write(diff)
                raise CommandError(
                    "registry/allowlist.json is out of date for the installed libraries; run "
                    "`python manage.py allowlist_build`, review the diff and commit it."
                )
            self.stdout.write("registry/allowlist.json is up to date.")
            return
        scanning.ALLOWLIST_PATH.write_text(text)
        scanning.allowlist_default.cache_clear()
        data = built.data
        self.stdout.write(
            f"Wrote {scanning.ALLOWLIST_PATH.name}: {len(data['classes'])} classes, "
            f"{len(data['reconstructors'])} reconstructors, {len(data['functions'])} functions "
            f"from {len(built.corpus.files)} saved models."
        )
        for line in built.refused:
            self.stdout.write(f"  refused by design: {line}")
        if diff:
            self.stdout.write(diff)
