"""/docs without the internet: Swagger UI's files served from the installed
``fastapi-offline`` package instead of FastAPI's default CDN (a field laptop has no
internet, and a page that half-loads is worse than none).

Why that package: FastAPI writes OpenAPI 3.1, which only Swagger UI 5 reads; Swagger UI 4
(the ``swagger-ui-bundle`` package, still at 4.15.5) shows "Unable to render this
definition" instead of the API. ``fastapi-offline`` ships Swagger UI 5's bundle and needs
nothing but FastAPI.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, swagger_ui_default_parameters
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS", "install_offline_docs"]

ASSETS = "/docs-assets"
SWAGGER_UI_DIR = Path(fastapi_offline.__file__).parent / "static"
# validatorUrl None: Swagger UI would otherwise ask validator.swagger.io about the schema,
# a request to the internet from a page that must work without it.
PARAMETERS = {**swagger_ui_default_parameters, "validatorUrl": None}


def install_offline_docs(app: FastAPI) -> None:
    """Serve /docs from local files; call on an app created with ``docs_url=None``."""
    app.mount(ASSETS, StaticFiles(directory=SWAGGER_UI_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            swagger_ui_parameters=PARAMETERS,
        )
