"""Resolving the version to serve, and re-sending validation for versions stuck in pending."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from mlplatform.errors import ApplicationError, ConflictError, NotFoundError
from registry import selectors, services, tasks
from registry.models import ModelVersion, RegisteredModel
from tests.registry.conftest import serialise, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_versions(open_model: RegisteredModel, estimators: dict[str, Any]) -> RegisteredModel:
    """v1 ready, v2 ready, v3 pending."""
    data = serialise(estimators["linear"], "joblib")
    for _ in range(2):
        services.version_validate(version_id=upload(open_model, data).pk)
    upload(open_model, data)
    return open_model


def test_resolve_prefers_production_then_the_newest_ready(three_versions: RegisteredModel) -> None:
    name = three_versions.name
    assert selectors.version_resolve(model_name=name).version == 2

    services.alias_set(model=three_versions, alias="production", version_number=1, user=None)

    assert selectors.version_resolve(model_name=name).version == 1
    assert selectors.version_resolve(model_name=name, version=2).version == 2
    assert selectors.version_resolve(model_name=name, alias="production").version == 1


RESOLVE_ERRORS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"model_name": "nope"}, NotFoundError, "Model 'nope' not found"),
    ({"version": 3}, ConflictError, "pending"),
    ({"version": 9}, NotFoundError, "no version 9"),
    ({"alias": "staging"}, NotFoundError, "no alias 'staging'"),
    ({"version": 1, "alias": "production"}, ApplicationError, "not both"),
]


def test_resolve_errors_say_what_is_missing(three_versions: RegisteredModel) -> None:
    # one set of versions for every case: validating them is the slow part
    for kwargs, error, message in RESOLVE_ERRORS:
        arguments: dict[str, Any] = {"model_name": three_versions.name, **kwargs}
        with pytest.raises(error, match=message):
            selectors.version_resolve(**arguments)


def test_resolve_with_nothing_ready_is_not_found(
    open_model: RegisteredModel, estimators: dict[str, Any]
) -> None:
    upload(open_model, serialise(estimators["linear"], "joblib"))

    with pytest.raises(NotFoundError, match="no ready version"):
        selectors.version_resolve(model_name=open_model.name)


def test_stale_pending_versions_are_sent_again(
    open_model: RegisteredModel, estimators: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(tasks.version_validate_task, "delay", sent.append)
    data = serialise(estimators["linear"], "joblib")
    old, fresh = upload(open_model, data), upload(open_model, data)
    ModelVersion.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))

    count = services.version_requeue_stale()

    assert count == 1
    assert sent == [old.pk]
    assert fresh.pk not in sent
