"""Command lines as deployment files write them, put in the form the Python source spells them."""

from __future__ import annotations

# Programs the images run by their console script; `python -m <script>` is the same program.
CONSOLE_SCRIPTS = {"celery", "gunicorn"}


def module_form(command: list[str]) -> list[str]:
    """A command with a leading console script written as `python -m` its module."""
    if command and command[0] in CONSOLE_SCRIPTS:
        return ["python", "-m", *command]
    return list(command)
