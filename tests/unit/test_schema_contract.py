"""The GraphQL schema is a public contract: the live schema must match the committed one.

After an intended change, regenerate with:
    python -c "from casegraph.api.schema import build_schema; open('app/api/schema.graphql','w').write(build_schema().as_str()+'\\n')"
"""

from pathlib import Path

from casegraph.api.schema import build_schema

COMMITTED = Path(__file__).resolve().parents[2] / "app" / "api" / "schema.graphql"


def test_live_schema_matches_committed_contract():
    assert build_schema().as_str() + "\n" == COMMITTED.read_text()


def test_contract_keeps_the_public_names():
    sdl = COMMITTED.read_text()
    for name in (
        "store(input: StoreMemoryInput!): Memory!",
        "storeBatch(inputs: [StoreMemoryInput!]!): [Memory!]!",
        "sessionStart(agentId: String!, customerId: String = null, metadata: JSON = null): Session!",
        "sessionEnd(sessionId: ID!, summary: String = null): Session!",
        "forget(agentId: String!, id: ID!): Boolean!",
        "recall(agentId: String!, query: String!, topK: Int! = 5, filter: RecallFilter = null): [RecallHit!]!",
    ):
        assert name in sdl, name
