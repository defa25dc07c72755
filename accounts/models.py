"""API tokens: hashed at rest (django-rest-knox's digest), named, expiring, optionally scoped."""

from __future__ import annotations  # the field annotations below are for mypy only

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import models
from django.utils import timezone
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS

if TYPE_CHECKING:
    from registry.models import RegisteredModel

# How many leading characters of a key are kept to tell tokens apart (the stored `token_key`
# holds 15; showing fewer leaves nothing useful to anyone who reads a page or the admin).
PREFIX_LENGTH = 12


class ApiToken(AbstractAuthToken):
    """One of a user's API tokens. The key itself is never stored: `digest` is its SHA-512,
    and only its first characters (`token_key`) are kept to tell tokens apart."""

    class Scope(models.TextChoices):
        FULL = "full", "Everything its owner may do"
        PREDICT = "predict", "Predict only, on chosen models"

    # A plain integer id to name a token in URLs and the admin; knox's default primary key is
    # the digest, which should not travel.
    id: models.BigAutoField[int, int] = models.BigAutoField(primary_key=True)
    digest: models.CharField[str, str] = models.CharField(
        max_length=CONSTANTS.DIGEST_LENGTH, unique=True
    )
    name: models.CharField[str, str] = models.CharField(max_length=100)
    scope: models.CharField[str, str] = models.CharField(
        max_length=16, choices=Scope.choices, default=Scope.FULL
    )
    predict_models: models.ManyToManyField[RegisteredModel, Any] = models.ManyToManyField(
        "registry.RegisteredModel",
        blank=True,
        related_name="+",
        help_text="With the predict scope: the only models this token may predict with.",
    )
    last_used: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="apitoken_unique_name_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"

    @property
    def prefix(self) -> str:
        return self.token_key[:PREFIX_LENGTH]

    @property
    def expired(self) -> bool:
        return self.expiry is not None and self.expiry <= timezone.now()
