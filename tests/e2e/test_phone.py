"""Browser: every main page at desktop and at phone width (390 px) — no sideways page scroll,
no server errors, every column of a table still there (scrolling inside its own wrapper)."""

from typing import Any

import pytest

from serving import selectors
from tests.conftest import log_in
from tests.e2e.pages import DESKTOP, MAIN_PAGES, PHONE, USER, populate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Each table's header cells that are not rendered, or fall outside every scrolling box around
# them (a column the page hides instead of letting it scroll into view).
HIDDEN_COLUMNS = """() => [...document.querySelectorAll('main table th')].filter(th => {
  const box = th.getBoundingClientRect();
  if (box.width === 0 || getComputedStyle(th).display === 'none'
      || getComputedStyle(th).visibility === 'hidden') return true;
  let up = th.parentElement;
  while (up && up !== document.body) {
    const style = getComputedStyle(up);
    if (['auto', 'scroll'].includes(style.overflowX)) return false;
    if (style.overflowX === 'hidden' && box.right > up.getBoundingClientRect().right) return true;
    up = up.parentElement;
  }
  return box.right > document.documentElement.clientWidth;
}).map(th => th.innerText)"""


@pytest.fixture(autouse=True)
def _fresh_resolution() -> None:
    selectors.resolution_cache_clear()


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_main_page_fits_the_screen(page: Any, size: dict[str, int]) -> None:
    # given a member of a team with models, features and jobs, on a screen of this width
    values = populate()
    page.set_viewport_size(size)
    errors: list[str] = []
    page.on("response", lambda r: errors.append(r.url) if r.status >= 500 else None)
    log_in(page, "/", *USER)

    for main_page in MAIN_PAGES:
        # when they open each main page
        response = page.goto(main_page.path.format(**values))

        # then it answers, and nothing is wider than the screen or hidden
        assert response is not None
        assert response.status == 200, main_page.path
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= size["width"], f"{main_page.path} is {width} px wide"
        assert page.evaluate(HIDDEN_COLUMNS) == [], main_page.path
    assert errors == []


def test_the_models_table_scrolls_inside_its_wrapper_on_a_phone(page: Any) -> None:
    # given the models list on a phone
    populate()
    page.set_viewport_size(PHONE)
    log_in(page, "/models/", *USER)

    # then the table keeps all its columns, and the wrapper (not the page) scrolls to the last
    wrap = page.locator("#models").locator("xpath=..")
    assert page.locator("#models thead th").count() >= 6
    page.locator("#models thead th").last.scroll_into_view_if_needed()
    assert wrap.evaluate("e => e.scrollLeft") > 0
    assert page.evaluate("window.scrollX") == 0
    assert page.locator("#models thead th").last.is_visible()


def test_the_top_bar_wraps_on_a_phone(page: Any) -> None:
    # given any page on a phone
    populate()
    page.set_viewport_size(PHONE)
    log_in(page, "/models/", *USER)

    # then every link of the top bar is on screen
    for link in page.locator("header.topbar a").all():
        box = link.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"], link.inner_text()
