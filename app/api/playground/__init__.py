"""Offline GraphiQL playground.

Strawberry's built-in GraphiQL page pulls React and GraphiQL from a public CDN,
which our deployments cannot reach. This module renders an equivalent page whose
scripts and styles come only from ``ASSETS_DIR``, which the app is expected to
serve itself (e.g. ``StaticFiles(directory=ASSETS_DIR)`` mounted at
``/playground-assets``). The vendored versions are listed in
``assets/README.md`` and re-fetched by ``refresh_assets.sh``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template

__all__ = ["ASSETS_DIR", "playground_html"]

ASSETS_DIR: Path = Path(__file__).resolve().parent / "assets"

# Load order matters: the GraphiQL UMD bundle expects the React and ReactDOM
# globals to exist when it runs, and bundles everything else (graphql-js,
# CodeMirror, fonts as data: URIs), so these three files are all it needs.
#
# The favicon is an empty data: URI only so the browser does not request
# /favicon.ico from our server and log a 404 on every visit.
#
# No ``$`` may appear in the inline script except as a placeholder below
# (string.Template syntax), hence no JS template literals.
_PAGE = Template(
    """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>CaseGraph GraphiQL</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="$assets/graphiql.min.css">
    <style>
      html, body { height: 100%; margin: 0; overflow: hidden; }
      #graphiql { height: 100vh; }
    </style>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL&hellip;</div>
    <script src="$assets/react.production.min.js"></script>
    <script src="$assets/react-dom.production.min.js"></script>
    <script src="$assets/graphiql.min.js"></script>
    <script>
      (function () {
        // The page's own query string can prefill the editors, so a query can
        // be shared as a link. "q" is the primary name because Strawberry
        // treats GET <graphql path>?query=... as GraphQL-over-GET and
        // executes it instead of serving this page; "query" still works where
        // the page is served on a path of its own.
        var params = new URLSearchParams(window.location.search);
        var initialQuery = params.get("q") || params.get("query");

        // createFetcher merges the headers-editor JSON into every request, so
        // an "Authorization" entry typed there reaches the server. Headers
        // are deliberately not read from the URL: tokens in links leak.
        var fetcher = GraphiQL.createFetcher({ url: $graphql_url });

        var props = {
          fetcher: fetcher,
          isHeadersEditorEnabled: true,
          defaultEditorToolsVisibility: true
        };
        // Only pass the props the URL supplies: an explicit undefined would
        // override what GraphiQL restored from localStorage.
        if (initialQuery) { props.query = initialQuery; }
        if (params.get("variables")) { props.variables = params.get("variables"); }

        ReactDOM.createRoot(document.getElementById("graphiql"))
          .render(React.createElement(GraphiQL, props));
      })();
    </script>
  </body>
</html>
"""
)


def _js_string(value: str) -> str:
    # json.dumps yields a valid JS string literal; escaping "<" as well keeps a
    # value containing "</script>" from closing the inline script early.
    return json.dumps(value).replace("<", "\\u003c")


def playground_html(
    graphql_path: str = "/graphql",
    assets_path: str = "/playground-assets",
) -> str:
    """Return the playground page, querying ``graphql_path`` via POST.

    Both arguments are URL paths on our own server (include any ASGI
    ``root_path`` prefix when mounted behind a proxy). They are escaped,
    but should still come from configuration, not from the request.
    """
    return _PAGE.substitute(
        assets=html.escape(assets_path.rstrip("/"), quote=True),
        graphql_url=_js_string(graphql_path),
    )
