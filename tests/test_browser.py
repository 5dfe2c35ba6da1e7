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

What a reader sees (issue 23), each its own test so that a page's failures read one by one:

- every figure has a caption (myst-nb figure metadata: ``<figure>`` with a ``<figcaption>``)
  and is shown at 60% or more of its drawn size (its natural width at the figures' dpi:
  the PNGs carry twice the pixels, ``savefig.dpi / figure.dpi``);
- no ``nan``, no parameter name of the chapter (a name with an underscore, where a value
  belongs) and no file-system path in the text a reader reads (prose, glued values, tables,
  inline code outside code cells; folded content and the API reference aside);
- the claims tables and the claims report's tables lie inside the text column, nothing of
  them hidden in a scroll box;
- visible prose outweighs visible code: words of prose (figure captions included) per word of
  code in the code cells shown unfolded, reported per page with the longest visible cell.

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
// What a reader sees (issue 23). Folded content (a closed <details>, e.g. a hidden cell's
// input or an API dropdown) is not seen; the API reference (dl.py) is reference, not prose.
const seen = el => el.getClientRects().length > 0 && !el.closest('details:not([open])');
const figures = [...article.querySelectorAll('img')].filter(seen).map(i => {
  const fig = i.closest('figure');
  const cap = fig && fig.querySelector('figcaption');
  return {src: i.getAttribute('src'), shown: i.getBoundingClientRect().width,
          natural: i.naturalWidth, caption: cap ? cap.innerText.trim() : ''};
});
const arect = article.getBoundingClientRect();
const reportTables = [...article.querySelectorAll('table')].filter(seen).map(t => {
  const r = t.getBoundingClientRect();
  let hidden = 0;
  for (let a = t.parentElement; a && a !== article; a = a.parentElement) {
    if (getComputedStyle(a).overflowX !== 'visible') hidden = Math.max(hidden, a.scrollWidth - a.clientWidth);
  }
  return {cls: t.className, caption: (t.caption ? t.caption.innerText : '').slice(0, 60),
          right: r.right, width: r.width, hidden, aleft: arect.left, aright: arect.right};
});
const reader = article.cloneNode(true);
reader.querySelectorAll('details:not([open]), .toggle-details__container, dl.py, script, style, '
                        + 'mjx-assistive-mml, .cell_input, div.highlight, pre, .sgdtemp-config')
      .forEach(e => e.remove());
const inline = [...reader.querySelectorAll('code')].filter(c => !c.closest('.cell_output'))
      .map(c => c.textContent);
reader.querySelectorAll('code').forEach(e => e.remove());
document.body.appendChild(reader); reader.style.display = 'none';
const readerText = reader.innerText || reader.textContent;
// prose: the reader's text outside code cells, figure captions included
reader.querySelectorAll('.cell_output').forEach(o => {
  const caps = [...o.querySelectorAll('figcaption')].map(c => c.textContent).join(' ');
  o.replaceWith(document.createTextNode(' ' + caps + ' '));
});
reader.querySelectorAll('mjx-container').forEach(m => m.replaceWith(document.createTextNode(' x ')));
const proseText = reader.innerText || reader.textContent;
reader.remove();
const codeCells = [...article.querySelectorAll('.cell_input')].filter(seen).map(c => c.innerText);
return {text, tables, equations, imgs, scripts, figures, reportTables, readerText, inline,
        proseText, codeCells,
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
    FACTS[name] = facts
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


# ---------------------------------------------------------------- what a reader sees

#: Facts of each page, measured once (by the first test that opens it).
FACTS: dict[str, dict] = {}
#: A figure must be shown at this fraction of its drawn size or more.
MIN_FIGURE_SCALE = 0.6
#: Visible words of prose per word of visible code, at least (QuantEcon: 1.6–6.1).
MIN_PROSE_TO_CODE = 1.5
#: Lines of the longest code cell a reader may be shown (issue 23): longer computation
#: belongs in the library, plots behind ``hide-input``.
MAX_VISIBLE_CELL_LINES = 30
NAN = re.compile(r"(?<![\w.])nan(?![\w(])", re.I)
PATH = re.compile(r"(?<![\w:/.])(?:~|/(?:home|tmp|work|root|usr|var|opt|mnt|srv|Users|private|etc|proc))"
                  r"/[\w.+-]+(?:/[\w.+-]*)*")


def drawn_scale() -> float:
    """Pixels of a figure's PNG per pixel of its drawn size: savefig.dpi / figure.dpi of the
    book's style (2: "retina" PNGs shown at their 1x size)."""
    import matplotlib as mpl

    from sgdtemp import plotting

    plotting.use_style()
    return mpl.rcParams["savefig.dpi"] / mpl.rcParams["figure.dpi"]


def parameter_names(chapter: str) -> list[str]:
    """The chapter's parameters whose names cannot be words of prose (they hold an
    underscore); ``fidelity`` and ``seed`` are every chapter's and are named as such."""
    from sgdtemp.chapters import parameter_set

    return [p.name for p in parameter_set(chapter).params if "_" in p.name]


def figure_problems(facts: dict, scale: float) -> list[str]:
    out = []
    for f in facts["figures"]:
        name = (f["src"] or "").rsplit("/", 1)[-1][:16]
        if not f["caption"]:
            out.append(f"figure {name} has no caption")
        drawn = f["natural"] / scale
        if drawn and f["shown"] < MIN_FIGURE_SCALE * drawn:
            out.append(f"figure {name} is shown at {100 * f['shown'] / drawn:.0f}% of its drawn "
                       f"size ({f['shown']:.0f} of {drawn:.0f} px)")
    return out


def leak_problems(facts: dict, chapter: str) -> list[str]:
    text = facts["readerText"] + "\n" + "\n".join(facts["inline"])
    out = []
    for what, pattern in (("nan", NAN), ("file-system path", PATH)):
        for m in list(pattern.finditer(text))[:3]:
            out.append(f"{what} in the text: …{text[max(0, m.start() - 40):m.end() + 30]!r}…")
    for name in parameter_names(chapter):
        m = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)
        if m:
            out.append(f"parameter name {name!r} in the text: "
                       f"…{text[max(0, m.start() - 40):m.end() + 30]!r}…")
    return out


