"""Bodies nested far past any real payload are a 400 on every JSON route, never a 500."""

from typing import Any

import pytest

pytestmark = pytest.mark.django_db

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a": ' * 50_000 + "1" + "}" * 50_000


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["lists", "objects"])
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/api/v1/models/"),
        ("put", "/api/v1/models/churn/aliases/production/"),
        ("post", "/api/v1/features/entities/"),
        ("post", "/api/v1/features/groups/"),
        ("post", "/api/v1/features/online/"),
        ("post", "/api/v1/features/training-sets/"),
        ("post", "/api/v1/models/churn/predict"),
        ("post", "/mlflow/models/churn/invocations"),
        ("post", "/v2/models/churn/infer"),
    ],
)
def test_deeply_nested_json_is_a_400(
    api_client: Any, user: Any, method: str, url: str, body: str
) -> None:
    import numpy as np
    from sklearn.linear_model import LinearRegression

    from tests.factories import ModelVersionFactory

    # given a user allowed everything and a ready model, so the body is what gets judged
    user.is_superuser = True
    user.save()
    x = np.arange(6.0).reshape(3, 2)
    ModelVersionFactory.create(model__name="churn", estimator=LinearRegression().fit(x, x[:, 0]))

    response = getattr(api_client, method)(url, body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("field", ["metrics", "tags", "input_example"])
def test_deeply_nested_json_in_upload_fields_is_a_400(
    api_client: Any, admin_user: Any, field: str
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from registry.models import ModelVersion, RegisteredModel

    api_client.force_authenticate(admin_user)
    RegisteredModel.objects.create(name="churn")
    artifact = SimpleUploadedFile("m.pkl", b"\x80\x04N.")

    response = api_client.post(
        "/api/v1/models/churn/versions/",
        {"artifact": artifact, field: DEEP},
        format="multipart",
    )

    assert response.status_code == 400, response.content
    assert field in response.json()["detail"]
    assert not ModelVersion.objects.exists()
