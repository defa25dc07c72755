import pytest
from django.core.management import call_command

from accounts.models import ApiToken
from tests.conftest import api_key_for


@pytest.mark.django_db
def test_api_requires_a_token(anon_client):
    response = anon_client.get("/api/v1/jobs/")
    assert response.status_code == 401
    assert "detail" in response.json()


@pytest.mark.django_db
def test_bearer_and_token_headers_both_authenticate(anon_client, user):
    key = api_key_for(user)
    for scheme in ("Token", "Bearer"):
        anon_client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
        assert anon_client.get("/api/v1/jobs/").status_code == 200


@pytest.mark.django_db
def test_wrong_token_is_401(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer nope")
    assert anon_client.get("/api/v1/jobs/").status_code == 401


@pytest.mark.django_db
def test_api_token_command_prints_a_new_working_key_each_time(user, anon_client, capsys):
    # keys are stored hashed, so the command cannot show an old one: it makes a named token
    call_command("api_token", "alice")
    first = capsys.readouterr().out.strip()
    call_command("api_token", "alice", "--name", "ci")
    second = capsys.readouterr().out.strip()

    assert first != second
    assert ApiToken.objects.filter(user=user).count() == 2
    assert ApiToken.objects.filter(user=user, name="ci").exists()
    for key in (first, second):
        anon_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert anon_client.get("/api/v1/jobs/").status_code == 200


@pytest.mark.django_db
def test_api_token_command_unknown_user_errors():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="nobody"):
        call_command("api_token", "nobody")


def test_openapi_schema_and_offline_swagger(admin_client):
    schema = admin_client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"openapi: 3" in schema.content
    docs = admin_client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content.lower()
    assert b"//cdn" not in docs.content
    assert b"unpkg" not in docs.content


def test_openapi_schema_generates_without_warnings():
    import subprocess
    import sys

    from django.conf import settings

    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            "/dev/null",
        ],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]


# Words of notes written for maintainers (how the code works), never for an API's users.
INTERNAL_PHRASES = (
    "Imported here",
    "imported here",
    "serving.codecs",
    "OpenAPI",
    "drf-spectacular",
    "DRF",
    "docstring",
    "DESIGN",
    "the caller has set",
    "for metrics",
    "TODO",
    "XXX",
)


@pytest.fixture(scope="module")
def schema_and_views():
    from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    views = {callback.cls for _, _, _, callback in EndpointEnumerator().get_api_endpoints()}
    return schema, views


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield f"{method.upper()} {path}", operation


def test_no_view_class_docstring_or_internal_note_reaches_an_operation(schema_and_views):
    import inspect

    schema, views = schema_and_views
    # A view's own docstring and those of the classes it inherits from (what an inherited
    # docstring would show).
    class_docs = {
        inspect.cleandoc(cls.__doc__)
        for view in views
        for cls in view.__mro__
        if cls.__doc__ and cls is not object
    }
    assert class_docs  # the views do have docstrings: the check below is not vacuous
    leaks = []
    for name, operation in _operations(schema):
        text = f"{operation.get('summary', '')}\n{operation.get('description', '')}"
        description = inspect.cleandoc(operation.get("description", ""))
        if description and description in class_docs:
            leaks.append((name, "a view class docstring"))
        leaks.extend((name, phrase) for phrase in INTERNAL_PHRASES if phrase in text)
    assert leaks == []


SERVING_PREFIXES = ("/v1/", "/v2", "/mlflow/")


def _serving(schema):
    for name, operation in _operations(schema):
        path = name.split(" ", 1)[1]
        if path.startswith(SERVING_PREFIXES) or path.endswith("/predict"):
            yield name, operation


def test_serving_routes_are_described_for_their_users(schema_and_views):
    schema, _ = schema_and_views
    undescribed = [
        name
        for name, operation in _serving(schema)
        if not operation.get("summary") or not operation.get("description")
    ]
    assert undescribed == []


def test_serving_routes_take_json_or_their_own_media_types_never_forms(schema_and_views):
    schema, _ = schema_and_views
    bodies = {
        name: set(operation["requestBody"]["content"])
        for name, operation in _serving(schema)
        if "requestBody" in operation
    }
    expected = {
        "/invocations": {"application/json", "text/csv", "application/vnd.apache.parquet"},
        "/infer": {"application/json", "application/octet-stream"},
    }
    assert len(bodies) == 9
    for name, media_types in bodies.items():
        special = [types for suffix, types in expected.items() if name.endswith(suffix)]
        assert media_types == (special[0] if special else {"application/json"}), name
    infer = schema["paths"]["/v2/models/{name}/infer"]["post"]
    assert any(p["name"] == "Inference-Header-Content-Length" for p in infer["parameters"])


def test_one_token_scheme_and_predict_routes_declare_only_it(schema_and_views):
    schema, _ = schema_and_views
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}
    for name, operation in _serving(schema):
        assert operation["security"] in ([{"tokenAuth": []}], [{}]), name
    for name, operation in _operations(schema):
        assert {"tokenAuth": []} in operation["security"] or operation["security"] == [{}], name


def test_serving_errors_have_each_protocols_shape(schema_and_views):
    schema, _ = schema_and_views

    def error_ref(path, method, code):
        response = schema["paths"][path][method]["responses"][code]
        return response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]

    assert error_ref("/api/v1/models/{name}/predict", "post", "400") == "PlatformError"
    assert error_ref("/mlflow/models/{name}/invocations", "post", "415") == "MlflowError"
    assert error_ref("/v2/models/{name}/infer", "post", "404") == "OpenInferenceError"
    assert error_ref("/v1/models/{name}:predict", "post", "413") == "OpenInferenceError"
    components = schema["components"]["schemas"]
    assert set(components["PlatformError"]["properties"]) == {"detail", "field", "row"}
    assert set(components["MlflowError"]["required"]) == {"error_code", "message"}
    assert len(components["MlflowInvocationsRequest"]["oneOf"]) == 4  # its four JSON formats
