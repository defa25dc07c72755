from django.apps import AppConfig


class FeaturesConfig(AppConfig):
    name = "features"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from features import models, online, signals

        # Online reads (and serving's enrichment) cache catalog lookups per process; a catalog
        # change here drops them at once (other processes see it after
        # MLPLATFORM_FEATURE_CATALOG_TTL_SECONDS).
        send = signals.catalog_changed_send
        for model in (models.Entity, models.FeatureGroup, models.Feature, models.FeatureService):
            post_save.connect(send, sender=model, weak=False)
            post_delete.connect(send, sender=model, weak=False)
        m2m_changed.connect(send, sender=models.FeatureService.features.through, weak=False)
        signals.catalog_changed.connect(online.catalog_cache_clear, weak=False)
        # Answers the job tracker's signals for feature jobs (the job page's link to its group).
        from features import receivers  # noqa: F401
