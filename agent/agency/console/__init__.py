"""The receiving side's web console: live queue, incidents, sites, map, search, exports and a JSON API.

`create_app(config, engine=...)` builds the FastAPI application over the
receiving store (`agent.agency.store`); `serve(config)` runs it with uvicorn.
Pages are rendered on the server from Jinja2 templates with autoescaping on,
the little JavaScript there is lives in `static/`, and nothing is loaded from
another host, so a console without internet access works the same.
"""

from agent.agency.console.app import create_app
from agent.agency.console.server import serve

__all__ = ["create_app", "serve"]
