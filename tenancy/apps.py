from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Tenancy (teams, owners, grants)"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import m2m_changed, post_delete, post_save

        # Registers the permission rules with django-rules' ObjectPermissionBackend.
        from tenancy import models, rules, services  # noqa: F401

        # Cached read checks (online reads) forget at once when a grant or a team changes here.
        for signal in (post_save, post_delete):
            signal.connect(services.read_cache_clear, sender=models.Grant, weak=False)
        m2m_changed.connect(
            services.read_cache_clear, sender=get_user_model().groups.through, weak=False
        )
