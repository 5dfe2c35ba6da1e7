"""Every chapter page as a reader sees it, in a real browser (headless Chromium, 1280 px).

The smoke build (the ``smoke_book`` fixture, shared with ``test_book.py``) is served on
the loopback interface and each page of the table of contents is opened with the
network otherwise cut off, as on an offline machine. On each page:

- math is typeset by MathJax loaded from the book itself (no ``\\(``, ``\\[``, ``$$`` or
  ``$…$`` left in the text, every math element rendered, no script from another host);
- no raw equation label, ``{eq}`` role, ``Claim(`` repr or printed dict in the text
  (code, i.e. cell inputs, inline literals and API signatures, is not text);
- every image loaded (``naturalWidth > 0``);
- every claims table fits the 1280 px window: its verdict cells lie inside the window
  and inside every clipping box around them, and the table is not cut by its box;
- display equations fit the text column whole (no part hidden in a scroll box, none
  under its number);
- no severe message on the JavaScript console.

Chromium and chromedriver are Debian's packages (``make browser`` installs them; ``make
test`` does so first); the driver is Selenium (pinned in requirements.txt).
``SGDTEMP_SCREENSHOTS=DIR`` also saves a full-width screenshot of each page there.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from test_book import ROOT, toc_chapters

WIDTH, HEIGHT = 1280, 900

# Every equation label the chapters define: none may appear as text on a page.
LABELS = sorted({m.group(1) for md in (ROOT / "book").glob("*.md")
                 for m in re.finditer(r"^:label:\s*(\S+)", md.read_text(), re.M)})
RAW_TEXT = {
    "raw TeX delimiter": re.compile(r"\\\(|\\\[|\$\$"),
    # inline math the Markdown renderer left as text: a glued Markdown string pasted as
    # CommonMark (myst-nb's default for {glue:md}) keeps its $T$ literally
    "raw inline math ($…$)": re.compile(r"(?<![$\w])\$(?=[^$\s])[^$\n]{1,80}(?<=[^$\s])\$(?![$\w])"),
    "raw {eq} role": re.compile(r"\{eq\}|\{math\}"),
    "equation cited by name (eq. WORD)": re.compile(r"\beq\.\s+(?![\d(])[A-Za-z]"),
    "Claim( repr": re.compile(r"\bClaim\("),
    "printed dict": re.compile(r"\{'[A-Za-z_]+': "),
}

# Run in the page: the measurements the checks need, as plain data.
PAGE_FACTS_JS = r"""
const W = window.innerWidth;
const box = r => ({left: r.left, right: r.right, top: r.top, bottom: r.bottom});
const clipped = (el) => {   // is el cut by an ancestor that hides its overflow?
  const r = el.getBoundingClientRect();
  for (let a = el.parentElement; a; a = a.parentElement) {
    const ox = getComputedStyle(a).overflowX;
    if (ox === 'visible') continue;
    const ar = a.getBoundingClientRect();
    if (r.left < ar.left - 1 || r.right > ar.right + 1) return true;
  }
  return false;
};
const tables = [...document.querySelectorAll('table.sgdtemp-claims')].map(t => {
  const heads = [...t.querySelectorAll('thead th')].map(th => th.textContent.trim());
  let col = heads.findIndex(h => /verdict|✓/.test(h));
  const cells = [...t.querySelectorAll('tbody tr')].map(tr => tr.children[col]).filter(Boolean);
  const bad = cells.filter(c => { const r = c.getBoundingClientRect();
                                  return r.left < 0 || r.right > W || clipped(c); });
  const wrap = t.parentElement;
  return {heads, col, n: cells.length, bad: bad.length, right: t.getBoundingClientRect().right,
          cut: wrap.scrollWidth > wrap.clientWidth + 1 && getComputedStyle(wrap).overflowX !== 'visible'};
});
const article = document.querySelector('article.bd-article') || document.body;
const aright = article.getBoundingClientRect().right;
const equations = [...document.querySelectorAll('mjx-container[display="true"]')].map(el => {
  const math = (el.querySelector('mjx-math') || el).getBoundingClientRect();
  const holder = el.closest('div.math');
  const eqno = holder && holder.querySelector('.eqno');
  const n = eqno ? eqno.getBoundingClientRect() : null;
  return {id: (holder && holder.id) || el.textContent.slice(0, 40),
          hidden: el.scrollWidth - el.clientWidth, right: math.right, aright,
          overlap: !!(n && n.width && n.left < math.right && n.right > math.left
                      && n.top < math.bottom && n.bottom > math.top)};
});
const imgs = [...document.images].map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}));
const scripts = [...document.scripts].filter(s => s.src).map(s => s.src);
const mathEls = [...document.querySelectorAll('div.math, span.math')];
const untypeset = mathEls.filter(m => !m.querySelector('mjx-container')).length;
// The text a reader reads: code (cell inputs, inline literals, API signatures) aside.
const prose = document.body.cloneNode(true);
prose.querySelectorAll('.cell_input, .highlight, code, dt.sig, script, style, mjx-assistive-mml')
     .forEach(e => e.remove());
