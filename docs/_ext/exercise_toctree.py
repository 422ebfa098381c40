"""``{exercise-toctree}``: the exercises' pages in their order, taken from the exercises themselves.

Every exercise (``src/mailtls/exercises/NAME/``) has a page ``NAME.md`` next to the page that
uses this directive, in each edition. The directive is Sphinx's ``toctree`` with those pages
first, by exercise number, then the entries written in its body (the instructor's guide). So a
new exercise is one folder and its two pages: no list to keep here.
"""

from __future__ import annotations

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.directives.other import TocTree

from mailtls import exercises


class ExerciseToctree(TocTree):
    """A toctree of every exercise's page (by number), then the body's own entries."""

    def run(self) -> list[nodes.Node]:
        pages = [exercise.name for exercise in exercises.EXERCISES]
        self.content = StringList(pages + list(self.content), source=self.get_source_info()[0])
        return super().run()


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("exercise-toctree", ExerciseToctree)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
