"""WSGI entry point for gunicorn: reads the settings from the environment and builds the app.

Gunicorn imports this in each worker after the fork (the configuration does not preload), so
the tracer provider's export thread starts in the process whose spans it sends.
"""

import os

from core.logs import configure_logging
from core.settings import Settings
from core.telemetry import configure_tracing
from webapp import create_app

settings = Settings()
configure_logging(settings.log_level)
configure_tracing("screening-web", os.environ)
app = create_app(settings)
