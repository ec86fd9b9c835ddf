"""The Dakera-compatible REST API: a second front door onto the domain services.

Bots written against the Dakera Python SDK (``dakera==0.14.1``) work against CaseGraph by
changing ``base_url``. ``routes()`` goes into the app's route list next to GraphQL (same
port, same bearer-key middleware); ``exception_handlers()`` makes every refusal JSON.
"""

from casegraph.api.rest.errors import exception_handlers
from casegraph.api.rest.routes import routes

__all__ = ["exception_handlers", "routes"]
