"""`make index`: embed the reference set and build its index once; later runs reuse them.

Reads the same settings as the workers (EMBED_MODEL, EMBED_BACKEND, VAR_DIR, REFERENCE_PATH,
RULES_PATH, REFERENCE_INDEX and its parameters), so what it builds is exactly what a worker will
load: the embedded vectors, and for an approximate REFERENCE_INDEX the trained index of that type
with its manifest (see docs/configuration.md, "The reference index").
"""

from __future__ import annotations

import sys
import time

from core.logs import configure_logging
from core.screening.engine import load_engine
from core.settings import Settings


def main() -> None:
    """Build (or find) the artefacts and say where they are."""
    settings = Settings()
    configure_logging(settings.log_level)
    started = time.monotonic()
    engine = load_engine(settings)
    spec = engine.index.spec
    sys.stdout.write(
        f"reference index ready: {len(engine.index)} examples, type {spec.kind} "
        f"({spec.factory(len(engine.index), engine.index.dim)}), model {engine.embedder.name}, "
        f"version {engine.version} ({time.monotonic() - started:.1f} s)\n"
    )


if __name__ == "__main__":
    main()
