"""`make index`: embed the reference set and train the head once; later runs reuse them.

Reads the same settings as the workers (EMBED_MODEL, EMBED_BACKEND, VAR_DIR, REFERENCE_PATH,
RULES_PATH), so what it builds is exactly what a worker will load.
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
    sys.stdout.write(
        f"reference index ready: {len(engine.index)} examples, model {engine.embedder.name}, "
        f"version {engine.version} ({time.monotonic() - started:.1f} s)\n"
    )


if __name__ == "__main__":
    main()
