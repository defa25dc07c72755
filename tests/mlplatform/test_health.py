import pytest


def test_healthz_is_public_and_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_every_part_ok(client):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}


@pytest.mark.django_db
def test_readyz_names_the_failing_part(client, monkeypatch):
    from mlplatform import health

    def broken() -> None:
        raise OSError("disk gone")

    monkeypatch.setitem(health.CHECKS, "storage", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["storage"]
    assert "disk gone" in response.json()["checks"]["storage"]


@pytest.mark.django_db
def test_readyz_fails_when_broker_unreachable(client, monkeypatch):
    from mlplatform.celery import app

    # monkeypatch restores the app's own setting afterwards (never leak a dead broker URL).
    for key in ("broker_url", "broker_write_url"):
        monkeypatch.setitem(app.conf, key, "redis://127.0.0.1:1/0")
    monkeypatch.setitem(app.conf, "broker_transport", None)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "broker" in response.json()["failing"]
