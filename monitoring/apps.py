from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        # Connects monitoring's receivers (a version validated or evaluated gets its reference
        # profile): the apps below know nothing of monitoring.
        from django.db.models.signals import post_save

        from monitoring import alerts, metrics, receivers  # noqa: F401
        from monitoring.models import ReferenceProfile

        # A model's first reference profile brings its default alert rules.
        post_save.connect(
            alerts.reference_saved, sender=ReferenceProfile, dispatch_uid="monitoring-rules"
        )
        # /metrics shows monitoring's figures, read at scrape time.
        metrics.register()
