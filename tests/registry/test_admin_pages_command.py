"""Admin upload and alias forms, the registry pages, and the register_model command."""

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from registry import services
from registry.models import AliasChange, ModelAlias, ModelVersion, RegisteredModel
from tests.registry.conftest import serialise, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(member: Any) -> Any:
    member.is_staff = True
    member.save()
    for codename in ("change_registeredmodel", "view_registeredmodel", "view_modelversion"):
        member.user_permissions.add(Permission.objects.get(codename=codename))
    return member


@pytest.fixture
def staff_client(staff: Any) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def _admin_form(model: RegisteredModel, **extra: Any) -> dict[str, Any]:
    return {
        "description": model.description,
        "owner": model.owner_id or "",
        "tags": json.dumps(model.tags),
        "aliases-TOTAL_FORMS": "0",
        "aliases-INITIAL_FORMS": "0",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        **extra,
    }


def _change_url(model: RegisteredModel) -> str:
    return f"/admin/registry/registeredmodel/{model.pk}/change/"


def test_admin_upload_goes_through_the_service(
    staff_client: Client, registered: RegisteredModel, estimators: dict[str, Any]
) -> None:
    data = serialise(estimators["linear"], "joblib")

    response = staff_client.post(
        _change_url(registered),
        _admin_form(
            registered,
            upload_artifact=SimpleUploadedFile("../../x.joblib", data),
            upload_description="from the admin",
            upload_metrics='{"r2": 0.5}',
            upload_input_example='[{"age": 1, "income": 2, "tenure": 3, "score": 4}]',
        ),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    version = ModelVersion.objects.get(model=registered)
    assert version.status == ModelVersion.Status.PENDING
    assert version.metrics == {"r2": 0.5}
    assert version.validation_job is not None
    assert version.artifact.name.startswith(f"artifacts/{registered.pk}/{version.sha256}")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"upload_metrics": "{oops"}, "Not valid JSON"),
        ({"upload_input_example": '"text"'}, "list of rows"),
        ({"upload_artifact": SimpleUploadedFile("x.joblib", b"plain text")}, "not a pickle"),
        ({"alias_name": "production", "alias_version": "3"}, "no version 3"),
    ],
)
def test_admin_bad_input_is_a_form_error_and_changes_nothing(
    staff_client: Client, registered: RegisteredModel, extra: dict[str, Any], message: str
) -> None:
    response = staff_client.post(_change_url(registered), _admin_form(registered, **extra))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ModelVersion.objects.exists()
    assert not ModelAlias.objects.exists()


def test_admin_moves_an_alias_and_shows_the_signature(
    staff_client: Client, registered: RegisteredModel, estimators: dict[str, Any]
) -> None:
    version = services.version_validate(
        version_id=upload(registered, serialise(estimators["pipeline"], "joblib")).pk
    )

    response = staff_client.post(
        _change_url(registered),
        _admin_form(registered, alias_name="production", alias_version=str(version.version)),
    )
    page = staff_client.get(f"/admin/registry/modelversion/{version.pk}/change/")

    assert response.status_code == 302
    assert ModelAlias.objects.get(model=registered, alias="production").version == version
    assert AliasChange.objects.get().to_version == version.version
    html = page.content.decode()
    assert "<td>age</td>" in html
    assert version.sha256 in html


def test_admin_refuses_uploads_from_outside_the_team(
    django_user_model: Any, registered: RegisteredModel, estimators: dict[str, Any]
) -> None:
    outsider = django_user_model.objects.create_user(username="eve", password="pw", is_staff=True)
    outsider.user_permissions.add(Permission.objects.get(codename="change_registeredmodel"))
    client = Client()
    client.force_login(outsider)

    response = client.post(
        _change_url(registered),
        _admin_form(
            registered,
            upload_artifact=SimpleUploadedFile(
                "m.joblib", serialise(estimators["linear"], "joblib")
            ),
        ),
    )

    # Another team's model opens read-only: a change posted anyway is refused outright.
    assert response.status_code == 403
    assert not ModelVersion.objects.exists()


# --- pages ----------------------------------------------------------------------------------------


def test_model_pages_show_versions_metrics_signature_and_alias_history(
    client: Client, user: Any, registered: RegisteredModel, estimators: dict[str, Any]
) -> None:
    data = serialise(estimators["pipeline"], "joblib")
    first = services.version_validate(
        version_id=upload(registered, data, metrics={"accuracy": 0.81}).pk
    )
    upload(registered, data, metrics={"accuracy": 0.84, "f1": 0.7})
    services.alias_set(model=registered, alias="production", version_number=1, user=user)
    client.force_login(user)

    listing = client.get("/models/?q=churn").content.decode()
    empty = client.get("/models/?q=zzz").content.decode()
    detail = client.get("/models/churn/").content.decode()
    row = client.get("/models/churn/versions/2/row").content.decode()

    assert 'href="/models/churn/"' in listing
    assert "production → v1" in listing
    assert "churn" not in empty.split("<tbody>")[1]
    assert "0.81" in detail
    assert "0.84" in detail
    assert "<td>age</td>" in detail
    assert first.sha256[:12] in detail
    assert "/serving/models/churn/try/" in detail
    assert "/serving/models/churn/predictions/" in detail
    assert 'hx-trigger="every 2s"' in row  # the pending version polls until it settles
    assert 'id="alias-history"' in detail


def test_pages_need_a_login(client: Client, registered: RegisteredModel) -> None:
    assert client.get("/models/").status_code == 302
    assert client.get("/models/churn/").status_code == 302


def test_unknown_model_page_is_404(client: Client, user: Any) -> None:
    client.force_login(user)
    assert client.get("/models/nope/").status_code == 404


# --- command --------------------------------------------------------------------------------------


def test_register_model_command_validates_and_sets_the_alias(
    estimators: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "model.skops"
    path.write_bytes(serialise(estimators["pipeline"], "skops"))
    out = StringIO()

    call_command(
        "register_model", "cli-model", str(path), "--alias", "production", "--wait", stdout=out
    )

    version = ModelVersion.objects.get(model__name="cli-model")
    assert version.status == ModelVersion.Status.READY
    assert ModelAlias.objects.get(model__name="cli-model", alias="production").version == version
    assert "production → v1" in out.getvalue()


def test_register_model_command_fails_on_a_rejected_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(b"\x80\x04cos\nsystem\n.")

    with pytest.raises(CommandError, match="Rejected"):
        call_command("register_model", "cli-bad", str(path), "--wait", stdout=StringIO())


def test_demo_registers_iris_in_production_once(user: Any) -> None:
    from registry.demo import demo_load

    first = list(demo_load(user=user))
    second = list(demo_load(user=user))

    version = ModelVersion.objects.get(model__name="iris")
    assert version.status == ModelVersion.Status.READY
    assert version.signature.inputs[0].name == "sepal length (cm)"
    assert ModelAlias.objects.get(model__name="iris", alias="production").version == version
    assert any("Uploaded" in line for line in first)
    assert not any("Uploaded" in line for line in second)
