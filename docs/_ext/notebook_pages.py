"""The notebooks in the site: executed against a real lab, or honestly shown without outputs.

The notebooks live in ``notebooks/LANG/`` (``docs/LANG/notebooks`` is a link to that folder) as
MyST Markdown, and MyST-NB renders them. This extension decides and says where their outputs
come from, and ties each notebook to its chapter:

- **Execution.** ``mailtls_notebooks`` in ``conf.py`` (``-D mailtls_notebooks=…``) chooses:
  ``execute`` (a real lab must be running: the build fails otherwise), ``sim`` (the simulated lab,
  ``mailtls.sim``), ``off`` (never execute), or ``auto``, the default: the real lab when one
  answers, else the simulated one. Old outputs are never shown: the build either runs every cell
  now or shows none.
- **The simulated lab's kernel.** A notebook picks its lab with ``mailtls.lab.connect()``, which
  takes ``MAILTLS_BACKEND=sim`` from the kernel's environment. That variable is set in one place
  only: the ``env`` of a kernelspec of its own, ``mailtls-sim`` (jupyter_client's kernel.json),
  installed into this Python's prefix as ``python -m ipykernel install --sys-prefix --env`` would.
  MyST-NB runs the notebooks on it through ``nb_kernel_rgx_aliases``; the build's own environment
  is left alone, and the downloads keep the notebooks' own kernel name.
- **Provenance.** Every notebook page starts with a note naming the servers that produced its
  outputs (backend, Postfix and Dovecot versions, date; or the simulated lab), or saying that
  none did.
- **Downloads.** The notebook, as executed, is copied next to its page (``notebooks/NAME.ipynb``)
  and linked from the note.
- **Chapters.** ``notebook_chapters`` in ``conf.py`` maps each notebook to its chapter; each
  notebook page links to its chapter and each chapter to its notebooks.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError

from browser_lab import lite_url
from mailtls.generations import DEFAULT, get

NOTEBOOKS = "notebooks/"  # the folder of notebook pages in each edition
CHOICES = ("auto", "execute", "sim", "off")  # mailtls_notebooks
SIM_KERNEL = "mailtls-sim"  # the kernelspec whose kernels run the simulated lab
SIM_ENV = {"MAILTLS_BACKEND": "sim"}  # what mailtls.lab.connect() reads to choose it

MESSAGES = {
    "en": {
        "executed": "The outputs on this page were produced on {date} by the course's lab on the {backend} "
                    "backend, Debian {debian}: {servers}.",
        "not_executed": "No lab was running when this site was built, so the cells below have no outputs. "
                        "Run the notebook against your own lab (`make notebooks`), or rebuild the site "
                        "with a lab running to see them here.",
        "simulated": "The outputs on this page were produced on {date} by the simulated lab: the course's "
                     "configuration files read by a Python simulation of Debian {debian}'s Postfix {postfix} "
                     "and Dovecot {dovecot}, with real TLS. No real lab was running when this site was "
                     "built; run the notebook against one to see the real servers' answers.",
        "download": "Download the notebook (.ipynb)",
        "chapter": "Chapter: ",
        "chapter_notebooks": "Run this chapter: ",
        "run": "run in your browser",
        "run_hint": "“Run in your browser” opens the notebook in JupyterLite: Python and a simulated lab run "
                    "inside your browser, with nothing to install. The first start takes a few seconds, and "
                    "your changes are not kept.",
    },
    "es": {
        "executed": "Las salidas de esta página las produjo el {date} el laboratorio del curso con el "
                    "backend {backend}, Debian {debian}: {servers}.",
        "not_executed": "Al construir este sitio no había ningún laboratorio en marcha, así que las celdas "
                        "no tienen salidas. Ejecuta el cuaderno contra tu propio laboratorio "
                        "(`make notebooks`) o vuelve a construir el sitio con un laboratorio en marcha "
                        "para verlas aquí.",
        "simulated": "Las salidas de esta página las produjo el {date} el laboratorio simulado: los archivos "
                     "de configuración del curso, leídos por una simulación en Python de Postfix {postfix} "
                     "y Dovecot {dovecot} de Debian {debian}, con TLS real. Al construir este sitio no había "
                     "ningún laboratorio real "
                     "en marcha; ejecuta el cuaderno contra uno para ver las respuestas de los servidores "
                     "reales.",
        "download": "Descargar el cuaderno (.ipynb)",
        "chapter": "Capítulo: ",
        "chapter_notebooks": "Practica este capítulo: ",
        "run": "ejecutar en el navegador",
        "run_hint": "«Ejecutar en el navegador» abre el cuaderno en JupyterLite: Python y un laboratorio "
                    "simulado funcionan dentro de tu navegador, sin instalar nada. El primer arranque tarda "
                    "unos segundos y tus cambios no se guardan.",
    },
}


# -- Does a lab answer? -----------------------------------------------------------------------


@dataclass(frozen=True)
class Producer:
    """What executes the notebooks in this build: a lab's backend and its servers' versions."""

    backend: str
    debian: int  # the generation of its servers (mailtls.generations)
    servers: dict[str, str]
    ours: bool = True  # may this user drive it (the attacks notebook switches the wiretap's mode)?


def running_lab() -> Producer | None:
    """The real lab, if one answers on its mail port."""
    try:
        from mailtls.lab import LabNotRunning, connect
    except ImportError:
        return None
    try:
        lab = connect()
    except LabNotRunning:
        return None
    endpoint = lab.endpoint("mail.lab.test", "smtp")
    try:
        socket.create_connection((endpoint.address, endpoint.port), timeout=2).close()
    except OSError:
        return None
    return Producer(lab.backend, lab.debian, lab.servers, os.access(lab.status.wiretap.mode_file, os.W_OK))


def choose_execution(app: Sphinx, config: Config) -> None:
    """Execute against the real lab, the simulated one or none, as ``mailtls_notebooks`` says.

    Raises ``ConfigError`` for another choice, or for ``execute`` when no lab answers.
    """
    choice = config.mailtls_notebooks
    if choice not in CHOICES:
        raise ConfigError(f"mailtls_notebooks must be auto, execute, sim or off, not {choice!r}")
    lab = running_lab() if choice in ("auto", "execute") else None
    if lab is not None and choice == "auto" and not lab.ours:
        lab = None
    if choice == "execute" and lab is None:
        raise ConfigError("mailtls_notebooks is execute, but no lab is running: "
                          "`python -m mailtls lab up` first")
    if lab is None and choice in ("auto", "sim"):
        # Each kernel starts its own simulated lab; none runs here.
        install_sim_kernel()
        config.nb_kernel_rgx_aliases = {".*": SIM_KERNEL}
        lab = Producer("sim", DEFAULT.debian, {})  # the kernels' simulation runs today's Debian
    app.mailtls_lab = lab  # type: ignore[attr-defined]
    config.nb_execution_mode = "force" if lab is not None else "off"
    logging.getLogger("traitlets").setLevel(logging.WARNING)  # not one INFO line per notebook


def install_sim_kernel() -> None:
    """Install the ``mailtls-sim`` kernelspec into this Python's prefix (a virtual environment's).

    It is ipykernel's own, with ``SIM_ENV`` as its ``env``: jupyter_client adds that to the
    kernel's environment when it starts one (the kernel.json ``env`` field of the kernelspec).
    """
    from ipykernel.kernelspec import install

    install(kernel_name=SIM_KERNEL, display_name="Python 3 (simulated lab)", prefix=sys.prefix, env=SIM_ENV)


def per_language_output(app: Sphinx) -> None:
    """Keep each edition's executed notebooks apart (MyST-NB shares one folder by default)."""
    folder = Path(app.doctreedir) / "jupyter_execute"
    app.env.mystnb_config = app.env.mystnb_config.copy(output_folder=str(folder))


