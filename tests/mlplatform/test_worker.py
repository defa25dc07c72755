import pytest

from mlplatform.celery import ping


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_process_round_trips_a_task(celery_worker):
    result = ping.delay("hello from the test")
    assert result.get(timeout=60) == "hello from the test"
    assert "mlplatform.ping" in celery_worker.log()


@pytest.mark.django_db(transaction=True)
def test_many_tasks_from_many_threads_all_arrive(celery_worker):
    # Producers racing the worker's polling must never hand it a half-written message.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: ping.delay(f"m{i}"), range(200)))

    assert sorted(result.get(timeout=120) for result in results) == sorted(
        f"m{i}" for i in range(200)
    )
    assert "JSONDecodeError" not in celery_worker.log()


def test_embedded_broker_writes_whole_messages_only(tmp_path):
    from kombu import Connection

    from mlplatform.broker import Transport

    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path / "control"),
    }
    with Connection("filesystem://", transport=Transport, transport_options=options) as conn:
        queue = conn.SimpleQueue("q")
        queue.put({"n": 1})
        files = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
        assert len(files) == 1
        assert files[0].endswith(".q.msg")
        assert queue.get(timeout=5).payload == {"n": 1}
        queue.close()


def test_every_task_has_a_soft_limit_within_its_hard_limit():
    # Celery refuses to send a task whose soft limit exceeds its hard one (beat logs and drops it).
    from mlplatform.celery import app

    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert len(ours) > 5
    for name, task in ours.items():
        hard = task.time_limit or app.conf.task_time_limit
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        assert soft <= hard, f"{name}: soft {soft} > hard {hard}"
