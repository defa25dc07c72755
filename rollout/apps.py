from django.apps import AppConfig


class RolloutConfig(AppConfig):
    name = "rollout"
    verbose_name = "Rollout"

    def ready(self) -> None:
        # Connects the promotion gate to the registry's signals (an alias about to move, a
        # version become ready): the registry knows no app above it, so it announces and the
        # gate answers.
        from rollout import receivers  # noqa: F401
