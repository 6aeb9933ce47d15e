"""The editor's page in a real browser: headless Chromium from the system's packages, driven by Selenium.

One browser and one server for the module. Skipped, with the reason, only where no
browser is installed (``.ci/run`` installs Debian's ``chromium`` and
``chromium-driver``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from servers import running

import recommender as rec

pytest.importorskip("starlette", reason="the editor's page needs the [web] extra (starlette)")
webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need selenium")
from selenium.webdriver.common.by import By  # noqa: E402

CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "editor-secret"
HOSTILE = "<script>alert(1)</script> Storm harbour ferry"


def site() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "article_id": ["f1", "f2", "f3", "f4", "e1", "e2", "e3", "x1"],
            "title": ["Cup final goal", "Striker goal in cup", "Keeper saves penalty", "Cup semi final",
                      "Election vote", "Ballots counted", "Polls open", HOSTILE],
            "body": ["late goal wins cup final", "striker scores cup goal", "keeper penalty cup final",
                     "cup semi final goal", "votes cast election", "ballots counted election",
                     "polls open election vote", "storm harbour ferry cup"],
            "published": ["2024-05-01", "2024-04-02", "2024-05-03", "2024-03-04", "2024-05-01", "2024-05-02",
                          "2024-05-03", "2024-05-04"],
            "views": [100, 5000, 10, 20, 500, 20, 5, 1000],
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMEDRIVER).exists() and (shutil.which("chromium") or shutil.which("chromium-browser"))):
        pytest.skip("no Chromium here: apt-get install chromium chromium-driver (.ci/run does)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory):
    """Two services over two copies of one model: one with editing on, one read-only."""
    root = tmp_path_factory.mktemp("editor")
    model = rec.Recommender(min_df=1, max_df=1.0, latent_components=0, pool_size=7).fit(site())
    model.save(root / "editable")
    model.save(root / "readonly")
    with (
        running(rec.web.create_app(root / "editable", editor_token=TOKEN, interval=0.05)) as editable,
        running(rec.web.create_app(root / "readonly", interval=0.05)) as readonly,
    ):
        yield {"editable": editable, "readonly": readonly, "root": root}


def navigate(browser, action) -> None:
    """Do ``action`` (a submit or a click that loads a page) and wait until the new page replaced the old one.

    The old page is marked by a property of its window, which a new document does not have. (Waiting for the old
    page's element to go stale failed now and then: while the page is replaced, chromedriver may answer with
    "Node with given id does not belong to the document" rather than a stale element.) Errors of the driver
    while the page changes are waited out."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("window.__leaving = true")
    action()
    WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.execute_script("return window.__leaving === undefined && document.readyState === 'complete'")
    )


def listed(browser, column: int = 0) -> list[str]:
    section = browser.find_elements(By.CSS_SELECTOR, ".columns section")[column]
    return [
        row.get_attribute("data-article-id") for row in section.find_elements(By.CSS_SELECTOR, "tr[data-article-id]")
    ]


def test_search_then_the_list_exactly_as_readers_see_it_beside_other_settings(browser, sites) -> None:
    browser.get(sites["editable"] + "/editor")
    box = browser.find_element(By.NAME, "q")
    box.send_keys("cup")
    navigate(browser, box.submit)
    links = browser.find_elements(By.CSS_SELECTOR, "main table a")
    assert {link.text for link in links} >= {"Cup final goal", "Striker goal in cup", "Cup semi final"}
    navigate(browser, next(link for link in links if link.text == "Cup final goal").click)
    model = rec.load_model(sites["root"] / "editable")
    assert listed(browser, 0) == [r.article_id for r in model.recommend("f1", k=7)]
    assert listed(browser, 1) == [r.article_id for r in model.recommend("f1", k=7, half_life_days=30, diversity=0.3)]
    headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, ".columns h2")]
    assert headings == ["As readers see it", "With half_life_days=30, diversity=0.3"]
    first = browser.find_elements(By.CSS_SELECTOR, ".columns section")[0]
    assert "similarity" in first.text and "popularity" in first.text  # the score parts are shown
    right = browser.find_element(By.NAME, "right")
    right.clear()
    right.send_keys("popularity_weight=0")
    navigate(browser, right.submit)
    assert listed(browser, 1) == [r.article_id for r in model.recommend("f1", k=7, popularity_weight=0.0)]


def test_article_text_is_shown_as_text_never_run(browser, sites) -> None:
    browser.get(sites["editable"] + "/editor/articles/x1")
    assert browser.find_element(By.TAG_NAME, "h1").text == HOSTILE
    assert not browser.find_elements(By.CSS_SELECTOR, "main script")
    browser.get(sites["editable"] + "/editor?q=" + "%3Cscript%3E")
    assert HOSTILE in browser.find_element(By.CSS_SELECTOR, "main table").text


def test_editing_needs_the_token_and_a_pin_shows_first_after_reload(browser, sites) -> None:
    browser.get(sites["editable"] + "/editor/articles/f1")
    assert not browser.find_elements(By.NAME, "recommended_ids")  # no forms before the token
    token = browser.find_element(By.NAME, "token")
    token.send_keys("wrong")
    navigate(browser, token.submit)
    assert "Wrong editor token" in browser.page_source
    browser.get(sites["editable"] + "/editor/articles/f1")
    token = browser.find_element(By.NAME, "token")
    token.send_keys(TOKEN)
    navigate(browser, token.submit)
    pins = browser.find_element(By.NAME, "recommended_ids")
    pins.send_keys("e3")
    navigate(browser, pins.submit)
    assert "pin saved as version-000002" in browser.find_element(By.CLASS_NAME, "done").text
    browser.refresh()
    assert listed(browser, 0)[0] == "e3"
    row = browser.find_element(By.CSS_SELECTOR, ".columns section tr[data-article-id='e3']")
    assert "pinned" in row.text
    assert "pin" in browser.find_element(By.XPATH, "//h2[text()='Audit trail']/..").text
    assert rec.load_model(sites["root"] / "editable").pins == {"f1": ["e3"]}
    navigate(browser, browser.find_element(By.XPATH, "//button[text()='Unpin all']").click)
    assert listed(browser, 0)[0] != "e3"


def test_a_read_only_service_shows_no_forms_and_refuses_posts(browser, sites) -> None:
    import httpx2

    browser.get(sites["readonly"] + "/editor/articles/f1")
    assert "Read-only" in browser.page_source and not browser.find_elements(By.CSS_SELECTOR, "form[method=post]")
    refused = httpx2.post(sites["readonly"] + "/editor/pin", data={"source_id": "f1", "recommended_ids": "e3"})
    assert refused.status_code == 403
    forged = httpx2.post(sites["editable"] + "/editor/block", data={"article_ids": "f1", "csrf": "x"})
    assert forged.status_code == 401  # no session cookie: a cross-site form cannot edit
    assert rec.load_model(sites["root"] / "readonly").pins == {}
