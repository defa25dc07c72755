"""The admin's monitoring lists show a team only its own models' references and windows."""

from typing import Any

from monitoring.models import MonitoringWindow, ReferenceProfile
from tests.conftest import admin_client_for
from tests.factories import TeamFactory


def test_admin_lists_only_the_teams_own_records(django_user_model: Any, churn: Any) -> None:
    ReferenceProfile.objects.create(version=churn, source="upload", rows=12)
    window = MonitoringWindow.objects.create(
        model=churn.model,
        version=churn,
        granularity="hour",
        start="2026-03-02T09:00:00Z",
        end="2026-03-02T10:00:00Z",
        rows=34,
    )
    own = admin_client_for(django_user_model, "ana", churn.model.owner, apps=("monitoring",))
    rival = admin_client_for(
        django_user_model, "eve", TeamFactory.create(name="rivals"), apps=("monitoring",)
    )

    for url in ("/admin/monitoring/referenceprofile/", "/admin/monitoring/monitoringwindow/"):
        mine, theirs = own.get(url), rival.get(url)
        assert mine.status_code == theirs.status_code == 200
        assert "churn v1" in mine.content.decode()
        assert "churn v1" not in theirs.content.decode()
    assert rival.get(f"/admin/monitoring/monitoringwindow/{window.pk}/change/").status_code in (
        302,
        404,
    )
