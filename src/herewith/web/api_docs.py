"""The API's interactive documentation at ``/v1/docs`` (Swagger UI), served from this server.

FastAPI's built-in page loads Swagger UI from a CDN and starts it with an inline script; here the page,
its script and Swagger UI itself (the ``swagger-ui-bundle-v2`` package ships the ``swagger-ui-dist`` files)
all come from this server, so the page works offline and under the HTML pages' Content-Security-Policy
(``script-src 'self'``, :mod:`herewith.kit.security_headers`). Swagger UI's online validator badge is off
(it would send the document's URL to another site).

- ``GET /v1/docs``: the page;
- ``GET /v1/docs/{asset}``: ``swagger-ui-bundle.js``, ``swagger-ui.css`` (Swagger UI's), ``api-docs.js``
  (ours: starts Swagger UI on the OpenAPI document named by the page); cacheable for a day.

Usage::

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url="/v1/openapi.json")
    install_api_docs(app, "/v1/docs")
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from swagger_ui_bundle import swagger_ui_path

from herewith.errors import NotFound

HERE = Path(__file__).parent
_templates = Jinja2Templates(directory=str(HERE / "templates"))
_SWAGGER = Path(str(swagger_ui_path))
#: Files the page may load, by the name in its URL: (path, media type).
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (_SWAGGER / "swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": (_SWAGGER / "swagger-ui.css", "text/css; charset=utf-8"),
    "api-docs.js": (HERE / "static" / "api-docs.js", "text/javascript; charset=utf-8"),
}
#: The Swagger UI version shipped, from the package's folder name (``swagger-ui-5.31.0``); the assets' ``?v=``.
SWAGGER_UI_VERSION = _SWAGGER.name.removeprefix("swagger-ui-")


def install_api_docs(app: FastAPI, docs_url: str = "/v1/docs") -> None:
    """Add the docs page and its assets to ``app`` (whose ``openapi_url`` the page shows)."""
    openapi_url = app.openapi_url or "/v1/openapi.json"

    @app.get(docs_url, include_in_schema=False, response_class=HTMLResponse)
    async def api_docs(request: Request) -> Response:
        return _templates.TemplateResponse(
            request, "api_docs.html",
            {"title": f"{app.title} API", "openapi_url": openapi_url, "assets": docs_url,
             "version": SWAGGER_UI_VERSION},
        )

    @app.get(docs_url + "/{asset}", include_in_schema=False)
    async def api_docs_asset(asset: str) -> Response:
        if asset not in ASSETS:
            raise NotFound()
        path, media_type = ASSETS[asset]
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})
