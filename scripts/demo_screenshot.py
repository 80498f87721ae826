"""Screenshot of the `t2i demo` page for the README: docs/demo.png.

Serves the page with the shipped model in this process, types a held-out
caption into it in headless Chromium (the browser tests' setup,
serving/browser.py), draws, and saves the page, shrunk to a small PNG.

    python scripts/demo_screenshot.py [--out docs/demo.png] [--caption "..."]
"""

import argparse
import io
import os
import socket
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "demo.png"))
    p.add_argument("--caption", default="the digit 2 is on the left of the digit 9 .")
    p.add_argument("--width", type=int, default=1000, help="width of the PNG (default 1000)")
    args = p.parse_args(argv)

    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from serving import demo as demo_lib
    from serving.browser import Browser

    backend = demo_lib.LocalModel()
    page = demo_lib.Demo(backend, backend.config.text, demo_lib.example_captions(backend.config))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = demo_lib.serve(page, "127.0.0.1", port, block=False)
    browser = Browser(width=1400, height=1000)
    try:
        driver = browser.driver
        driver.get(f"http://127.0.0.1:{port}/")
        box = WebDriverWait(driver, 60).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "#caption textarea"))
        box.send_keys(Keys.CONTROL + "a", Keys.DELETE)
        box.send_keys(args.caption)
        driver.find_element(By.ID, "draw").click()
        WebDriverWait(driver, 120).until(
            lambda d: all(d.find_elements(By.CSS_SELECTOR, f"#{i} img")
                          for i in ("grid", "animation", "attention")))
        png = driver.get_screenshot_as_png()
    finally:
        browser.quit()
        app.close()
    shot = Image.open(io.BytesIO(png)).convert("RGB")
    height = round(shot.height * args.width / shot.width)
    shot = shot.resize((args.width, height), Image.LANCZOS).quantize(colors=64)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    shot.save(args.out, format="PNG", optimize=True)
    print(f"{args.out}: {shot.width}x{shot.height}, {os.path.getsize(args.out) // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
