"""`scripts/build_index.py` (`make index`): builds the configured index type once, as workers
load it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.screening.engine import load_engine
from core.screening.scoring.bundle import DEFAULT_MODEL_PATH, ModelBundle
from core.settings import Settings
from tests.factories import ROOT

pytestmark = pytest.mark.slow


def build(var: Path, **env: str) -> str:
    """Run the script on the small reference set under `var`; its output."""
    settings = {
        "VAR_DIR": str(var),
        "MODEL_DIR": str(var / "models"),
        "REFERENCE_PATH": str(var / "reference.csv"),
        "EMBED_DEVICE": "cpu",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "scripts/build_index.py"],
        cwd=ROOT,
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        timeout=1200,
        check=True,
    )
    return done.stdout


def test_make_index_builds_the_configured_type_once_and_workers_load_that_one(
    pipeline_var: Path,
) -> None:
    printed = build(pipeline_var, REFERENCE_INDEX="ivf-sq8")
    assert "type ivf-sq8 (IVF" in printed
    [built] = list((pipeline_var / "index").glob("*/built/ivf-sq8-*"))
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["type"] == "ivf-sq8" and manifest["factory"].endswith(",SQ8")
    written = (built / "index.faiss").stat().st_mtime_ns

    build(pipeline_var, REFERENCE_INDEX="ivf-sq8", REFERENCE_INDEX_NPROBE="4")
    assert (built / "index.faiss").stat().st_mtime_ns == written  # found, not built again

    settings = Settings(
        var_dir=pipeline_var,
        model_dir=pipeline_var / "models",
        reference_path=pipeline_var / "reference.csv",
        embed_device="cpu",
        reference_index="ivf-sq8",
    )
    engine = load_engine(settings)
    assert engine.index.spec.kind == "ivf-sq8"
    # The build's vectors, then the bundle's own training examples added on load.
    shipped = ModelBundle.load(DEFAULT_MODEL_PATH).examples
    assert len(engine.index) == manifest["ntotal"] + (len(shipped) if shipped else 0)
    assert (built / "index.faiss").stat().st_mtime_ns == written


def test_an_unknown_type_stops_make_index_naming_the_types(pipeline_var: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        build(pipeline_var, REFERENCE_INDEX="ivf")
    assert "'flat', 'hnsw', 'ivf-hnsw', 'ivf-sq8' or 'ivf-pq'" in failed.value.stderr
