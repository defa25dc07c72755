from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.services import token_create
from mlplatform.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Create a new named API token for a user and print its key. Keys are stored hashed, so "
        "an existing token's key cannot be shown again: each run makes a new token (list and "
        "revoke them on the Tokens page, /accounts/tokens/)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--name", default="", help="The token's name (default: 'api_token <date and time>')."
        )
        parser.add_argument(
            "--expires-in-days",
            type=float,
            default=None,
            help="Lifetime in days (default and maximum: MLPLATFORM_TOKEN_TTL_DAYS).",
        )

    def handle(
        self,
        *args: Any,
        username: str,
        name: str,
        expires_in_days: float | None,
        **options: Any,
    ) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: username})
        except user_model.DoesNotExist as exc:
            raise CommandError(f"No user named {username!r}.") from exc
        name = name or f"api_token {timezone.now():%Y-%m-%d %H:%M:%S.%f}"
        try:
            _, key = token_create(user=user, name=name, expires_in_days=expires_in_days)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(key)