def table_problems(facts: dict, chapter: str) -> list[str]:
    """Claims tables (every page) and every table of the claims report: inside the text
    column, nothing of them in a scroll box."""
    out = []
    for t in facts["reportTables"]:
        if chapter != "claims_report" and not re.search(r"sgdtemp-(claims|report)", t["cls"]):
            continue
        if t["right"] > t["aright"] + 1 or t["hidden"] > 1:
            out.append(f"table {t['caption'] or t['cls']!r} leaves the text column: right edge "
                       f"{t['right']:.0f} px, column {t['aleft']:.0f}–{t['aright']:.0f} px, "
                       f"{t['hidden']:.0f} px hidden in a scroll box")
    return out


def words(text: str) -> int:
    return len(text.split())


def prose_and_code(facts: dict) -> dict:
    """Visible words of prose and of code, their ratio, and the longest visible cell."""
    prose = words(facts["proseText"])
    code = sum(words(c) for c in facts["codeCells"])
    longest = max((len(c.rstrip().splitlines()) for c in facts["codeCells"]), default=0)
    return {"prose": prose, "code": code, "ratio": prose / code if code else float("inf"),
            "longest": longest}


@pytest.fixture
def facts_of(served_book, browser):
    """The page's facts, measured once per page."""
    def get(chapter: str) -> dict:
        if chapter not in FACTS:
            page_problems(browser, f"{served_book}/book/{chapter}.html", None, chapter)
        return FACTS[chapter]
    return get


@pytest.mark.slow
@pytest.mark.parametrize("chapter", toc_chapters())
def test_every_figure_is_captioned_and_not_shrunk(chapter, facts_of):
    problems = figure_problems(facts_of(chapter), drawn_scale())
    assert not problems, f"{chapter}.html:\n  " + "\n  ".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("chapter", toc_chapters())
def test_no_nan_parameter_name_or_path_in_the_text(chapter, facts_of):
    problems = leak_problems(facts_of(chapter), chapter)
    assert not problems, f"{chapter}.html:\n  " + "\n  ".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("chapter", toc_chapters())
def test_claims_tables_inside_the_column(chapter, facts_of):
    problems = table_problems(facts_of(chapter), chapter)
    assert not problems, f"{chapter}.html:\n  " + "\n  ".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("chapter", toc_chapters())
def test_visible_prose_outweighs_code(chapter, facts_of):
    """Reported per page (``SGDTEMP_PAGE_STATS=FILE`` appends one line per page)."""
    m = prose_and_code(facts_of(chapter))
    line = (f"{chapter}: prose {m['prose']} words, code {m['code']} words, prose:code "
            f"{m['ratio']:.2f}, longest visible cell {m['longest']} lines")
    if os.environ.get("SGDTEMP_PAGE_STATS"):
        with open(os.environ["SGDTEMP_PAGE_STATS"], "a") as f:
            f.write(line + "\n")
    assert m["ratio"] >= MIN_PROSE_TO_CODE, line


@pytest.mark.slow
@pytest.mark.parametrize("chapter", toc_chapters())
def test_no_visible_code_cell_over_30_lines(chapter, facts_of):
    cells = [c.rstrip().splitlines() for c in facts_of(chapter)["codeCells"]]
    long = [f"{len(c)} lines, starting {c[0][:60]!r}" for c in cells
            if len(c) > MAX_VISIBLE_CELL_LINES]
    assert not long, f"{chapter}.html shows code cells over {MAX_VISIBLE_CELL_LINES} lines:\n  " \
        + "\n  ".join(long)


# ---------------------------------------------------------------- the page as a whole


@pytest.mark.slow
@pytest.mark.parametrize("chapter", toc_chapters())
def test_page_reads_well_in_a_browser(chapter, served_book, browser):
    shots = os.environ.get("SGDTEMP_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
    problems = page_problems(browser, f"{served_book}/book/{chapter}.html",
                             Path(shots) if shots else None, chapter)
    assert not problems, f"{chapter}.html at {WIDTH} px:\n  " + "\n  ".join(problems)
