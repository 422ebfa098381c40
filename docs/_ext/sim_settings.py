"""``{sim-settings}``: the settings the simulated lab models and accepts, from its data.

The list lives in :mod:`mailtls.sim.modelled_settings`, which the simulated lab checks every
host's files against (a setting it does not model stops the host). This directive renders that
same data, by category, in the page's language: names as inline code, and for each accepted
setting why, so that the page "What the simulated lab simplifies" says exactly what the
simulation does.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from mailtls.generations import GENERATIONS
from mailtls.sim import modelled_settings
from mailtls.sim.config import setting_names
from mailtls.sim.modelled_settings import ACCEPTED, FIXED, MODELLED, Setting

WORDS = {
    "en": {
        MODELLED: "Modelled (the simulation does what the real server does, whatever the value):",
        ACCEPTED: "Accepted with any value:",
        FIXED: "Accepted only at the lab's own values (any other value stops the simulated host):",
        "only": "only {server} {version}",
        "or": " or ",
    },
    "es": {
        MODELLED: "Modelados (la simulación hace lo que hace el servidor real, sea cual sea el valor):",
        ACCEPTED: "Aceptados con cualquier valor:",
        FIXED: "Aceptados solo con los valores del propio laboratorio (cualquier otro valor detiene el "
               "host simulado):",
        "only": "solo {server} {version}",
        "or": " o ",
    },
}
SERVERS = {"postfix": "Postfix", "dovecot": "Dovecot"}


def only_in(setting: Setting) -> str | None:
    """The one server version that knows a top-level setting (``2.3``), or None when all do
    (or the name is a pattern or a path inside sections)."""
    if "/" in setting.name or setting.name.startswith("TRANSPORT_"):
        return None
    versions = sorted({getattr(g, setting.server) for g in GENERATIONS},
                      key=lambda v: tuple(map(int, v.split("."))))
    knowing = [v for v in versions if setting.name in setting_names(setting.server, v)]
    return knowing[0] if len(knowing) == 1 else None


def name_nodes(setting: Setting, words: dict[str, str]) -> list[nodes.Node]:
    """The name as inline code, with the one version that knows it."""
    result: list[nodes.Node] = [nodes.literal(text=setting.name)]
    version = only_in(setting)
    if version is not None:
        only = words["only"].format(server=SERVERS[setting.server], version=version)
        result.append(nodes.Text(f" ({only})"))
    return result


def groups(settings: list[Setting], language: str) -> list[list[Setting]]:
    """The settings in runs that share one reason, in the data's order."""
    runs: list[list[Setting]] = []
    for setting in settings:
        if runs and getattr(runs[-1][0], language) == getattr(setting, language):
            runs[-1].append(setting)
        else:
            runs.append([setting])
    return runs


class SimSettings(SphinxDirective):
    """The directive: no arguments; the page's language is Sphinx's ``language``."""

    def run(self) -> list[nodes.Node]:
        self.env.note_dependency(modelled_settings.__file__)
        language = self.config.language if self.config.language in WORDS else "en"
        words = WORDS[language]
        result: list[nodes.Node] = []
        for category, settings in modelled_settings.by_category().items():
            if not settings:
                continue
            title = nodes.paragraph()
            title += nodes.strong(text=getattr(category, language))
            result.append(title)
            kinds = nodes.bullet_list()
            for how in (MODELLED, ACCEPTED, FIXED):
                chosen = [s for s in settings if s.how == how]
                if not chosen:
                    continue
                item = nodes.list_item()
                item += nodes.paragraph(text=words[how])
                if how == MODELLED:
                    line = nodes.paragraph()
                    for index, setting in enumerate(chosen):
                        if index:
                            line += nodes.Text(", ")
                        line.extend(name_nodes(setting, words))
                    line += nodes.Text(".")
                    item += line
                else:  # one line per reason, its settings together
                    entries = nodes.bullet_list()
                    for group in groups(chosen, language):
                        entry = nodes.paragraph()
                        for index, setting in enumerate(group):
                            if index:
                                entry += nodes.Text(", ")
                            entry.extend(name_nodes(setting, words))
                            if how == FIXED:
                                entry += nodes.Text(" = ")
                                for number, value in enumerate(setting.values):
                                    if number:
                                        entry += nodes.Text(words["or"])
                                    entry += nodes.literal(text=value)
                        entry += nodes.Text(": " + getattr(group[0], language))
                        entries += nodes.list_item("", entry)
                    item += entries
                kinds += item
            result.append(kinds)
        return result


def setup(app) -> dict[str, object]:
    app.add_directive("sim-settings", SimSettings)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
