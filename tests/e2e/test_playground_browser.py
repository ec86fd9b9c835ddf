"""The offline GraphiQL playground in a real headless Chromium against a real server.

`make test` installs Debian's chromium when it is missing (CI runs as root); the test
skips, saying why, only when no Chromium binary could be installed.
"""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from tests.browser import QUERY_TEXT, RESULT_TEXT, Chromium, find_chromium

pytestmark = pytest.mark.e2e

RECALL = '{ recall(agentId: "bot", query: "what happened to order 4521?", topK: 2) { why memory { content } } }'
DAMAGED = "Order #4521 arrived with a cracked screen; we issued a full refund."


@pytest.fixture
def chromium_binary() -> str:
    binary = find_chromium()
    if binary is None:
        pytest.skip(
            "no chromium binary: `make test` installs Debian's chromium "
            "(apt-get install -y chromium) and could not here (not root, or no package mirror)"
        )
    return binary


def test_playground_runs_recall_offline_in_chromium(live_server, chromium_binary, tmp_path):
    for content in (DAMAGED, "Customer asked how to reset the router password."):
        body = live_server.gql(
            "mutation($c: String!) { store(input: {agentId: \"bot\", content: $c}) { id } }", {"c": content}
        )
        assert "errors" not in body, body

    url = f"{live_server.url}/graphql?" + urllib.parse.urlencode({"q": RECALL})
    with Chromium(chromium_binary) as browser:
        page = browser.page()
        page.navigate(url)
        page.wait_for("!!document.querySelector('.graphiql-execute-button')")
        assert page.wait_for(QUERY_TEXT) == RECALL  # the page prefilled the editor from ?q=
        page.click(".graphiql-execute-button")
        shown = page.wait_for(f"(() => {{ const t = {RESULT_TEXT}; return t.includes('recall') ? t : ''; }})()")
        time.sleep(0.3)  # let the result pane finish painting
        shot = page.screenshot(tmp_path / "playground.png")
        requests = page.request_urls()
        errors = page.errors()
        page.close()

    hits = json.loads(shown)["data"]["recall"]
    assert hits[0]["memory"]["content"] == DAMAGED
    assert "linked to order #4521" in hits[0]["why"]
    # Everything the page loaded came from the server itself (GraphiQL inlines its fonts
    # as data: URIs); a self-hosted deployment has no CDN.
    origin = f"{live_server.url}/"
    assert any(u.startswith(f"{origin}playground-assets/graphiql.min.js") for u in requests)
    foreign = [u for u in requests if not (u.startswith(origin) or u.startswith("data:"))]
    assert foreign == []
    assert errors == []
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