# -- What the pages say -----------------------------------------------------------------------


def provenance(app: Sphinx) -> str:
    messages = MESSAGES[app.config.language]
    lab = app.mailtls_lab  # type: ignore[attr-defined]
    if lab is None:
        return messages["not_executed"]
    today = dt.date.today().isoformat()
    if lab.backend == "sim":
        generation = get(lab.debian)
        return messages["simulated"].format(date=today, debian=generation.debian, postfix=generation.postfix,
                                            dovecot=generation.dovecot)
    servers = ", ".join(f"{name.capitalize()} {version}" for name, version in lab.servers.items())
    return messages["executed"].format(date=today, backend=lab.backend, debian=lab.debian, servers=servers)


def doc_link(target: str, text: str | None = None) -> addnodes.pending_xref:
    """A link to another page; without ``text`` it shows that page's title."""
    xref = addnodes.pending_xref("", refdomain="std", reftype="doc", reftarget="/" + target,
                                 refexplicit=text is not None, refwarn=True)
    xref += nodes.inline(text or target, text or target)
    return xref


def annotate(app: Sphinx, doctree: nodes.document) -> None:
    docname = app.env.docname
    chapters: dict[str, str] = app.config.notebook_chapters
    messages = MESSAGES[app.config.language]
    if docname.startswith(NOTEBOOKS):
        if not is_notebook(app, docname):
            return  # a plain page among the notebooks (their index, what the simulated lab simplifies)
        name = docname.removeprefix(NOTEBOOKS)
        note = nodes.note()
        note += nodes.paragraph("", provenance(app))
        links = nodes.paragraph()
        run = lite_url(app, docname, name)
        if run:
            links += run_link(run, messages["run"].capitalize())
            links += nodes.Text(" · ")
        links += download_link(f"{name}.ipynb", messages["download"])
        if name in chapters:
            links += nodes.Text(" · " + messages["chapter"])
            links += doc_link(chapters[name])
        lab = app.mailtls_lab  # type: ignore[attr-defined]
        if lab is not None and lab.backend == "sim":
            links += nodes.Text(" · ")
            links += doc_link(NOTEBOOKS + "simulated-lab")
        note += links
        insert_after_title(doctree, note)
        return
    notebooks = [name for name, chapter in chapters.items() if chapter == docname]
    if notebooks:
        paragraph = nodes.paragraph("", messages["chapter_notebooks"])
        for number, name in enumerate(notebooks):
            if number:
                paragraph += nodes.Text("; ")
            paragraph += doc_link(NOTEBOOKS + name)
            depth = "../" * docname.count("/")
            paragraph += nodes.Text(" (")
            run = lite_url(app, docname, name)
            if run:
                paragraph += run_link(run, messages["run"])
                paragraph += nodes.Text(" · ")
            paragraph += download_link(f"{depth}{NOTEBOOKS}{name}.ipynb", ".ipynb")
            paragraph += nodes.Text(")")
        paragraph += nodes.Text(".")
        tip = nodes.tip()
        tip += paragraph
        if lite_url(app, docname, notebooks[0]):
            tip += nodes.paragraph("", messages["run_hint"])
        insert_after_title(doctree, tip)


