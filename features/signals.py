"""The feature store's signal to the apps above it, which it must not import: whatever they
cache of the catalog is dropped when the catalog changes."""

from typing import Any

from django.dispatch import Signal

# Sent after the catalog changed in this process: an entity, feature group, feature or feature
# service was saved or deleted, or a service's features changed (wired in features/apps.py, so
# the services, the admin and the ORM alike send it). Its receivers are the per-process caches
# of catalog lookups: features.online's resolved features and serving.enrichment's entity keys.
# Other processes see a change when those caches expire.
catalog_changed = Signal()


def catalog_changed_send(**_: Any) -> None:
    """Receiver of the model signals of the catalog's tables: sends `catalog_changed`."""
    catalog_changed.send(sender=catalog_changed_send)
