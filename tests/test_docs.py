"""The documentation site builds with warnings as errors (docs/, README's build command), and its pages hold what
they should: the front page, the API page of Network.fit, and the learn pages in English and Japanese with their
formulas and the figures that the build draws from the package's own code; and, in a real headless Chromium, that
the front page, the API page of Network.fit and a tutorial page render (title, typeset formulas, loaded images),
with a screenshot of each."""

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from docs import browser as chromium

from pngs import assert_png

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def sphinx_build(builder, out):
    """sphinx-build -W -b builder docs out in a subprocess (autodoc imports and patches what it documents: in
    this process it would change the objects that other tests use); its return code."""
    command = [sys.executable, "-m", "sphinx", "-W", "-b", builder, "-q", str(DOCS), str(out)]
    env = dict(os.environ)
    if chromium.LOCAL_MATHJAX2.is_file():  # formulas that render without the network, for the browser test
        env["FASTBP_DOCS_MATHJAX2"] = str(chromium.LOCAL_MATHJAX2)
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    print(result.stdout[-5000:], result.stderr[-5000:])
    return result.returncode


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The HTML site, built once for this module: (output directory, sphinx's return code)."""
    out = tmp_path_factory.mktemp("docs") / "html"
    return out, sphinx_build("html", out)


def page(site, name):
    out, code = site
    assert code == 0, "sphinx -W -b html docs failed (its warnings are above)"
    path = out / name
    assert path.is_file(), f"{name} was not built"
    return path, path.read_text(encoding="utf-8")


def plain(text):
    """The page's text without its tags (code blocks are split into highlighted spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def title(text):
    return html.unescape(re.search(r"<title>(.*?)</title>", text, flags=re.S).group(1)).strip()


def images(path, text):
    """The files of the page's <img> tags, resolved against the page."""
    return [(path.parent / src).resolve() for src in re.findall(r'<img[^>]*\bsrc="([^"]+)"', text)]


def assert_generated_figure(path, text, name):
    """The page shows the figure ``name``, which the build drew into docs/_generated/ and copied to the site."""
    shown = [img for img in images(path, text) if img.name == name]
    assert shown, f"{path.name} has no <img> of {name}"
    assert shown[0].is_file() and shown[0].stat().st_size > 0, f"{shown[0]} is missing or empty"
    generated = DOCS / "_generated" / name
    assert generated.is_file() and generated.stat().st_size > 0, f"{generated} was not drawn"
    assert shown[0].read_bytes() == generated.read_bytes()


def test_the_build_passes_with_warnings_as_errors(site):
    out, code = site
    assert code == 0
    assert (out / "index.html").is_file()


def test_the_front_page_links_every_section(site):
    _, text = page(site, "index.html")
    assert title(text).startswith("fastbp")
    assert "pip install . && fastbp xor" in plain(text)
    for target in ("getting-started.html", "learn/index.html", "user-guide/index.html", "kernels.html", "jit.html",
                   "sklearn.html", "distributed.html", "performance.html", "api.html", "layout.html",
                   "changelog.html"):  # fmt: skip
        assert f'href="{target}' in text, f"index.html does not link {target}"


def test_the_api_reference_has_a_page_for_network_fit(site):
    path, text = page(site, "_generated/api/fastbp.Network.fit.html")
    assert title(text).startswith("fastbp.Network.fit")
    assert 'id="fastbp.Network.fit"' in text
    assert "Mini-batch training for whole epochs" in text  # the docstring
    for parameter in ("batch_size", "optimizer", "validation_data", "DivergenceError"):
        assert parameter in text
    _, api = page(site, "api.html")
    for name in ("fastbp.Network", "fastbp.kernels.dense_forward", "fastbp.jit.sgd_step",
                 "fastbp.sklearn.MLPClassifier", "fastbp.distributed.sweep", "fastbp.reference.backward"):  # fmt: skip
        assert f'href="_generated/api/{name}.html' in api, f"api.html does not link {name}"


@pytest.mark.parametrize(
    "name, heading, exercise",
    [
        ("learn/en.html", "Learn backprop (English)", "Exercise 1 (tutorial section 7.1)"),
        ("learn/ja.html", "誤差逆伝播法を学ぶ(日本語)", "問題 1(チュートリアル 7.1 節)"),
    ],
)
def test_the_learn_pages_put_formulas_next_to_kernels_and_show_the_figures(site, name, heading, exercise):
    path, text = page(site, name)
    assert title(text).startswith(heading)
    assert exercise in text  # the output of `fastbp exercise 1` (--lang ja), included from docs/_generated/
    assert "Exercise 2 (tutorial section 7.2)" in text or "問題 2(チュートリアル 7.2 節)" in text
    # the formulas, for MathJax, each next to the kernel that computes it
    for formula, kernel in [
        (r"z_j^{(l)} = \sum_i w_{ij}^{(l)} y_i^{(l-1)} + b_j^{(l)}", "dense_forward"),
        (r"\delta_j^{(L)} = \frac{\partial E}{\partial z_j^{(L)}}", "output_delta"),
        (r"\delta_j^{(l)} = \Big(\sum_k \delta_k^{(l+1)} w_{jk}^{(l+1)}\Big)", "hidden_delta"),
        (r"\frac{\partial E}{\partial w_{ij}^{(l)}} = \delta_j^{(l)}\, y_i^{(l-1)}", "weight_gradient"),
    ]:
        at = text.find(formula)
        assert at >= 0, f"{name} lacks the formula {formula}"
        assert f"fastbp.kernels.{kernel}" in text[at : at + 3000], f"{kernel} is not next to {formula}"
    assert 'class="math notranslate nohighlight"' in text
    for figure in ("activations.png", "xor-boundary.png"):
        assert_generated_figure(path, text, figure)


def test_the_performance_page_shows_the_generated_map(site):
    path, text = page(site, "performance.html")
    assert title(text).startswith("Performance")
    assert "asv machine --yes" in plain(text) and "asv preview" in plain(text)
    for figure in ("size_grid_zen3.png", "size_grid_epyc.png", "size_grid.png"):
        assert_generated_figure(path, text, figure)
    # the asv dashboard: a link into the site (where the build copies a published one) and its screenshot
    assert 'href="asv/index.html"' in text
    shot = [img for img in images(path, text) if img.name == "asv-dashboard.png"]
    assert shot, "performance.html lacks the dashboard's screenshot"
    assert_png(shot[0], (1280, 757))


def test_the_code_examples_run_as_doctests(tmp_path):
    """sphinx's doctest builder runs every doctest block of the pages (the shapes of Network.forward, exercise 1
    through the kernels, ...) and fails the build if one of them prints something else."""
    out = tmp_path / "doctest"
    assert sphinx_build("doctest", out) == 0
    report = (out / "output.txt").read_text(encoding="utf-8")
    summary = re.search(r"(\d+) tests\s+0 failures in tests", report)  # the summary of all documents
    assert summary and int(summary.group(1)) >= 10, report[-2000:]
    assert "0 failures in setup code" in report, report[-2000:]


# -- in a real browser -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's chromium and chromium-driver, selenium).  Skipped where they are missing,
    unless FASTBP_REQUIRE_BROWSER is set (CI installs them and sets it): then their absence fails."""
    reason = chromium.missing()
    if not reason and not chromium.LOCAL_MATHJAX2.is_file():
        reason = f"no local MathJax 2 at {chromium.LOCAL_MATHJAX2} (apt-get install libjs-mathjax)"
    if reason:
        if os.environ.get("FASTBP_REQUIRE_BROWSER"):
            pytest.fail(f"FASTBP_REQUIRE_BROWSER is set but this machine has {reason}")
        pytest.skip(reason)
    driver = chromium.open_browser()
    yield driver
    driver.quit()


@pytest.mark.parametrize(
    "name, heading, anchor, figures",
    [
        ("index.html", "fastbp", None, ["xor-boundary.png"]),
        ("_generated/api/fastbp.Network.fit.html", "fastbp.Network.fit", None, []),
        (
            "learn/en.html",
            "Learn backprop (English)",
            "the-hidden-error-terms",
            ["activations.png", "xor-boundary.png"],
        ),
    ],
)
def test_the_pages_render_in_chromium(site, browser, name, heading, anchor, figures):
    path, text = page(site, name)
    rendered = chromium.load(browser, path.as_uri())
    assert rendered["title"].startswith(heading), rendered["title"]
    assert rendered["heading"].strip().rstrip("#").strip().startswith(heading.split(" (")[0]), rendered["heading"]
    # every formula on the page typeset by MathJax, none of them a TeX error
    assert rendered["math_elements"] == text.count('class="math notranslate nohighlight"')
    assert rendered["typeset"] == rendered["math_elements"], rendered
    assert rendered["math_errors"] == 0, rendered
    if figures:
        assert rendered["typeset"] > 0, f"{name} shows no formula"
    for figure in figures:
        shown = [image for image in rendered["images"] if image["src"].endswith(figure)]
        assert shown, f"{name} shows no {figure}: {rendered['images']}"
        assert shown[0]["complete"] and shown[0]["width"] > 0 and shown[0]["height"] > 0, shown[0]
    if name.startswith("_generated/api"):  # the signature and the parameters of the docstring, laid out
        box = browser.execute_script(
            "const e = document.getElementById(arguments[0]); const r = e.getBoundingClientRect();"
            "return [r.width, r.height, e.textContent];", "fastbp.Network.fit")  # fmt: skip
        assert box[0] > 0 and box[1] > 0 and "batch_size" in box[2], box
    # kept where the README's docs build goes (docs/_build, not committed), to look at
    out = DOCS / "_build" / "screenshots" / (name.replace("/", "_").removesuffix(".html") + ".png")
    chromium.screenshot(browser, out, anchor)
    window = tuple(browser.execute_script("return [window.innerWidth, window.innerHeight]"))
    assert_png(out, window, max_bytes=4 * 2**20)
