"""Headless Chromium through Selenium, for the board's browser tests and bench scripts only.

Debian's ``chromium`` and ``chromium-driver`` (``make browser-tools``) are used by path, so
Selenium never downloads a browser or a driver. ``selenium`` is a dev dependency: nothing the
board serves imports this module.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["ARRIVALS_JS", "CHROMEDRIVER", "CHROMIUM", "chromium", "wait_until"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-default-apps", "--disable-extensions",
         "--password-store=basic", "--use-mock-keychain", "--hide-scrollbars")

#: Records, in the page, when each card appears or changes: ``window.__arrivals`` gets
#: ``[alert_id, revision, Date.now()]`` per card node inserted into the list. Measured on the
#: page itself (after the event arrived, was parsed and drawn), not by polling from outside.
ARRIVALS_JS = """
if (!window.__arrivals) {
  window.__arrivals = [];
  new MutationObserver((records) => {
    const now = Date.now();
    for (const record of records) for (const node of record.addedNodes) {
      if (node.dataset && node.dataset.alertId) {
        window.__arrivals.push([node.dataset.alertId, Number(node.dataset.revision), now]);
      }
    }
  }).observe(document.getElementById('alerts'), {childList: true});
}
"""

T = TypeVar("T")


def chromium(user_data_dir: Path, *, width: int = 1280, height: int = 900,
             log_path: Path | None = None) -> Any:
    """A headless Chromium (a ``selenium.webdriver.Chrome``) with a fresh profile in
    ``user_data_dir``, its console kept for ``get_log("browser")``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            raise RuntimeError(f"{path} is missing: run `make browser-tools` (Debian's "
                               "chromium and chromium-driver)")
    if user_data_dir.exists():
        shutil.rmtree(user_data_dir)
    user_data_dir.mkdir(parents=True)
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(CHROMEDRIVER, log_output=str(log_path) if log_path else None)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


def wait_until(check: Callable[[], T], timeout: float, what: str, *, every: float = 0.05) -> T:
    """Poll ``check()`` until it returns something truthy; AssertionError naming ``what``
    after ``timeout`` seconds (exceptions of the check count as not yet)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # a stale element while the page redraws, say
            last = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}"
                         + (f" (last error: {last!r})" if last else ""))
