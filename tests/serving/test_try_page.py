"""The "Try it" page without a browser: the form built from the typed signature, one predict
through the same decoding and service as the API (tests/e2e/test_serving.py drives it in
Chromium)."""

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from registry.models import ModelVersion


@pytest.fixture
def staff_client(client: Client, django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("bob", password="pw-bob-12345", is_staff=True)
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_form_has_a_field_per_signature_column_and_predicts_with_probabilities(
    staff_client: Client, make_version: Callable[..., ModelVersion]
) -> None:
    # given a ready iris classifier
    make_version("iris")

    # when the form is posted with one row
    response = staff_client.post(
        "/serving/models/iris/try/", {"f0": 6.7, "f1": 3.0, "f2": 5.2, "f3": 2.3}
    )

    # then the page shows the prediction and one probability per class
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.fields) == ["f0", "f1", "f2", "f3"]
    assert response.context["prediction"] == "virginica"
    assert [label for label, _ in response.context["probabilities"]] == [
        "setosa",
        "versicolor",
        "virginica",
    ]


@pytest.mark.django_db
def test_a_string_column_gets_a_text_field_and_an_unknown_category_is_a_form_error(
    staff_client: Client, make_version: Callable[..., ModelVersion]
) -> None:
    # given a pipeline that one-hot encodes a text column and refuses unknown categories
    make_version("colors")

    # when the form is posted with a colour it never saw
    response = staff_client.post("/serving/models/colors/try/", {"x": 0.5, "color": "purple"})

    # then nothing is predicted and the page says why
    assert response.status_code == 200
    assert response.context["has_result"] is False
    assert response.context["form"].fields["color"].__class__.__name__ == "CharField"
    assert "rejected the input" in response.context["error"]


@pytest.mark.django_db
def test_snippets_after_predict_send_the_values_typed_by_the_signature(
    staff_client: Client, make_version: Callable[..., ModelVersion]
) -> None:
    # given a model with a number column and a text column
    make_version("colors")

    # when the form is posted (every value arrives as text)
    response = staff_client.post("/serving/models/colors/try/", {"x": "0.25", "color": "red"})

    # then each snippet sends the number as a number and the text as text, with the signature's
    # Open Inference datatypes
    snippets = response.context["snippets"]
    assert '"x": 0.25' in snippets["curl (native)"]
    assert '"color": "red"' in snippets["curl (native)"]
    assert '"data": [[0.25, "red"]]' in snippets["curl (MLflow)"]
    v2 = snippets["curl (Open Inference v2)"]
    assert '"name": "x", "shape": [1], "datatype": "FP64", "data": [0.25]' in v2
    assert '"name": "color", "shape": [1], "datatype": "BYTES", "data": ["red"]' in v2
    assert "json={'instances': [{'x': 0.25, 'color': 'red'}]" in snippets["Python"]
