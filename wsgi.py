"""WSGI entry point: only creates the app (no scheduler, no I/O). `gunicorn wsgi:app`."""

from integration.app import create_app

app = create_app()
