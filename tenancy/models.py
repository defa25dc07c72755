from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models


class Grant(models.Model):
    """A team may read another team's data: a feature group's values, a model's prediction log,
    a job's input and output. Writes are never granted: only the owning team writes."""

    class Access(models.TextChoices):
        READ = "read", "Read data"

    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="grants")
    content_type = models.ForeignKey(
        ContentType,
        on_delete=models.CASCADE,
        limit_choices_to=models.Q(app_label="features", model="featuregroup")
        | models.Q(app_label="registry", model="registeredmodel")
        | models.Q(app_label="jobs", model="job"),
    )
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    access = models.CharField(max_length=10, choices=Access.choices, default=Access.READ)
    note = models.CharField(max_length=300, blank=True, help_text="Why the team needs it.")
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "content_type", "object_id", "access"], name="unique_grant"
            ),
        ]
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.team} may {self.access} {self.content_type.model} #{self.object_id}"
