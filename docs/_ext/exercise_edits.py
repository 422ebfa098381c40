"""``{exercise-edits} NAME start|solution``: an exercise's edits of the lab's files, as diffs.

The edits live next to the exercise's definition, in ``start.toml`` and ``solution.toml`` of its
subpackage of ``mailtls.exercises`` (``src/mailtls/exercises/NAME/``), where ``python -m mailtls
exercise`` applies them and the tests prove the checker with them. The pages show those same
edits, so the configuration on a page is the one the tests ran.
"""

from __future__ import annotations

import difflib

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from mailtls import exercises


def as_diff(old: str, new: str) -> str:
    lines = difflib.unified_diff(old.strip("\n").splitlines(), new.strip("\n").splitlines(), lineterm="", n=3)
    return "\n".join(line for line in lines if not line.startswith(("---", "+++", "@@")))


class ExerciseEdits(SphinxDirective):
    required_arguments = 2  # the exercise's name, then start or solution

    def run(self) -> list[nodes.Node]:
        name, which = self.arguments
        if which not in exercises.WHICH:
            raise self.error(f"exercise-edits: {which!r} must be start or solution")
        try:
            exercise = exercises.find(name)
        except Exception as error:  # an unknown name: the lab tooling's message says which exist
            raise self.error(str(error)) from None
        for source in exercises.WHICH:  # a page is read again when either file changes
            self.env.note_dependency(str(exercise.edits_file(source)))
        result: list[nodes.Node] = []
        for edit in exercises.edits_for(exercise, which):
            paragraph = nodes.paragraph()
            paragraph += nodes.literal(text=f"labs/{edit.file}")
            result.append(paragraph)
            diff = as_diff(edit.old, edit.new)
            block = nodes.literal_block(diff, diff, language="diff")
            result.append(block)
        return result


def setup(app) -> dict[str, object]:
    app.add_directive("exercise-edits", ExerciseEdits)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
