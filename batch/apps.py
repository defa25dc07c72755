from django.apps import AppConfig


class BatchConfig(AppConfig):
    name = "batch"
    verbose_name = "Batch scoring"

    def ready(self) -> None:
        # Connects batch's receivers of the jobs signals (cancel, leftover files, page details):
        # jobs knows no app above it, so it announces and batch answers.
        from batch import receivers  # noqa: F401
