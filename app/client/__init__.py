"""The Python client for CaseGraph's GraphQL API, sync and async; it needs only httpx.

    from casegraph import CaseGraphClient           # the full install (the server)
    from casegraph_client import CaseGraphClient    # the client alone: pip install ./clients/python

    client = CaseGraphClient("http://127.0.0.1:3300")          # api_key="..." when one is set
    client.store(agent_id="support-bot", content="...", importance=0.8,
                 tags=["support", "returns", "customer:jane-doe"])
    hits = client.recall(agent_id="support-bot", query="Jane Doe previous interactions", top_k=5)

    async with AsyncCaseGraphClient("http://127.0.0.1:3300") as client:
        hits = await client.recall(agent_id="support-bot", query="...", top_k=5)

Answers are plain dicts in the API's camelCase; errors raise ``CaseGraphClientError`` with
the server's ``code``.

This folder is one source for two distributions: the server installs it as
``casegraph.client``; ``clients/python`` packages it as ``casegraph_client`` (the
``casegraph-client`` distribution). So it imports only the standard library, httpx and its
own modules, always relatively.
"""

from .clients import AsyncCaseGraphClient, CaseGraphClient
from .wire import CaseGraphClientError

__all__ = ["AsyncCaseGraphClient", "CaseGraphClient", "CaseGraphClientError"]
