from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        # Connects monitoring's receivers (a version validated or evaluated gets its reference
        # profile): the apps below know nothing of monitoring.
        from monitoring import receivers  # noqa: F401
