"""Screenshots of the main pages at desktop and phone width, for docs/ui.md.

Runs only when asked: `MLPLATFORM_SCREENSHOTS=1` (`make screenshots`) writes docs/ui/<page>-
desktop.png and -phone.png, at device scale 1 and the screen's size (each well under 150 KB)."""

import os
from pathlib import Path
from typing import Any

import pytest

from serving import selectors
from tests.conftest import log_in
from tests.e2e.pages import DESKTOP, MAIN_PAGES, PHONE, USER, populate

OUT = Path(__file__).resolve().parents[2] / "docs" / "ui"
MAX_BYTES = 150_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("MLPLATFORM_SCREENSHOTS") != "1",
        reason="writes docs/ui/*.png only when MLPLATFORM_SCREENSHOTS=1 (make screenshots)",
    ),
]


@pytest.fixture(autouse=True)
def _fresh_resolution() -> None:
    selectors.resolution_cache_clear()


def test_screenshots_of_the_main_pages(page: Any) -> None:
    values = populate()
    OUT.mkdir(parents=True, exist_ok=True)
    log_in(page, "/", *USER)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        for main_page in MAIN_PAGES:
            page.goto(main_page.path.format(**values))
            page.wait_for_load_state("networkidle")
            path = OUT / f"{main_page.name}-{label}.png"
            page.screenshot(path=str(path), animations="disabled", caret="hide")
            assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size} bytes"
