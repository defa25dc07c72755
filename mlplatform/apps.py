from django.apps import AppConfig


class MlplatformConfig(AppConfig):
    name = "mlplatform"
    verbose_name = "Platform"
