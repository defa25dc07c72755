from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.models import ApiToken
from accounts.services import token_create
from features.demo import demo_load as features_demo
from registry.demo import demo_load as registry_demo
from rollout.demo import demo_load as rollout_demo

DEMO_USER = "admin"
DEMO_PASSWORD = "admin"  # noqa: S105 - printed on purpose: a local demo account
DEMO_TOKEN = "demo"  # noqa: S105 - the token's name, not a secret


class Command(BaseCommand):
    help = "Create a demo admin user and load the demo model and feature group (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=DEMO_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        # Keys are stored hashed, so the demo's key cannot be read back: each run replaces it.
        ApiToken.objects.filter(user=user, name=DEMO_TOKEN).delete()
        _, key = token_create(user=user, name=DEMO_TOKEN)

        # Each app loads its own demo content.
        for line in features_demo(user=user):
            self.stdout.write(line)
        for line in registry_demo(user=user):
            self.stdout.write(line)
        for line in rollout_demo(user=user):
            self.stdout.write(line)

        self.stdout.write(self.style.SUCCESS("Demo ready."))
        self.stdout.write(
            f"  Web UI:   http://127.0.0.1:8000/   (user {DEMO_USER!r}, password "
            f"{DEMO_PASSWORD!r}{'' if created else ', unless you changed it'})"
        )
        self.stdout.write(f"  API token: {key}   (a new one each run; see /accounts/tokens/)")
        self.stdout.write("  API docs: http://127.0.0.1:8000/api/docs/")
