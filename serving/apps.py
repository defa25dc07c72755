from django.apps import AppConfig


class ServingConfig(AppConfig):
    name = "serving"

    def ready(self) -> None:
        from features.signals import catalog_changed
        from serving import enrichment

        # The entity keys enrichment caches per feature service go stale when the catalog
        # changes; features cannot call serving, so it signals.
        catalog_changed.connect(enrichment.entity_keys_clear, weak=False)
