import asyncio
import itertools
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from tests.workers import WorkerProcess

# Playwright's sync API runs an event loop in the test thread; the ORM calls made beside it
# are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("MLPLATFORM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def _services_required() -> bool:
    return os.environ.get("MLPLATFORM_REQUIRE_SERVICES") == "1"


def pytest_sessionstart(session: pytest.Session) -> None:
    """In the services pass, unreachable PostgreSQL or Redis fails the run; it never skips."""
    if not _services_required():
        return
    import redis

    problems = []
    if not _on_postgres():
        problems.append("MLPLATFORM_REQUIRE_SERVICES=1 but DATABASE_URL is not PostgreSQL")
    else:
        import psycopg

        db = settings.DATABASES["default"]
        try:
            psycopg.connect(
                host=db["HOST"],
                port=db["PORT"] or 5432,
                user=db["USER"],
                password=db["PASSWORD"],
                dbname="postgres",
                connect_timeout=5,
            ).close()
        except psycopg.Error as exc:
            problems.append(f"PostgreSQL unreachable: {exc}")
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("redis"):
        problems.append("MLPLATFORM_REQUIRE_SERVICES=1 but CELERY_BROKER_URL is not Redis")
    else:
        try:
            redis.Redis.from_url(broker, socket_timeout=5).ping()
        except redis.RedisError as exc:
            problems.append(f"Redis unreachable: {exc}")
    if problems:
        pytest.exit("; ".join(problems), returncode=3)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _on_postgres() or _services_required():
        return
    skip = pytest.mark.skip(reason="PostgreSQL-only; runs in the PostgreSQL + Redis pass")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _clean_var() -> None:
    """Each run starts with empty media and an empty embedded broker queue."""
    for path in (Path(settings.MEDIA_ROOT), Path(settings.BROKER_DIR)):
        shutil.rmtree(path, ignore_errors=True)
    Path(settings.MEDIA_ROOT).mkdir(parents=True, exist_ok=True)
    for folder in getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).values():
        if isinstance(folder, str) and folder.startswith("/"):
            Path(folder).mkdir(parents=True, exist_ok=True)


@pytest.fixture(autouse=True)
def _fresh_catalog_caches() -> None:
    """No test sees catalog lookups another cached: ids are reused once its data is rolled
    back. The signal empties every per-process catalog cache (features.online's resolved
    features, serving.enrichment's entity keys)."""
    from features.signals import catalog_changed
    from serving import traffic

    catalog_changed.send(sender=_fresh_catalog_caches)
    # Nor the routes another test resolved (its versions, canaries and shadows are gone with
    # its data, but their ids come back), nor its canaries' windows.
    traffic.cache_clear()
    traffic.windows_clear()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: Any, django_db_blocker: Any) -> Iterator[WorkerProcess]:
    """One real worker process for the session; tests using it must be transaction=True."""
    from mlplatform.celery import app

    if not settings.CELERY_BROKER_URL.startswith("filesystem"):
        app.control.purge()  # the filesystem queue was emptied by _clean_var
    worker = WorkerProcess(name="session", concurrency=2).start()
    yield worker
    worker.stop()


@pytest.fixture
def start_worker(django_db_setup: Any) -> Iterator[Any]:
    """Factory for extra workers a test kills or runs side by side; all stopped afterwards."""
    started: list[WorkerProcess] = []

    def start(**kwargs: Any) -> WorkerProcess:
        worker = WorkerProcess(**kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def user(db: Any) -> Any:
    """alice, a member of the team `data` (everything created belongs to a team)."""
    from tests.factories import DEFAULT_TEAM, TeamFactory, UserFactory

    return UserFactory.create(
        username="alice", password="pw-alice-123", teams=[TeamFactory.create(name=DEFAULT_TEAM)]
    )


@pytest.fixture
def feature_editor(user: Any) -> Any:
    """`user` with every permission on the feature catalog: writes through the API need them."""
    from django.contrib.auth.models import Permission

    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="features"))
    return user


_token_names = itertools.count(1)


def api_key_for(user: Any, **kwargs: Any) -> str:
    """A new API token's key for `user`: full scope and the default lifetime unless `kwargs`
    (those of accounts.services.token_create) say otherwise."""
    from accounts.services import token_create

    kwargs.setdefault("name", f"test token {next(_token_names)}")
    _, key = token_create(user=user, **kwargs)
    return key


def client_for(user: Any, *, scheme: str = "Token") -> APIClient:
    """An API client that sends a new token of `user`, as a client application would."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {api_key_for(user)}")
    return client


def team_member(django_user_model: Any, name: str, team: Any, *, apps: tuple[str, ...]) -> Any:
    """A user in `team` (None: in no team) with every permission of the apps named."""
    from tests.factories import UserFactory

    return UserFactory.create(username=name, teams=[team] if team else [], apps=apps)


def run_coroutine(coroutine: Any) -> Any:
    """Runs an asyncio client to completion on a thread of its own: the browser tests' session
    (Playwright's sync API) keeps an event loop running on the main thread, where `asyncio.run`
    refuses to start another."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def admin_client_for(
    django_user_model: Any, name: str, team: Any, *, apps: tuple[str, ...]
) -> Client:
    """A browser signed in to the admin as staff of `team` with every permission of `apps`."""
    member = team_member(django_user_model, name, team, apps=apps)
    member.is_staff = True
    member.save()
    client = Client()
    client.force_login(member)
    return client


@pytest.fixture
def api_client(user: Any) -> APIClient:
    return client_for(user)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


def log_in(
    page: Any, next_path: str, username: str = "root", password: str = "pw-root-123"
) -> None:
    """Sign in through the sign-in page and land on `next_path`."""
    page.goto(f"/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#sign-in")
    page.wait_for_url(f"**{next_path}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def _outside(url: str, server: str) -> bool:
    """Whether the browser's request for `url` leaves the live server (data: and blob: URLs
    never leave the page)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return False
    return parts.netloc != urlsplit(server).netloc


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    """A page on the live server; the test fails if any request goes to another host (every
    page works offline: no CDN, no web fonts, no analytics)."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(20_000)
    outside: list[str] = []
    context.on(
        "request",
        lambda request: (
            outside.append(request.url) if _outside(request.url, live_server.url) else None
        ),
    )
    page = context.new_page()
    yield page
    context.close()
    if outside:
        pytest.fail(f"requests left the live server: {sorted(set(outside))}")
