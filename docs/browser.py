"""Load pages of the built site (or of asv's dashboard) in a real headless Chromium, screenshot them and say what
rendered.  Used by tests/test_docs.py and tests/test_asv.py, and from the command line for the screenshots that
the docs show:

    python docs/browser.py ".asv/html/index.html#summarylist" docs/images/asv-dashboard.png --http --wait "table"

Needs Debian's ``chromium`` and ``chromium-driver`` packages (``apt-get install chromium chromium-driver``) and
``selenium`` (in the test extra).  The site must be built with ``FASTBP_DOCS_MATHJAX2`` set to a local MathJax 2
(Debian's ``libjs-mathjax``: /usr/share/javascript/mathjax/MathJax.js) for its formulas to render offline.
"""

import argparse
import contextlib
import functools
import http.server
import shutil
import threading
import time
from pathlib import Path

CHROMIUM = "chromium"
CHROMEDRIVER = "chromedriver"
LOCAL_MATHJAX2 = Path("/usr/share/javascript/mathjax/MathJax.js")
WINDOW = (1280, 1200)

# What a rendered page shows, measured in the browser: its title, its formulas typeset by MathJax (and those
# MathJax could not parse), and the natural size of each image once loaded.
RENDERED = """
const hub = window.MathJax && MathJax.Hub;
const jax = hub ? hub.getAllJax() : [];
return {
    title: document.title,
    heading: (document.querySelector("h1") || {}).textContent || "",
    math_elements: document.querySelectorAll("span.math, div.math").length,
    typeset: jax.length,
    math_errors: jax.filter(j => j.root && j.root.toMathML("").includes("merror")).length,
    mathjax_busy: hub ? hub.queue.pending + hub.queue.running : 0,
    images: Array.from(document.images).map(i => ({
        src: i.getAttribute("src"), complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})),
};
"""


def missing():
    """What this machine lacks to run the browser, as a sentence, or '' if nothing."""
    lacking = [name for name in (CHROMIUM, CHROMEDRIVER) if shutil.which(name) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        lacking.append("selenium (pip install selenium)")
    return f"no {', '.join(lacking)}" if lacking else ""


def open_browser(window=WINDOW):
    """A headless Chromium under chromedriver, with file:// pages allowed to load their neighbours."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={window[0]},{window[1]}", "--allow-file-access-from-files"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(shutil.which(CHROMEDRIVER)), options=options)


@contextlib.contextmanager
def served(directory):
    """The URL of ``directory`` served over HTTP on a free local port, for pages that fetch their data
    (asv's dashboard reads JSON files, which Chromium does not fetch from file:// pages)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def wait_until(driver, script, timeout=30.0):
    """Poll ``script`` (JavaScript returning a truthy value when done) until it is true; its last value."""
    deadline = time.monotonic() + timeout
    value = driver.execute_script(script)
    while not value and time.monotonic() < deadline:
        time.sleep(0.1)
        value = driver.execute_script(script)
    return value


def load(driver, url, wait_for=None, timeout=30.0):
    """Open ``url``, wait for the CSS selector ``wait_for`` and for MathJax to finish (if the page has it);
    returns what rendered (see RENDERED), with ``found``: False if ``wait_for`` never appeared."""
    driver.get(url)
    wait_until(driver, "return document.readyState === 'complete'", timeout)
    found = not wait_for or wait_until(driver, f"return document.querySelector({wait_for!r}) !== null", timeout)
    wait_until(
        driver,
        "const h = window.MathJax && MathJax.Hub;"
        "return !document.querySelector('span.math, div.math') || (h && h.queue.pending + h.queue.running === 0"
        " && h.getAllJax().length > 0);",
        timeout,
    )
    return dict(driver.execute_script(RENDERED), found=bool(found))


def screenshot(driver, path, anchor=None):
    """A PNG of the window at ``path``, scrolled to the element of id ``anchor`` if given."""
    if anchor:
        driver.execute_script(f"document.getElementById({anchor!r}).scrollIntoView()")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(path)):
        raise RuntimeError(f"chromium saved no screenshot at {path}")
    return Path(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Screenshot a page in headless Chromium.")
    parser.add_argument("page", help="an HTML file, optionally with a #fragment (.asv/html/index.html#summarylist)")
    parser.add_argument("png", type=Path)
    parser.add_argument("--wait", help="CSS selector of an element to wait for")
    parser.add_argument("--anchor", help="id of the element to scroll to")
    parser.add_argument("--http", action="store_true", help="serve the page's directory over HTTP (asv's dashboard)")
    args = parser.parse_args(argv)
    reason = missing()
    if reason:
        parser.error(reason)
    path, _, fragment = str(args.page).partition("#")  # index.html#summarylist: asv's list view
    page = Path(path).resolve()
    driver = open_browser()
    try:
        with served(page.parent) if args.http else contextlib.nullcontext(page.parent.as_uri() + "/") as base:
            rendered = load(driver, base + page.name + (f"#{fragment}" if fragment else ""), args.wait)
            screenshot(driver, args.png, args.anchor)
    finally:
        driver.quit()
    print(f"{args.png}: {rendered['title']!r}, {rendered['typeset']} formulas, {len(rendered['images'])} images")
    if not rendered["found"]:
        raise SystemExit(f"{args.wait!r} never appeared on the page: it did not render (see {args.png})")


if __name__ == "__main__":
    main()
