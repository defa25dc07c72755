"""Bad input never yields a 5xx: random JSON bodies (hypothesis) and schema-driven cases
(schemathesis over the OpenAPI schema of the native predict routes)."""

import json

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.api import urls as serving_urls

pytestmark = pytest.mark.django_db

COLUMNS = ["f0", "f1", "f2", "f3", "x"]
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
rows = st.dictionaries(st.sampled_from(COLUMNS), values, max_size=5)
column_lists = st.lists(scalars, max_size=3)
native_bodies = st.fixed_dictionaries(
    {},
    optional={
        "instances": st.lists(rows, max_size=3) | values,
        "inputs": st.dictionaries(st.sampled_from(COLUMNS), column_lists, max_size=5) | values,
        "return": st.lists(st.sampled_from(["predict", "predict_proba", "x"]), max_size=2) | values,
    },
)
mlflow_bodies = st.fixed_dictionaries(
    {},
    optional={
        "dataframe_split": st.fixed_dictionaries(
            {}, optional={"columns": st.lists(st.sampled_from(COLUMNS), max_size=5), "data": values}
        )
        | values,
        "dataframe_records": st.lists(rows, max_size=3) | values,
        "instances": st.lists(st.lists(scalars, max_size=5), max_size=3) | values,
        "params": values,
    },
)
tensor = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["input-0", *COLUMNS]) | values,
        "shape": st.lists(st.integers(min_value=-1, max_value=5), max_size=3) | values,
        "datatype": st.sampled_from(["FP64", "INT64", "BYTES", "BOOL", "FP8"]) | values,
        "data": st.lists(scalars | st.lists(scalars, max_size=4), max_size=8) | values,
    }
)
v2_bodies = st.fixed_dictionaries(
    {},
    optional={
        "id": values,
        "inputs": st.lists(tensor, max_size=3) | values,
        "outputs": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["predict", "predict_proba", "y"])}),
            max_size=2,
        )
        | values,
        "parameters": values,
    },
)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def models(make_version):
    make_version("iris")
    make_version("colors")
    make_version("broken")


@pytest.mark.parametrize("name", ["iris", "colors", "broken"])
def test_random_json_never_5xx(api_client, models, name):
    @FUZZ
    @given(native=native_bodies, mlflow=mlflow_bodies, v2=v2_bodies | values)
    def check(native, mlflow, v2):
        for path, body in (
            (f"/api/v1/models/{name}/predict", native),
            (f"/mlflow/models/{name}/invocations", mlflow),
            (f"/v2/models/{name}/infer", v2),
        ):
            raw = json.dumps(body)  # hypothesis floats include NaN: sent as the literal
            response = api_client.post(path, raw, content_type="application/json")
            assert response.status_code < 500, (path, raw, response.content)
            assert response.status_code in (200, 400, 413), (path, raw, response.content)
            if response.status_code == 400:
                assert response.json()

    check()


@pytest.fixture(scope="module")
def native_schema():
    # Only the serving routes: the schema of other apps is not under test here.
    document = SchemaGenerator(patterns=serving_urls.urlpatterns).get_schema(
        request=None, public=True
    )
    return schemathesis.openapi.from_dict(json.loads(json.dumps(document)))


@pytest.mark.parametrize(
    "route",
    [
        "/api/v1/models/{name}/predict",
        "/api/v1/models/{name}/versions/{version}/predict",
        "/api/v1/models/{name}/aliases/{alias}/predict",
    ],
)
def test_schemathesis_native_routes_never_5xx(api_client, models, native_schema, route):
    operation = native_schema[route]["POST"]

    @settings(FUZZ, max_examples=30)
    @given(case=operation.as_strategy(), real_name=st.booleans())
    def check(case, real_name):
        params = dict(case.path_parameters or {})
        if real_name:
            params["name"] = "iris"
        path = route.format(**params)
        body = case.body if isinstance(case.body, dict | list) else {}
        response = api_client.post(path, json.dumps(body), content_type="application/json")
        assert response.status_code < 500, (path, body, response.content)
        if response.status_code != 404:  # 404 may be the router's page for a non-slug name
            assert response.json()  # always a JSON body; errors name the problem

    check()
