"""Screenshot of the ecpe page with a real result: serve a model on 127.0.0.1, submit the sample, save a PNG.

    python benchmarks/screenshot.py --model runs/demo/fold1/model.pt --out docs/serve_screenshot.png

Needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver fonts-noto-cjk; the
fonts draw the Chinese text) and selenium (in the ``test`` extra). ``--tiny`` uses a tiny untrained model.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a model.pt written by ecpe train")
    src.add_argument("--tiny", action="store_true", help="use a tiny untrained model (for trying the script)")
    p.add_argument("--out", default="docs/serve_screenshot.png", help="PNG to write (default docs/serve_screenshot.png)")
    p.add_argument("--text", help="text to submit (default: the page's sample)")
    p.add_argument("--threshold", type=float, help="pair threshold to set on the page (default: the model's)")
    p.add_argument("--width", type=int, default=1100, help="window width in pixels (default 1100)")
    p.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    p.add_argument("--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    args = p.parse_args(argv)

    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
    except ModuleNotFoundError:
        print("screenshot.py needs selenium: pip install -e '.[test]'", file=sys.stderr)
        return 2
    for exe in (args.chromium, args.chromedriver):
        if not os.path.exists(exe):
            print(f"{exe} not found: apt-get install -y chromium chromium-driver fonts-noto-cjk", file=sys.stderr)
            return 2

    from ecpe.inference import Extractor
    from ecpe.serve.app import create_app
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test helpers
    from serving import serve_in_thread

    tmp = tempfile.mkdtemp(prefix="ecpe-shot-")
    try:
        if args.tiny:
            from tiny_model import make_tiny_model

            model = make_tiny_model(Path(tmp) / "tiny.pt")
        else:
            model = args.model
        app = create_app(Extractor.load(model))
        options = Options()
        options.binary_location = args.chromium
        for flag in FLAGS + [f"--window-size={args.width},900", f"--user-data-dir={tmp}/profile"]:
            options.add_argument(flag)
        os.environ.setdefault("SE_AVOID_STATS", "true")
        with serve_in_thread(app, host="127.0.0.1") as url:
            driver = webdriver.Chrome(service=Service(executable_path=args.chromedriver), options=options)
            try:
                driver.get(url + "/")
                wait = WebDriverWait(driver, 60)
                if args.text is not None:
                    driver.execute_script("document.getElementById('text').value = arguments[0]", args.text)
                if args.threshold is not None:
                    driver.execute_script("document.getElementById('threshold').value = arguments[0]",
                                          str(args.threshold))
                wait.until(lambda d: "loading" not in d.find_element(By.ID, "model-info").text)
                driver.find_element(By.ID, "extract").click()
                wait.until(lambda d: d.execute_script("return document.body.dataset.state") in ("done", "error"))
                if driver.execute_script("return document.body.dataset.state") == "error":
                    print("the page shows an error: " + driver.find_element(By.ID, "status").text, file=sys.stderr)
                    return 1
                n_pairs = len(driver.find_elements(By.CSS_SELECTOR, "svg .arrow"))
                # the whole page, not only the window: emulate a viewport as tall as the page
                height = driver.execute_script("return document.documentElement.scrollHeight")
                driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                    "width": args.width, "height": height, "deviceScaleFactor": 1, "mobile": False})
                driver.execute_script("window.dispatchEvent(new Event('resize'))")  # redraw arrows at the new size
                time.sleep(0.5)
                out = Path(args.out)
                out.parent.mkdir(parents=True, exist_ok=True)
                if not driver.save_screenshot(str(out)):
                    print("could not save the screenshot", file=sys.stderr)
                    return 1
            finally:
                driver.quit()
        print(f"screenshot: {out} ({n_pairs} pairs drawn, model {model})")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
