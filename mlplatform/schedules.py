"""Cron expressions → django-celery-beat schedules, shared by every app that schedules work."""

from django.core.exceptions import ValidationError
from django_celery_beat.models import CrontabSchedule


def crontab_from_expression(expression: str, *, field: str = "crontab") -> CrontabSchedule:
    """The (shared) UTC crontab row for a five-field cron expression.

    Raises:
        ValidationError: not five fields, keyed by `field`.
    """
    parts = expression.split()
    if len(parts) != 5:
        raise ValidationError({field: "Five fields: minute hour day-of-month month day-of-week."})
    minute, hour, day_of_month, month_of_year, day_of_week = parts
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone="UTC",
    )
    return crontab
