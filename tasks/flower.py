"""Start Flower for the screening app with a login that never appears on a command line:
`python -m tasks.flower [Flower options]`.

The login is FLOWER_BASIC_AUTH (`user:password`), or the first line of the file that
FLOWER_BASIC_AUTH_FILE names (a mounted secret); with neither, a random password for the user
`admin` is generated and printed once. Flower reads the login from its environment, so `ps`
shows no credentials; the task view shows only stream ids and tokens (see tasks.screening).
"""

from __future__ import annotations

import os
import secrets
import sys

from core.errors import ConfigError
from core.settings import Settings
from tasks.worker import celery_argv

GENERATED_USER = "admin"


def login(settings: Settings) -> tuple[str, bool]:
    """The `user:password` Flower asks for, and whether it was generated just now."""
    if settings.flower_basic_auth:
        value = settings.flower_basic_auth
    elif settings.flower_basic_auth_file is not None:
        try:
            value = settings.flower_basic_auth_file.read_text().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise ConfigError(f"cannot read FLOWER_BASIC_AUTH_FILE: {exc}") from None
    else:
        return f"{GENERATED_USER}:{secrets.token_urlsafe(18)}", True
    user, sep, password = value.partition(":")
    if not (user and sep and password):
        raise ConfigError("the Flower login must be user:password")
    return value, False


def flower_argv(options: list[str], python: str = sys.executable) -> list[str]:
    """The command line of Flower for this app (credentials are not part of it)."""
    return celery_argv("flower", options, python)


def flower_launcher_argv(options: list[str], python: str = sys.executable) -> list[str]:
    """The command line of this launcher, passing `options` on to Flower."""
    return [python, "-m", "tasks.flower", *options]


def main() -> None:
    """Resolve the login, say it when it was generated, and replace this process with Flower."""
    value, generated = login(Settings())
    if generated:
        sys.stdout.write(
            f"Flower login: {value.replace(':', ' / ', 1)} (generated; set FLOWER_BASIC_AUTH "
            "or FLOWER_BASIC_AUTH_FILE to choose one)\n"
        )
        sys.stdout.flush()
    command = flower_argv(sys.argv[1:])
    os.execvpe(command[0], command, {**os.environ, "FLOWER_BASIC_AUTH": value})


if __name__ == "__main__":
    main()
