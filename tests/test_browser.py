"""ecpe serve end to end in headless Chromium: load the page, submit the sample, find the drawing.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``) and the
``selenium`` package (in the ``test`` extra); without them the test is skipped and says why.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

pytest.importorskip("fastapi", reason="ecpe serve needs the 'serve' extra: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="ecpe serve needs the 'serve' extra: pip install -e '.[serve]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium: pip install -e '.[test]'")

CHROMIUM = os.environ.get("ECPE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("ECPE_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
MISSING = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"headless Chromium not installed ({', '.join(MISSING)} "
                                                      "missing): apt-get install -y chromium chromium-driver")

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--window-size=1200,1000"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from ecpe.inference import Extractor
    from ecpe.serve.app import create_app
    from serving import serve_in_thread
    from tiny_model import make_tiny_model

    path = make_tiny_model(tmp_path_factory.mktemp("browser") / "tiny.pt")
    app = create_app(Extractor.load(path), max_chars=300)
    with serve_in_thread(app, host="127.0.0.1") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")
    profile = tempfile.mkdtemp(prefix="ecpe-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_page_draws_pairs(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from ecpe.serve.app import SAMPLE_TEXT

    browser.get(server + "/")
    wait = WebDriverWait(browser, 60)
    text = browser.find_element(By.ID, "text")
    assert text.get_attribute("value") == SAMPLE_TEXT
    browser.find_element(By.ID, "extract").click()
    emotion = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".clause.emotion")))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "svg .arrow")))

    clauses = browser.find_elements(By.CSS_SELECTOR, "#clauses .clause")
    assert [c.find_element(By.CLASS_NAME, "txt").text for c in clauses][:2] == ["昨天上午", "警察把丢失的钱交给了老人"]
    assert "emotion probability" in emotion.get_attribute("title")  # scores on hover
    assert browser.find_elements(By.CSS_SELECTOR, ".clause.cause")
    arrows = browser.find_elements(By.CSS_SELECTOR, "svg .arrow")
    assert len(arrows) == 4  # the tiny model links each clause to the one before it
    title = arrows[0].find_element(By.TAG_NAME, "title").get_attribute("textContent")
    assert "→ cause" in title and "score" in title
    cells = browser.find_elements(By.CSS_SELECTOR, "#matrix td")
    assert len(cells) == len(clauses) ** 2 and cells[0].get_attribute("title").startswith("M̂[")
    assert browser.execute_script("return document.body.dataset.state") == "done"
    assert not [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]


def test_page_shows_the_model_card(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    card = WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "model-card").is_displayed()
                                            and d.find_element(By.ID, "model-card"))
    card.find_element(By.TAG_NAME, "summary").click()
    keys = [e.text for e in card.find_elements(By.TAG_NAME, "dt")]
    values = dict(zip(keys, (e.text for e in card.find_elements(By.TAG_NAME, "dd"))))
    assert {"model", "data", "vocabulary", "segmenter", "language", "trained"} <= set(keys), keys
    assert values["model"] == "e2eecpe" and values["language"].startswith("Chinese")


def test_page_shows_errors(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    browser.execute_script("document.getElementById('text').value = '好'.repeat(301)")
    browser.find_element(By.ID, "extract").click()
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.body.dataset.state") == "error")
    status = browser.find_element(By.ID, "status").text
    assert "body.text" in status and "limit is 300" in status


def test_docs_page_readable_offline(server, browser):
    """/docs shows Swagger UI from a CDN, or, without internet (as here), a plain reference of the API."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/docs")
    WebDriverWait(browser, 60).until(lambda d: "/extract" in d.find_element(By.ID, "swagger-ui").text)
