"""WSGI entry point for gunicorn: reads the settings from the environment and builds the app."""

from core.logs import configure_logging
from core.settings import Settings
from webapp import create_app

settings = Settings()
configure_logging(settings.log_level)
app = create_app(settings)
