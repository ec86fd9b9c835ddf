"""`casegraph backup` snapshots a running server (while it takes writes); `casegraph
restore` brings the snapshot back; the round trip loses and changes nothing. On both
stores: the embedded data directory, or a FalkorDB namespace (each agent's graph dumped
under its lock, restored into the same namespace)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx

from tests.storage.backends import falkor, graph_count

ADMIN = "backup-admin-key-1"
ROOT = Path(__file__).resolve().parents[2]
QUERIES = ("damaged parcel refund", "order 4521", "Jane Doe preferences", "router reset")


def casegraph(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEGRAPH_")}
    return subprocess.run([sys.executable, "-m", "casegraph.ops.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def gql(server, query: str, variables: dict | None = None) -> dict:
    r = httpx.post(f"{server.url}/graphql", json={"query": query, "variables": variables or {}},
                   headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)
    body = r.json()
    assert "errors" not in body, body
    return body["data"]


def dump(services) -> dict:
    """Everything a restore must bring back, in comparable form."""
    g = services.graph

    def rows(query: str) -> list[tuple]:
        if falkor():  # a graph per agent
            return sorted(tuple(r) for agent_id in g.agents() for r in g.read(agent_id, query))
        return sorted(map(tuple, g.read(query)))

    ids = g.all_memory_ids()
    return {
        "memories": {a: g.get_memories(a, sorted(m)) for a, m in sorted(ids.items())},
        "sessions": {a: g.list_sessions(a, limit=10_000) for a in sorted(ids)},
        "customers": rows("MATCH (c:Customer) RETURN c.uid, c.name, c.created_at"),
        "orders": rows("MATCH (o:`Order`) RETURN o.uid"),
        "tickets": rows("MATCH (t:Ticket) RETURN t.uid, t.status"),
        "entities": rows("MATCH (e:Entity) RETURN e.uid, e.value"),
        "edges": graph_count(g, "MATCH ()-[r]->() RETURN count(r)"),
        "schema": g.schema_version,
        # The keyword hits in their order, and on the embedded engine their scores (BM25 over
        # the live memories: the same on a restored index built afresh). FalkorDB's keep
        # the document counts a process read until they drift by 1%: its order only.
        "keyword": [[(i, None if falkor() else round(score, 9)) for i, score in services.keywords.search(a, q, 10)]
                    for a in sorted(ids) for q in QUERIES],
        "recall": [[(h.memory.id, round(h.score, 5)) for h in services.recall.recall(a, q, top_k=5)]
                   for a in sorted(ids) for q in QUERIES],
    }


def seed(server) -> None:
    sid = gql(server, 'mutation { sessionStart(agentId: "bot", customerId: "jane-doe") { id } }')["sessionStart"]["id"]
    items = [
        {"agentId": "bot", "content": "Order #4521 arrived as a damaged parcel; refund issued",
         "tags": ["customer:jane-doe", "ticket:T-1"], "importance": 0.9, "metadata": {"channel": "email"}},
        {"agentId": "bot", "content": "Jane Doe prefers email updates", "sessionId": sid},
        {"agentId": "bot", "content": "Bob reset his router with the setup guide", "customerId": "bob-stone"},
        {"agentId": "other-bot", "content": "Carol's invoice for order #7788 was wrong", "customerId": "carol"},
    ]
    gql(server, "mutation($is: [StoreMemoryInput!]!) { storeBatch(inputs: $is) { id } }", {"is": items})
    gql(server, 'mutation($s: ID!) { sessionEnd(sessionId: $s, summary: "refund done") { id } }', {"s": sid})


def test_backup_restore_round_trip(live_server_factory, open_services, tmp_path):
    server = live_server_factory(api_key=ADMIN)
    seed(server)
    before = dump(server.services)

    backup_dir = tmp_path / "backup-1"
    done = casegraph("backup", "--to", str(backup_dir), "--url", server.url, "--api-key", ADMIN)
    assert done.returncode == 0, done.stderr
    # 4 stored + the summary memory that ending the session consolidated ("refund done").
    assert "5 memories" in done.stdout
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["memories"] == 5 and manifest["agents"] == {"bot": 4, "other-bot": 1}
    if falkor():
        assert manifest["store"] == "falkordb" and sorted(manifest["graphs"]) == ["bot", "other-bot"]
        assert set(manifest["files"]) == {*manifest["graphs"].values(), "falkordb/namespace.json"}
    else:
        assert "graph" in manifest["files"]
    assert not (backup_dir / "keys.json").exists()

    live_dir = server.services.settings.data_dir
    target = ["--data-dir", str(live_dir), "--store", server.services.settings.store]
    if not falkor():
        # The running server's directory is locked: restore refuses to touch it.
        refused = casegraph("restore", "--from", str(backup_dir), *target, "--force")
        assert refused.returncode == 2 and "in use" in refused.stderr

    # Change the data after the backup, then restore the backup over it (server stopped).
    gql(server, 'mutation { forgetCustomer(agentId: "bot", customerId: "jane-doe") { memories } }')
    gql(server, 'mutation { store(input: {agentId: "bot", content: "written after the backup"}) { id } }')
    server.__exit__(None, None, None)
    server.services.close()
    refused = casegraph("restore", "--from", str(backup_dir), *target)
    assert refused.returncode == 2 and "--force" in refused.stderr
    if falkor():  # a graph restores only under its own key's name
        elsewhere = server.services.settings.store.rsplit("/", 1)[0] + "/elsewhere"
        refused = casegraph("restore", "--from", str(backup_dir), "--store", elsewhere, "--force")
        assert refused.returncode == 2 and refused.stderr.rstrip().endswith("(RESTORE_NAMESPACE_MISMATCH)")
    restored = casegraph("restore", "--from", str(backup_dir), *target, "--force")
    assert restored.returncode == 0, restored.stderr
    if not falkor():
        assert list(live_dir.glob("pre-restore-*/graph"))  # the replaced data was moved aside, not deleted
    assert dump(open_services(live_dir)) == before


def test_backup_of_a_server_under_writes_is_consistent(live_server_factory, open_services, tmp_path):
    server = live_server_factory(api_key=ADMIN)
    acked: list[tuple[str, int]] = []  # (batch id, size), in acknowledgement order
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            bid, size = uuid.uuid4().hex[:12], 1 + n % 4
            items = [{"agentId": "bot", "content": f"batch {bid} item {i}: parcel update",
                      "metadata": {"batch": bid, "size": size}} for i in range(size)]
            gql(server, "mutation($is: [StoreMemoryInput!]!) { storeBatch(inputs: $is) { id } }", {"is": items})
            acked.append((bid, size))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(acked) < 5:
            stop.wait(0.05)
        acked_before = list(acked)
        backup_dir = tmp_path / "backup-2"
        done = casegraph("backup", "--to", str(backup_dir), "--url", server.url, "--api-key", ADMIN)
        acked_during = len(acked)
    finally:
        stop.set()
        thread.join()
    assert done.returncode == 0, done.stderr

    if falkor():  # into the namespace it was taken from, its server stopped
        target = server.services.settings.data_dir
        server.__exit__(None, None, None)
        server.services.close()
        into = ["--store", server.services.settings.store, "--force"]
    else:
        target = tmp_path / "restored"
        into = ["--data-dir", str(target)]
    assert casegraph("restore", "--from", str(backup_dir), *into).returncode == 0
    restored = open_services(target)
    batches: dict[str, list] = {}
    for m in restored.graph.get_memories("bot", sorted(restored.graph.all_memory_ids()["bot"])).values():
        batches.setdefault(m.metadata["batch"], []).append(m)
    sizes = dict(acked)
    assert set(batches) <= set(sizes)  # nothing that was never sent
    assert all(len(ms) == sizes[b] for b, ms in batches.items())  # no batch half in the snapshot
    assert {b for b, _ in acked_before} <= set(batches)  # everything acknowledged before it began
    assert len(batches) <= acked_during + 1
    # Vectors came back too (reconciled with the graph at start-up).
    assert restored.vectors.keys("bot") == restored.graph.all_memory_ids()["bot"]


def test_backup_needs_an_admin_key_and_restore_checks_the_files(live_server_factory, tmp_path):
    from casegraph.ops.keys import open_key_store

    server = live_server_factory(api_key=ADMIN)
    _, scoped_admin = open_key_store(server.services.settings).create("a", "admin", ["bot"])
    denied = casegraph("backup", "--to", str(tmp_path / "b0"), "--url", server.url, "--api-key", scoped_admin)
    assert denied.returncode == 1 and "FORBIDDEN" in denied.stderr
    assert casegraph("backup", "--to", str(tmp_path / "b0"), "--url", server.url).returncode == 1
    assert casegraph("backup", "--to", str(tmp_path / "b1"), "--url", server.url, "--api-key", ADMIN).returncode == 0
    first = next(iter(json.loads((tmp_path / "b1" / "manifest.json").read_text())["files"]))
    with open(tmp_path / "b1" / first, "r+b") as f:  # one flipped byte
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    bad = casegraph("restore", "--from", str(tmp_path / "b1"), "--data-dir", str(tmp_path / "r"),
                    "--store", server.services.settings.store)
    assert bad.returncode == 2 and "checksum" in bad.stderr and not (tmp_path / "r" / "graph").exists()


def test_a_backup_restores_only_into_its_kind_of_store(tmp_path):
    empty = tmp_path / "backup"
    empty.mkdir()
    (empty / "manifest.json").write_text(json.dumps({"format": 1, "files": {}}))  # an embedded one
    store = "falkordb://127.0.0.1:1/elsewhere"  # refused before any connection
    restore = casegraph("restore", "--from", str(empty), "--store", store, "--data-dir", str(tmp_path / "d"))
    assert restore.returncode == 2 and restore.stderr.rstrip().endswith("(BACKUP_STORE_MISMATCH)")
    assert "backup of an embedded store" in restore.stderr and not (tmp_path / "d").exists()
