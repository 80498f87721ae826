"""Headless Chromium (Debian's chromium + chromium-driver) driven by Selenium: the demo page's browser
tests and scripts/demo_screenshot.py. Selenium is a test extra (requirements-test.txt)."""

import os
import shutil
import tempfile

CHROMIUM = os.environ.get("T2I_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("T2I_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         "--disable-sync", "--disable-quic", "--disable-extensions")


class Browser:
    """A Selenium Chrome driver on the system's Chromium with a fresh profile; .quit() cleans up."""

    def __init__(self, width: int = 1400, height: int = 1000):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
        if missing:
            raise RuntimeError(f"missing {', '.join(missing)}: install Debian's chromium and "
                               f"chromium-driver (apt-get install -y chromium chromium-driver; "
                               f".ci/run does)")
        self.profile = tempfile.mkdtemp(prefix="t2i-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS + (f"--user-data-dir={self.profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        # An explicit driver path: Selenium Manager never downloads a browser or driver.
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
