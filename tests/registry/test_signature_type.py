"""registry.types.Signature and the model field that stores it: typed in Python, the same JSON in
the database and in every payload."""

import json
from typing import Any

import pandas as pd
import pytest
from django.db import connection
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from registry.models import ModelVersion
from registry.signature import signature_infer
from registry.types import Column, Signature, SignatureError
from tests.factories import ModelVersionFactory


def _classifier_signature() -> Signature:
    frame = pd.DataFrame({"plan": ["basic", "pro", "pro", "basic"], "age": [20, 30, 40, 50]})
    pipeline = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["plan"]), remainder="passthrough"),
        LogisticRegression(),
    ).fit(frame, ["no", "yes", "yes", "no"])
    return signature_infer(pipeline, input_example=[{"plan": "pro", "age": 3}])


def test_an_inferred_signature_survives_its_json_form_in_the_documented_key_order() -> None:
    signature = _classifier_signature().with_trusted_types(["sklearn.linear_model.X"])

    stored = json.loads(json.dumps(signature.to_json()))

    assert list(stored) == [
        "inputs",
        "outputs",
        "task",
        "classes",
        "n_features",
        "has_predict_proba",
        "named_columns",
        "estimator",
        "trusted_types",
    ]
    assert stored["inputs"][0] == {
        "name": "plan",
        "dtype": "string",
        "categories": ["basic", "pro"],
    }
    assert stored["outputs"][1] == {"name": "predict_proba", "dtype": "float64", "shape": [-1, 2]}
    assert stored["classes"] == ["no", "yes"]
    assert Signature.from_json(stored) == signature


def test_an_unvalidated_version_has_the_empty_signature_stored_as_an_empty_object() -> None:
    empty = Signature.from_json({})

    assert empty.empty
    assert empty.to_json() == {}
    assert empty.column_names == []


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ([], "must be an object"),
        ({"inputs": [{"name": "a", "dtype": "float32"}]}, "dtype"),
        ({"inputs": [{"dtype": "float64"}]}, "missing ['name']"),
        ({"inputs": "a,b"}, "inputs must be an array"),
        ({"inputs": [], "task": "ranking"}, "task"),
        ({"inputs": [], "colour": "red"}, "unknown ['colour']"),
        ({"inputs": [], "has_predict_proba": "yes"}, "has_predict_proba"),
    ],
)
def test_a_malformed_signature_is_refused_naming_the_fault(data: Any, needle: str) -> None:
    with pytest.raises(SignatureError) as caught:
        Signature.from_json(data)

    assert needle in str(caught.value)


@pytest.mark.django_db
def test_the_field_stores_the_json_form_and_loads_the_typed_value() -> None:
    # given a ready version, its signature assigned as JSON (as the validator's result holds it)
    version: ModelVersion = ModelVersionFactory.create()
    version.signature = _classifier_signature().to_json()
    assert isinstance(version.signature, Signature)
    version.save()

    # when it is read back, and the column read raw
    loaded = ModelVersion.objects.get(pk=version.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT signature FROM registry_modelversion WHERE id = %s", [version.pk])
        raw = cursor.fetchone()[0]

    # then the model holds a Signature and the column holds exactly its JSON form
    assert loaded.signature == version.signature
    assert loaded.signature.inputs[0] == Column(
        name="plan", dtype="string", categories=("basic", "pro")
    )
    stored = raw if isinstance(raw, dict) else json.loads(raw)  # PostgreSQL decodes jsonb itself
    assert stored == version.signature.to_json()
