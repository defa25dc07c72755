import io
from typing import Any

import pandas as pd
import pytest
from django.conf import settings


@pytest.fixture
def api_client(api_client: Any, feature_editor: Any) -> Any:
    """The token client, its user allowed to edit the catalog."""
    return api_client


@pytest.fixture(autouse=True)
def _empty_online_store() -> None:
    """A Redis online store outlives the test database; start each test with it empty."""
    url = settings.MLPLATFORM_ONLINE_STORE
    if url.startswith("redis"):
        import redis

        redis.Redis.from_url(url).flushdb()


def csv_file(rows: list[dict[str, Any]] | str, name: str = "data.csv") -> io.BytesIO:
    text = rows if isinstance(rows, str) else pd.DataFrame(rows).to_csv(index=False)
    stream = io.BytesIO(text.encode())
    stream.name = name
    return stream


def parquet_frame(content: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(content))


@pytest.fixture
def customer(api_client: Any) -> dict[str, Any]:
    response = api_client.post(
        "/api/v1/features/entities/",
        {"name": "customer", "join_keys": ["customer_id"], "description": "A paying customer"},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def make_group(api_client: Any, **payload: Any) -> dict[str, Any]:
    body = {"entity": "customer", "tags": {}, "tasks": [], **payload}
    response = api_client.post("/api/v1/features/groups/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def ingest(api_client: Any, group: str, rows: list[dict[str, Any]] | str) -> Any:
    return api_client.post(
        f"/api/v1/features/groups/{group}/ingest", {"file": csv_file(rows)}, format="multipart"
    )
