"""The ASGI entry, wiring only: ``uvicorn server:app`` builds the app from ``ZSCHED_*`` settings.

``zsched serve`` does the same with command-line flags; both call ``zsched.web.create_app``.
"""

from zsched.web.app import create_app

app = create_app()