def is_notebook_text(text: str) -> bool:
    """Whether a Markdown file's ``text`` is a MyST notebook: a ``kernelspec`` in its front matter.

    (MyST-NB's rule: https://myst-nb.readthedocs.io/en/latest/authoring/text-notebooks.html.)
    The tests ask the same question with this function.
    """
    return text.startswith("---") and "kernelspec:" in text.split("---", 2)[1]


def is_notebook(app: Sphinx, docname: str) -> bool:
    """Whether the page ``docname`` is a MyST notebook (see ``is_notebook_text``)."""
    return is_notebook_text(Path(app.env.doc2path(docname)).read_text(encoding="utf-8"))


def download_link(href: str, text: str) -> nodes.raw:
    """A link with ``download``: the browser saves the notebook instead of showing its JSON."""
    return nodes.raw("", f'<a class="notebook-download reference external" href="{html.escape(href)}" '
                         f"download>{html.escape(text)}</a>", format="html")


def run_link(href: str, text: str) -> nodes.raw:
    """A link that opens the notebook in JupyterLite, in a new tab: JupyterLite loads only then."""
    return nodes.raw("", f'<a class="run-in-browser reference external" href="{html.escape(href)}" '
                         f'target="_blank" rel="noopener">▶ {html.escape(text)}</a>', format="html")


def insert_after_title(doctree: nodes.document, node: nodes.Node) -> None:
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        doctree.insert(0, node)
        return
    title = next(iter(section.findall(nodes.title)))
    section.insert(section.index(title) + 1, node)


def always_reread(app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]) -> list[str]:
    """Read every notebook page again at each build, so that no output outlives its build."""
    return [docname for docname in env.found_docs if docname.startswith(NOTEBOOKS)]


def copy_notebooks(app: Sphinx, exception: Exception | None) -> None:
    """Put each executed notebook next to its page, where the page's download link points.

    A notebook run on the simulated lab's kernel gets back the kernel name of its source
    (``python3``), which is what a reader's Jupyter has.
    """
    if exception is not None or app.builder.format != "html":
        return
    executed = Path(app.env.mystnb_config.output_folder) / NOTEBOOKS.rstrip("/")
    if not executed.is_dir():
        return
    target = Path(app.outdir) / NOTEBOOKS.rstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    for notebook in executed.glob("*.ipynb"):
        content = nbformat.read(notebook, as_version=nbformat.NO_CONVERT)
        kernelspec = content.metadata.get("kernelspec", {})
        if kernelspec.get("name") == SIM_KERNEL:
            kernelspec["name"] = source_kernel(app, NOTEBOOKS + notebook.stem)
        (target / notebook.name).write_text(nbformat.writes(content), encoding="utf-8")


def source_kernel(app: Sphinx, docname: str) -> str:
    """The kernel name in a notebook's own front matter."""
    import jupytext

    text = Path(app.env.doc2path(docname)).read_text(encoding="utf-8")
    return jupytext.reads(text, fmt="md:myst").metadata["kernelspec"]["name"]


def setup(app: Sphinx) -> dict[str, object]:
    app.add_config_value("notebook_chapters", {}, "env", types=[dict])
    app.add_config_value("mailtls_notebooks", "auto", "env", types=[str],
                         description="execute the notebooks: auto, execute (a real lab), sim or off")
    app.connect("config-inited", choose_execution)
    app.connect("builder-inited", per_language_output, priority=900)  # after MyST-NB's own
    app.connect("env-get-outdated", always_reread)
    app.connect("doctree-read", annotate)
    app.connect("build-finished", copy_notebooks)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
