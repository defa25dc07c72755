"""Version numbers stay 1..n without gaps or duplicates when uploads race (PostgreSQL)."""

import threading
from typing import Any

import pytest
from django.db import connection

from registry import services, tasks
from registry.models import ModelVersion
from tests.registry.conftest import serialise, upload


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_uploads_get_versions_one_to_twenty(
    estimators: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Numbering is the point here; validation is covered elsewhere and would only add load.
    monkeypatch.setattr(tasks.version_validate_task, "delay", lambda *args: None)
    model = services.model_create(name="raced")
    data = serialise(estimators["linear"], "joblib")
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            barrier.wait()
            upload(model, data)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    numbers = sorted(ModelVersion.objects.filter(model=model).values_list("version", flat=True))
    assert numbers == list(range(1, 21))
