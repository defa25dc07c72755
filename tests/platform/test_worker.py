import pytest

from mlplatform.celery import ping


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_process_round_trips_a_task(celery_worker):
    result = ping.delay("hello from the test")
    assert result.get(timeout=60) == "hello from the test"
    assert "mlplatform.ping" in celery_worker.log()
