"""Scoped API keys: the key file, the CLI, the bind rule, and enforcement over real HTTP."""

from __future__ import annotations

import json
import os
import stat

import httpx
import pytest
from casegraph.api.auth import OPEN, Authenticator, Caller, Role, authorize, authorize_service
from casegraph.errors import ConfigurationError, Forbidden
from casegraph.ops.cli import main as cli
from casegraph.ops.keys import KeyStore, ServerKeyStore, hash_key, open_key_store
from casegraph.ops.settings import Settings

from tests.conftest import falkor_server, make_settings

STORE = "mutation($i: StoreMemoryInput!) { store(input: $i) { id agentId } }"
RECALL = "query($a: String!) { recall(agentId: $a, query: \"refund\") { memory { id } } }"


def post(server, query: str, variables: dict | None = None, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{server.url}/graphql", json={"query": query, "variables": variables or {}},
                      headers=headers, timeout=60)


def code(response: httpx.Response) -> str:
    body = response.json()
    if "errors" in body:
        return body["errors"][0]["extensions"]["code"]
    return body.get("code", "OK")


# -- the key file ----------------------------------------------------------------------
def test_keys_are_stored_hashed_and_verified(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    assert not store.configured()
    record, key = store.create("bot a", "write", ["bot-a", "bot-a", "bot-b"])
    assert record.agents == ("bot-a", "bot-b") and record.role == "write"
    text = (tmp_path / "keys.json").read_text()
    assert key not in text and key.split("_", 2)[2] not in text  # the secret is nowhere on disk
    assert json.loads(text)["keys"][0]["hash"] == hash_key(key)
    assert stat.S_IMODE(os.stat(tmp_path / "keys.json").st_mode) == 0o600
    assert store.verify(key) == record
    assert store.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.verify("cg_000000000000_" + key.split("_", 2)[2]) is None  # right secret, wrong id
    assert store.verify("not-a-key") is None
    # A second process (the CLI) revokes it: this store notices the file changed.
    KeyStore(tmp_path / "keys.json").revoke(record.id)
    assert store.verify(key) is None and store.active() == []
    with pytest.raises(Exception) as err:
        store.create("x", "superuser", ["bot-a"])
    assert err.value.code == "INVALID_ROLE"
    with pytest.raises(Exception) as err:
        store.create("x", "read", ["bad agent!"])
    assert err.value.code == "INVALID_AGENT_ID"


def test_a_damaged_key_file_fails_closed(tmp_path):
    (tmp_path / "keys.json").write_text("{not json")
    auth = Authenticator(None, KeyStore(tmp_path / "keys.json"))
    assert auth.required
    with pytest.raises(ConfigurationError):
        auth.authenticate("cg_0123456789ab_whatever")


def test_callers_and_the_one_check(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    auth = Authenticator(None, store)
    assert auth.authenticate(None) is OPEN  # nothing configured: loopback-only open mode
    _, read_key = store.create("r", "read", ["bot-a"])
    _, admin_key = store.create("a", "admin", ["*"])
    assert auth.authenticate(None) is None  # the key file exists: a key is required now
    reader = auth.authenticate(read_key)
    assert reader.may("bot-a", Role.READ) and not reader.may("bot-a", Role.WRITE)
    assert not reader.may("bot-b", Role.READ)
    with pytest.raises(Forbidden):
        authorize(reader, "bot-b", Role.READ)
    with pytest.raises(Forbidden):
        authorize_service(reader)
    admin = auth.authenticate(admin_key)
    assert admin.all_agents and admin.may("anyone", Role.ADMIN)
    authorize_service(admin)
    env = Authenticator("legacy-admin-key", store).authenticate("legacy-admin-key")
    assert env == Caller(key_id="env", role=Role.ADMIN, agents=None)
    assert Authenticator("legacy-admin-key", store).authenticate("legacy-admin-kez") is None


# -- keys in a FalkorDB server (every process sharing it agrees on them) ---------------------
def test_server_keys_are_shared_hashed_and_verified():
    url = falkor_server().namespace_url()
    mine, theirs = ServerKeyStore(url), ServerKeyStore(url)  # two processes' views
    try:
        assert not mine.configured() and not theirs.configured()
        record, key = mine.create("bot a", "write", ["bot-a", "bot-a", "bot-b"])
        assert record.agents == ("bot-a", "bot-b") and theirs.configured()
        assert theirs.verify(key) == record and mine.verify(key) == record
        assert theirs.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert theirs.verify("cg_000000000000_" + key.split("_", 2)[2]) is None  # right secret, wrong id
        stored = falkor_server().client().hgetall(f"{url.rsplit('/', 1)[1]}:keys")
        assert list(stored) == [record.id] and json.loads(stored[record.id])["hash"] == hash_key(key)
        assert key.split("_", 2)[2] not in stored[record.id]  # the secret is nowhere in the server
        # Revoked through one, refused by the other at once; still configured (revoked keys count).
        assert theirs.revoke(record.id).revoked_at is not None
        assert mine.verify(key) is None and mine.active() == [] and mine.configured()
        with pytest.raises(Exception) as err:
            mine.revoke("0123456789ab")
        assert err.value.code == "KEY_NOT_FOUND"
        with pytest.raises(Exception) as err:
            mine.create("x", "superuser", ["bot-a"])
        assert err.value.code == "INVALID_ROLE"
    finally:
        mine.close()
        theirs.close()


def test_concurrent_server_key_changes_lose_nothing():
    from concurrent.futures import ThreadPoolExecutor

    url = falkor_server().namespace_url()
    stores = [ServerKeyStore(url) for _ in range(2)]
    try:
        first, _ = stores[0].create("first", "read", ["bot"])
        with ThreadPoolExecutor(8) as pool:
            made = list(pool.map(lambda i: stores[i % 2].create(f"k{i}", "read", ["bot"]), range(40)))
            revoked = pool.submit(stores[1].revoke, first.id)
        ids = {r.id for r, _ in made}
        assert len(ids) == 40 and revoked.result().revoked_at is not None
        for store in stores:
            assert {r.id for r in store.active()} == ids
            assert all(store.verify(key) == record for record, key in made)
    finally:
        for store in stores:
            store.close()


def test_a_damaged_server_key_fails_closed():
    url = falkor_server().namespace_url()
    store = ServerKeyStore(url)
    try:
        namespace = url.rsplit("/", 1)[1]
        falkor_server().client().hset(f"{namespace}:keys", "0123456789ab", "{not json")
        falkor_server().client().incr(f"{namespace}:keys:version")
        auth = Authenticator(None, store)
        with pytest.raises(ConfigurationError):
            auth.authenticate("cg_0123456789ab_whatever")
    finally:
        store.close()


def test_with_wait_a_key_change_is_on_the_replicas_when_acknowledged(tmp_path):
    from casegraph.errors import StorageError

    from tests.falkor_server import FalkorServer

    with FalkorServer(tmp_path / "primary") as primary:
        lonely = ServerKeyStore(f"{primary.url}/k?wait=1&wait_ms=200")  # no replica to wait for
        with pytest.raises(StorageError) as err:
            lonely.create("a", "read", ["bot"])
        assert err.value.code == "REPLICATION_TIMEOUT"
        lonely.close()
        with FalkorServer(tmp_path / "replica", replica_of=("127.0.0.1", primary.port)) as replica:
            store = ServerKeyStore(f"{primary.url}/k?wait=1&wait_ms=30000")
            record, key = store.create("b", "read", ["bot"])
            assert record.id in replica.client().hgetall("k:keys")  # there when acknowledged
            store.revoke(record.id)
            assert json.loads(replica.client().hget("k:keys", record.id))["revoked_at"] is not None
            store.close()


def test_the_store_decides_where_keys_live(tmp_path, capsys):
    embedded = Settings.from_env({}, data_dir=tmp_path / "d")
    assert type(open_key_store(embedded)) is KeyStore and open_key_store(embedded).path == tmp_path / "d" / "keys.json"
    url = falkor_server().namespace_url()
    server = open_key_store(Settings.from_env({}, data_dir=tmp_path / "d", store=url))
    assert isinstance(server, ServerKeyStore)
    with pytest.raises(ConfigurationError, match="keys live in the server"):
        Settings.from_env({}, store=url, keys_file=tmp_path / "keys.json")
    # `casegraph keys --store` works on the server's keys, whatever the data directory.
    assert cli(["keys", "create", "--store", url, "--data-dir", str(tmp_path / "x"), "--role", "read",
                "--agent", "bot"]) == 0
    key = capsys.readouterr().out.strip()
    assert server.verify(key) is not None and not (tmp_path / "x" / "keys.json").exists()
    assert cli(["keys", "revoke", "--store", url, key[3:15]]) == 0
    assert server.verify(key) is None
    server.close()


# -- the CLI and the bind rule ------------------------------------------------------------
def test_keys_cli_prints_the_key_once(tmp_path, capsys):
    data = str(tmp_path / "data")
    assert cli(["keys", "create", "--data-dir", data, "--role", "write", "--agent", "bot-a", "--name", "A"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("cg_")
    assert cli(["keys", "list", "--data-dir", data]) == 0
    listing = capsys.readouterr().out
    kid = key[3:15]
    assert kid in listing and "write" in listing and "bot-a" in listing and "active" in listing
    assert key not in listing and "sha256" not in listing
    assert cli(["keys", "revoke", "--data-dir", data, kid]) == 0
    capsys.readouterr()
    assert cli(["keys", "list", "--data-dir", data]) == 0
    assert "revoked" in capsys.readouterr().out
    assert cli(["keys", "create", "--data-dir", data, "--role", "read"]) == 2  # no agents given
    assert cli(["keys", "revoke", "--data-dir", data, "nope"]) == 2


def test_no_key_no_public_bind(tmp_path):
    settings = make_settings(tmp_path / "d", host="0.0.0.0")
    with pytest.raises(ConfigurationError):
        settings.check_bind_allowed()
    make_settings(tmp_path / "d", host="127.0.0.1").check_bind_allowed()
    make_settings(tmp_path / "d", host="0.0.0.0", api_key="env-admin-key").check_bind_allowed()
    store = open_key_store(settings)
    record, _ = store.create("a", "read", ["bot"])
    settings.check_bind_allowed()  # an active key (in the key file, or the server) is enough
    store.revoke(record.id)
    with pytest.raises(ConfigurationError):
        settings.check_bind_allowed()  # ...a revoked one is not
    assert cli(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "e")]) == 2


# -- enforcement over HTTP ---------------------------------------------------------------------
@pytest.fixture
def keyed_server(live_server_factory):
    """A server with an env admin key and three scoped keys (created before any request)."""
    server = live_server_factory(api_key="env-admin-key-1")
    store = open_key_store(server.services.settings)
    keys = {
        "a_read": store.create("a-read", "read", ["bot-a"])[1],
        "a_write": store.create("a-write", "write", ["bot-a"])[1],
        "b_write": store.create("b-write", "write", ["bot-b"])[1],
    }
    server.keys, server.store = keys, store
    return server


def test_scopes_are_enforced_over_http(keyed_server):
    s, k = keyed_server, keyed_server.keys
    assert post(s, RECALL, {"a": "bot-a"}).status_code == 401
    stored = post(s, STORE, {"i": {"agentId": "bot-a", "content": "refund issued"}}, k["a_write"]).json()
    memory_id = stored["data"]["store"]["id"]
    # A read key reads but cannot write; no key crosses to another agent.
    assert code(post(s, STORE, {"i": {"agentId": "bot-a", "content": "x"}}, k["a_read"])) == "FORBIDDEN"
    assert code(post(s, STORE, {"i": {"agentId": "bot-a", "content": "x"}}, k["b_write"])) == "FORBIDDEN"
    assert post(s, RECALL, {"a": "bot-a"}, k["a_read"]).json()["data"]["recall"][0]["memory"]["id"] == memory_id
    assert code(post(s, RECALL, {"a": "bot-a"}, k["b_write"])) == "FORBIDDEN"
    get = 'query($id: ID!) { memory(agentId: "bot-a", id: $id) { id } }'
    assert code(post(s, get, {"id": memory_id}, k["b_write"])) == "FORBIDDEN"
    forget = 'mutation($id: ID!) { forget(agentId: "bot-a", id: $id) }'
    assert code(post(s, forget, {"id": memory_id}, k["b_write"])) == "FORBIDDEN"
    assert code(post(s, forget.replace("bot-a", "bot-b"), {"id": memory_id}, k["b_write"])) == "MEMORY_NOT_FOUND"
    batch = "mutation($is: [StoreMemoryInput!]!) { storeBatch(inputs: $is) { id } }"
    mixed = [{"agentId": "bot-b", "content": "mine"}, {"agentId": "bot-a", "content": "theirs"}]
    assert code(post(s, batch, {"is": mixed}, k["b_write"])) == "FORBIDDEN"
    assert s.services.graph.count_memories() == 1  # nothing of the refused batch was stored
    # Erasure and export need admin; the env key is an admin over every agent.
    erase = 'mutation { forgetCustomer(agentId: "bot-a", customerId: "jane") { memories } }'
    assert code(post(s, erase, key=k["a_write"])) == "FORBIDDEN"
    assert post(s, erase, key="env-admin-key-1").json()["data"]["forgetCustomer"] == {"memories": 0}
    assert httpx.get(f"{s.url}/admin/integrity", headers={"Authorization": f"Bearer {k['a_write']}"}).status_code == 403
    assert httpx.get(f"{s.url}/admin/integrity", headers={"Authorization": "Bearer env-admin-key-1"}).json()["ok"]
    assert post(s, forget, {"id": memory_id}, k["a_write"]).json()["data"]["forget"] is True


def test_another_tenants_session_cannot_be_ended(keyed_server):
    s, k = keyed_server, keyed_server.keys
    start = 'mutation { sessionStart(agentId: "bot-a") { id } }'
    sid = post(s, start, key=k["a_write"]).json()["data"]["sessionStart"]["id"]
    end = 'mutation($s: ID!) { sessionEnd(sessionId: $s) { id } }'
    assert code(post(s, end, {"s": sid}, k["b_write"])) == "SESSION_NOT_FOUND"  # not even its existence
    assert code(post(s, end, {"s": sid}, k["a_read"])) == "FORBIDDEN"
    assert s.services.graph.get_session(sid).ended_at is None
    assert post(s, end, {"s": sid}, k["a_write"]).json()["data"]["sessionEnd"]["id"] == sid


def test_keys_created_and_revoked_while_serving(keyed_server):
    s = keyed_server
    record, key = s.store.create("late", "read", ["bot-a"])
    assert post(s, RECALL, {"a": "bot-a"}, key).json()["data"]["recall"] == []
    s.store.revoke(record.id)
    r = post(s, RECALL, {"a": "bot-a"}, key)
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"
    assert post(s, RECALL, {"a": "bot-a"}, "env-admin-key-1").status_code == 200  # the old single key


def test_a_key_file_created_on_an_open_server_closes_it(live_server):
    assert post(live_server, RECALL, {"a": "bot"}).status_code == 200
    _, key = open_key_store(live_server.services.settings).create("first", "read", ["bot"])
    assert post(live_server, RECALL, {"a": "bot"}).status_code == 401
    assert post(live_server, RECALL, {"a": "bot"}, key).status_code == 200
