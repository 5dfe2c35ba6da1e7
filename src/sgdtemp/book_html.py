"""The built book's HTML: offline math, downloadable notebooks, numbered claim references.

A Sphinx extension, loaded by ``_config.yml`` (``sphinx: extra_extensions``). It does
three things Jupyter Book does not do on its own:

- **Offline MathJax.** ``mathjax_path`` names a file under ``_static/``; this extension
  copies MathJax's ``es5`` bundle there from the pinned PyPI package that ships it
  (``django-static-mathjax``, a plain copy of MathJax 3, installed by ``make install``).
  A page then typesets its math without any network.
- **Executed notebooks to download.** Each chapter's executed notebook
  (``_build/jupyter_execute/<page>.ipynb``) is copied to ``_sources/`` and offered by the
  theme's download button as ``.ipynb`` (the theme does this only when a launch service
  such as Binder is configured; this book has none).
- **A clean console.** sphinx-thebe's duplicated inline script is dropped
  (:func:`drop_thebe_scripts`).
- **Equation numbers in claims tables.** A statement may cite an equation with MyST's
  ``{eq}`` role, as the prose does (see :func:`sgdtemp.claims.statement_html`); the table
  is raw HTML that Sphinx does not parse, so here each such link gets the equation's
  number and the right page. An unknown label is a build warning (an error under ``-W``).
"""

from __future__ import annotations

import html
import re
import shutil
from importlib import resources
from pathlib import Path

from docutils import nodes

# Where the MathJax bundle lands under _static (mathjax_path in _config.yml points into it).
MATHJAX_DIR = "mathjax"

_EQREF = re.compile(
    r"<a class='sgdtemp-eqref' data-label='([^']+)' href='[^']*'>\([^<]*\)</a>")


def mathjax_bundle() -> Path:
    """The folder of MathJax 3's ``es5`` bundle in the installed package."""
    try:
        root = resources.files("mathjax")
    except ModuleNotFoundError:
        raise RuntimeError(
            "MathJax is not installed: run `make install` (it installs the pinned "
            "django-static-mathjax package that ships it).") from None
    return Path(str(root)) / "static" / "mathjax" / "es5"


def _uses_local_mathjax(app) -> bool:
    path = app.config.mathjax_path or ""
    return not re.match(r"^([a-z]+:)?//", path)


def copy_mathjax(app, exception) -> None:
    """After an HTML build, copy the MathJax bundle into ``_static/mathjax``."""
    if exception is not None or app.builder.format != "html" or not _uses_local_mathjax(app):
        return
    target = Path(app.outdir) / "_static" / MATHJAX_DIR
    if not (target / Path(app.config.mathjax_path).name).exists():
        shutil.copytree(mathjax_bundle(), target, dirs_exist_ok=True)


def check_mathjax(app) -> None:
    """Fail early (before executing any chapter) when the local MathJax is missing."""
    if app.builder.format != "html" or not _uses_local_mathjax(app):
        return
    name = app.config.mathjax_path
    if not name.startswith(MATHJAX_DIR + "/"):
        raise RuntimeError(f"mathjax_path must be a URL or start with '{MATHJAX_DIR}/'; "
                           f"got {name!r}.")
    bundle_file = mathjax_bundle() / name[len(MATHJAX_DIR) + 1:]
    if not bundle_file.exists():
        raise RuntimeError(f"mathjax_path names {name!r}, which the installed MathJax "
                           f"bundle ({mathjax_bundle()}) does not have.")


def offer_notebook(app, pagename, templatename, context, doctree) -> None:
    """Put the executed notebook of a notebook page where the download button finds it."""
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if doctree is None or not executed.exists():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def number_equation_refs(app, doctree, docname) -> None:
    """Give each claims-table equation link its number and target page."""
    domain = app.env.get_domain("math")
    builder = app.builder
    from sphinx.util import logging

    logger = logging.getLogger(__name__)

    def resolve(match: re.Match) -> str:
        label = html.unescape(match.group(1))
        ref = domain.resolve_xref(app.env, docname, builder, "eq", label, None,
                                  nodes.inline())
        if ref is None:
            logger.warning(f"a claim cites equation {label!r}, which no page defines",
                           location=docname)
            return match.group(0)
        uri = ref.get("refuri") or f"#{ref['refid']}"
        return (f"<a class='sgdtemp-eqref reference internal' href='{html.escape(uri)}'>"
                f"{html.escape(ref.astext())}</a>")

    for node in list(doctree.findall(nodes.raw)):
        if "html" not in node.get("format", "") or "sgdtemp-eqref" not in node.astext():
            continue
        text = _EQREF.sub(resolve, node.astext())
        node.replace_self(nodes.raw("", text, format=node["format"]))


def drop_thebe_scripts(app) -> None:
    """Stop sphinx-thebe adding its page scripts.

    Jupyter Book loads sphinx-thebe whether or not live code is used, and its inline
    script (``const THEBE_JS_URL = ...``) ends up twice in every page: a JavaScript
    SyntaxError on the console. This book has no live code (no launch buttons), so the
    script is not needed at all.
    """
    for listener in list(app.events.listeners.get("env-before-read-docs", [])):
        handler = listener.handler
        if (getattr(handler, "__module__", "") == "sphinx_thebe"
                and handler.__name__ == "init_thebe_core"):
            app.disconnect(listener.id)


def setup(app):
    drop_thebe_scripts(app)
    app.connect("builder-inited", check_mathjax)
    app.connect("build-finished", copy_mathjax)
    # Before the theme (priority 501) builds its header buttons from the context.
    app.connect("html-page-context", offer_notebook, priority=400)
    app.connect("doctree-resolved", number_equation_refs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