document.body.appendChild(prose); prose.style.display = 'none';
const text = prose.innerText || prose.textContent;
prose.remove();
return {text, tables, equations, imgs, scripts,
        nMath: mathEls.length, untypeset, host: location.host,
        mathjax: !!(window.MathJax && window.MathJax.version), docWidth: document.documentElement.scrollWidth, W};
"""

WAIT_FOR_MATHJAX_JS = r"""
const done = arguments[arguments.length - 1];
const start = Date.now();
(function poll() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done('typeset'), e => done('error: ' + e));
  } else if (Date.now() - start > 15000) { done('no MathJax'); }
  else { setTimeout(poll, 100); }
})();
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output for failures
        pass


@pytest.fixture(scope="module")
def served_book(smoke_book):
    assert smoke_book.returncode == 0, smoke_book.log
    handler = functools.partial(_QuietHandler, directory=str(smoke_book.html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if not (binary and driver_path):
        pytest.fail("Chromium and chromedriver are not installed: run `make browser` "
                    "(Debian's chromium and chromium-driver packages).")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={WIDTH},{HEIGHT}", "--hide-scrollbars",
                # Offline, as a reader without internet: every host name but the
                # loopback address fails to resolve.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=driver_path))
    driver.set_window_size(WIDTH, HEIGHT)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def page_problems(driver, url: str, shots: Path | None, name: str) -> list[str]:
    """What a reader would trip on at ``url``, one line each (empty: none)."""
    driver.get_log("browser")  # drop messages from the previous page
    driver.get(url)
    status = driver.execute_async_script(WAIT_FOR_MATHJAX_JS)
    facts = driver.execute_script(PAGE_FACTS_JS)
    problems = []
    if facts["W"] != WIDTH:
        problems.append(f"window is {facts['W']} px wide, not {WIDTH}")

    # Math: typeset, by a MathJax served from the book.
    if facts["nMath"]:
        if status != "typeset" or not facts["mathjax"]:
            problems.append(f"MathJax did not typeset the page ({status})")
        if facts["untypeset"]:
            problems.append(f"{facts['untypeset']} of {facts['nMath']} math elements untypeset")
    foreign = [s for s in facts["scripts"]
               if re.match(r"^https?://", s) and not s.split("/")[2] == facts["host"]]
    if foreign:
        problems.append(f"scripts loaded from another host: {foreign}")

    # Text a reader should never see.
    text = facts["text"]
    for what, pattern in RAW_TEXT.items():
        for m in list(pattern.finditer(text))[:3]:
            problems.append(f"{what}: …{text[max(0, m.start() - 40):m.end() + 40]!r}…")
    for label in LABELS:
        if re.search(rf"(?<![\w-]){re.escape(label)}(?![\w-])", text):
            problems.append(f"raw equation label {label!r} in the text")

    # Figures loaded.
    for img in facts["imgs"]:
        if not img["ok"]:
            problems.append(f"image not loaded: {img['src']}")

    # Claims tables readable in the window, verdict first in sight.
    for i, t in enumerate(facts["tables"]):
        if t["col"] < 0:
            problems.append(f"claims table {i + 1} has no verdict column (headers {t['heads']})")
        elif t["bad"]:
            problems.append(f"claims table {i + 1}: {t['bad']} of {t['n']} verdict cells "
                            f"outside the {WIDTH} px window or clipped")
        if t["right"] > WIDTH or t["cut"]:
            problems.append(f"claims table {i + 1} is cut: its right edge is at "
                            f"{t['right']:.0f} px")
    if facts["docWidth"] > WIDTH:
        problems.append(f"the page scrolls sideways ({facts['docWidth']} px wide)")

    # Display equations whole inside the text column: at 1280 px nothing is hidden in a
    # scroll box (the stylesheet lets them scroll only on narrower screens).
    for eq in facts["equations"]:
        if eq["hidden"] > 1 or eq["right"] > eq["aright"] + 1:
            problems.append(f"equation {eq['id']!r} does not fit the text column "
                            f"({max(eq['hidden'], eq['right'] - eq['aright']):.0f} px hidden)")
        if eq["overlap"]:
            problems.append(f"equation {eq['id']!r} runs under its number")

    # The JavaScript console.
    for entry in driver.get_log("browser"):
        if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]:
            problems.append(f"console error: {entry['message'][:300]}")

    if shots is not None:
        total = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(WIDTH, min(total + 150, 16000))
        driver.save_screenshot(str(shots / f"{name}.png"))
        driver.set_window_size(WIDTH, HEIGHT)
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("chapter", toc_chapters())
def test_page_reads_well_in_a_browser(chapter, served_book, browser):
    shots = os.environ.get("SGDTEMP_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
    problems = page_problems(browser, f"{served_book}/book/{chapter}.html",
                             Path(shots) if shots else None, chapter)
    assert not problems, f"{chapter}.html at {WIDTH} px:\n  " + "\n  ".join(problems)
