"""`manage.py register_model <name> <file> [--alias production] [--wait]`, for scripts and demos."""

import json
import time
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.models import Job
from mlplatform.errors import ApplicationError, ConflictError
from registry import selectors, services
from registry.models import ModelVersion, RegisteredModel


class Command(BaseCommand):
    help = "Upload a model artifact as a new version (creating the model if needed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="model name (a slug)")
        parser.add_argument("file", help=".skops, .joblib, .pkl or .pickle file")
        parser.add_argument("--alias", help="point this alias at the version once it is ready")
        parser.add_argument("--description", default="")
        parser.add_argument("--metrics", help="JSON object", default=None)
        parser.add_argument("--tags", help="JSON object", default=None)
        parser.add_argument("--input-example", help="JSON list of rows", default=None)
        parser.add_argument("--owner", help="team (group) name for a new model", default=None)
        parser.add_argument(
            "--override-reason",
            default="",
            help="move a gated alias (production) past a failed promotion gate, for this "
            "reason; needs --user holding the permission rollout.override_gate",
        )
        parser.add_argument(
            "--user", default=None, help="act as this user (whose permissions the gate checks)"
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="validate in this process instead of waiting for a worker",
        )
        parser.add_argument("--timeout", type=float, default=600, help="seconds to wait")

    def _json(self, text: str | None, option: str) -> Any:
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--{option}: not valid JSON ({exc.msg}).") from exc

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"--user: there is no user {options['user']!r}.")
        try:
            model = RegisteredModel.objects.filter(name=options["name"]).first()
            if model is None:
                model = services.model_create(name=options["name"], owner=options["owner"])
                self.stdout.write(f"Registered model {model.name}.")
            with path.open("rb") as stream:
                version = services.version_upload(
                    model=model,
                    file=File(stream, name=path.name),
                    user=None,
                    description=options["description"],
                    metrics=self._json(options["metrics"], "metrics"),
                    tags=self._json(options["tags"], "tags"),
                    input_example=self._json(options["input_example"], "input-example"),
                )
            self.stdout.write(
                f"Uploaded {model.name} v{version.version} (sha256 {version.sha256})."
            )
            if options["wait"]:
                version = services.version_validate(version_id=version.pk)
            elif options["alias"]:
                version = self._poll(version, float(options["timeout"]))
            self.stdout.write(f"{model.name} v{version.version}: {version.status}")
            if version.status == ModelVersion.Status.REJECTED:
                raise CommandError(f"Rejected: {version.status_message}")
            if options["alias"] and version.status == ModelVersion.Status.READY:
                self._alias_set(model, version, options, user)
                self.stdout.write(f"{options['alias']} → v{version.version}")
        except ApplicationError as exc:
            failed = exc.extra.get("failed") if exc.extra else None
            listed = "".join(f"\n  failed: {rule}" for rule in failed or [])
            raise CommandError(exc.message + listed) from exc

    def _alias_set(
        self, model: RegisteredModel, version: ModelVersion, options: dict[str, Any], user: Any
    ) -> None:
        """Point the alias at the version. A promotion gate still evaluating the version (a
        409 naming the job) is waited for, within --timeout, and asked again once."""
        move = {
            "model": model,
            "alias": options["alias"],
            "version_number": version.version,
            "user": user,
            "reason": options["override_reason"],
        }
        try:
            services.alias_set(**move)
        except ConflictError as exc:
            job = exc.extra.get("job") if exc.extra else None
            if not job or exc.extra.get("failed"):
                raise
            self.stdout.write(f"{exc.message} Waiting for job {job}…")
            self._wait_job(int(job), float(options["timeout"]))
            services.alias_set(**move)

    def _wait_job(self, job_id: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if Job.objects.filter(pk=job_id, status__in=Job.FINISHED).exists():
                return
            time.sleep(0.5)
        raise CommandError(
            f"job {job_id} is still running after {timeout:g} s; is a worker running?"
        )

    def _poll(self, version: ModelVersion, timeout: float) -> ModelVersion:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            version.refresh_from_db()
            if version.status != ModelVersion.Status.PENDING:
                return version
            time.sleep(0.5)
        found = selectors.version_get(model=version.model, version=version.version)
        raise CommandError(
            f"{found} is still pending after {timeout:g} s; is a worker running? "
            "(use --wait to validate in this process)"
        )
