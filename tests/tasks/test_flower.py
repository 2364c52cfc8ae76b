"""Flower's login: from the environment or a file, or generated and said once; never argv."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import Settings
from devtools.pipeline import wait_until
from devtools.redis_server import free_port
from tasks.flower import flower_launcher_argv, login
from tests.factories import ROOT, http_status


def test_the_login_comes_from_the_environment_then_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "flower"
    secret.write_text("ops:from-a-file\n")
    assert login(Settings(flower_basic_auth="ops:from-env")) == ("ops:from-env", False)
    assert login(Settings(flower_basic_auth_file=secret)) == ("ops:from-a-file", False)


def test_without_a_login_a_random_password_is_generated() -> None:
    first, generated = login(Settings())
    second, _ = login(Settings())
    assert generated and first.startswith("admin:") and first != second
    assert len(first.split(":", 1)[1]) >= 20


@pytest.mark.parametrize("value", ["no-colon", "user:", ":password"])
def test_a_login_that_is_not_user_colon_password_is_refused(value: str) -> None:
    with pytest.raises(ConfigError):
        login(Settings(flower_basic_auth=value))


@pytest.mark.slow
def test_flower_asks_for_the_generated_login_which_is_printed_once_and_not_in_argv(
    redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url}
    for name in ("FLOWER_BASIC_AUTH", "FLOWER_BASIC_AUTH_FILE"):
        env.pop(name, None)
    out = tmp_path / "flower.log"
    with out.open("wb") as log:
        process = subprocess.Popen(
            flower_launcher_argv([f"--port={port}", "--address=127.0.0.1"]),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: http_status(f"http://127.0.0.1:{port}/", None) == 401,
            60,
            "Flower\n" + out.read_text(),
        )
        [line] = [line for line in out.read_text().splitlines() if "Flower login" in line]
        user, password = line.split("Flower login: ", 1)[1].split(" (", 1)[0].split(" / ")
        assert http_status(f"http://127.0.0.1:{port}/", f"{user}:{password}") == 200
        assert http_status(f"http://127.0.0.1:{port}/", f"{user}:wrong") == 401
        argv = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert password.encode() not in argv
    finally:
        process.terminate()
        process.wait(timeout=20)
