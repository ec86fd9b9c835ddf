"""Memory ids on FalkorDB: the directory ``NS:memories`` (memory id -> agent) and the claims that keep ids global.

A memory id is a global key (the embedded engine's Kùzu primary key refuses a second
memory with an id any agent uses), but each agent is its own graph here, and the graphs
are written under different locks. The directory is what makes an id one agent's: a
write claims its ids in it before it writes, atomically, and a second agent's claim of
a held id is refused, so two agents storing one id at the same instant cannot both land.

    claim     (no lock held) one script over every (id, agent) of the write: an id that
              is not in the directory, or is the agent's already, becomes the agent's;
              an id another agent holds refuses the whole claim, which sets nothing.
              What the claim newly set is the write's own, to release if it fails.
    take-over an id another agent holds but whose graph does not have it is a claim a
              write left without committing (it failed and could not release, or its
              process was killed in between). Under that agent's write lock, such ids are
              released (compare-and-delete) and the claim is tried again; an id the
              graph has is ``MemoryExists``.
    confirm   (under the agent's lock, in its transaction, before anything is queued)
              the claim again for the agent's ids; another agent's id there is
              ``MemoryExists``, and the write is refused whole.
    release   (a write that did not commit) under each agent's lock, the write's own
              claims that the agent's graph does not hold are compare-and-deleted; an
              id the graph has (the server applied the write and the reply was lost)
              stays.
    forget    (a delete or an erasure, after it committed, under the lock) the ids go
              from the directory, if they are still the agent's (compare-and-delete).

Why the confirm and the locks: between a write's claim and its commit, its claim may go
(another write of the same agent, which had claimed the same id, failed and released it;
or another agent took it over because the graph did not have it yet). Graphs change only
under their agent's lock, and releases and take-overs run under it too, so an id that
is the agent's when the write confirms under that lock stays the agent's until the
write has committed. A take-over that wins against a write still on its way makes that
write fail at its confirm: exactly one of two racing writers lands.

The domain's stores run inside ``writing`` (connection.py), which holds their agents'
locks from before the claim to the commit: a live claim is then under its claimant's
lock, and judging it waits for that write. The locks this thread holds are used as they
are; another agent's is waited for briefly only (``HOLDING_WAIT_S``), since two threads
each holding its own agent and wanting the other's would wait on each other.

Reembedding changes no id (the directory is untouched); imports are writes like any
other; a restore rebuilds the directory from the restored graphs (``rebuild``). A graph
dropped whole (``drop_agent``) leaves its entries, which are stale claims: the next
writer of such an id takes it over.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence

from casegraph.errors import MemoryExists, StorageError
from casegraph.storage.falkor.connection import Connection

log = logging.getLogger("casegraph.falkor")

# KEYS[1] the directory; ARGV agent, id, agent, id, ... Returns {1, ids newly set} or
# {0, {id, holder, id, holder, ...}} (nothing set) when other agents hold some.
_CLAIM = """
local held = {}
for i = 1, #ARGV, 2 do
  local agent = redis.call('HGET', KEYS[1], ARGV[i + 1])
  if agent and agent ~= ARGV[i] then
    held[#held + 1] = ARGV[i + 1]
    held[#held + 1] = agent
  end
end
if #held > 0 then return {0, held} end
local new = {}
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i + 1], ARGV[i]) == 1 then new[#new + 1] = ARGV[i + 1] end
end
return {1, new}
"""
# KEYS[1] the directory; ARGV agent, id, id, ... Deletes the ids that are still the agent's.
_UNCLAIM = """
local n = 0
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then n = n + redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return n
"""
# Rounds of claim and take-over before a contested claim gives up (each round either
# lands or finds that another write claimed an id again meanwhile).
_CLAIM_ROUNDS = 3
# How long a thread that holds write locks already (``writing``) waits for another
# agent's lock to judge or release a claim: two such threads waiting on each other's
# agents would otherwise both wait the full LOCK_WAIT_S. A live holder's write commits in
# milliseconds; short of it the write is refused with STORE_BUSY (nothing written: retry).
HOLDING_WAIT_S = 5.0
_IDS_PER_QUERY = 5_000

Claims = dict[str, list[str]]  # agent -> the ids a write newly set for it


def _exists(memory_id: str) -> MemoryExists:
    # The domain's words for an id it found stored (domain/memory.py), so a race lost at
    # the store reads as the check lost before it.
    return MemoryExists(f"memory {memory_id!r} already exists")


def stored_ids(conn: Connection, agent_id: str, ids: Sequence[str]) -> set[str]:
    """The ids among ``ids`` that the agent's graph holds."""
    found: set[str] = set()
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _IDS_PER_QUERY):
        chunk = unique[start : start + _IDS_PER_QUERY]
        found.update(r[0] for r in conn.read(agent_id, "UNWIND $ids AS i MATCH (m:Memory {id: i}) RETURN m.id",
                                             {"ids": chunk}))
    return found


def rebuild(conn: Connection) -> int:
    """The directory anew from every agent's graph (after a restore: a snapshot does not
    keep it, and what it held before belongs to the graphs the restore replaced)."""
    key = conn.key("memories")
    conn.redis.delete(key)
    n = 0
    for agent_id in conn.agents():
        ids = [r[0] for r in conn.read(agent_id, "MATCH (m:Memory) RETURN m.id")]
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            conn.redis.hset(key, mapping=dict.fromkeys(chunk, agent_id))
        n += len(ids)
    return n


class MemoryDirectory(Connection):
    """Claims of memory ids for writes, their release, and forgetting deleted ids (a part
    of ``FalkorStore``)."""

    def _claim(self, pairs: Sequence[tuple[str, str]]) -> tuple[list[str], dict[str, str]]:
        """One claim script: (ids newly set, {}) or ([], id -> the other agent holding it)."""
        argv = [x for memory_id, agent_id in pairs for x in (agent_id, memory_id)]
        ok, ids = self.redis.eval(_CLAIM, 1, self.key("memories"), *argv)
        if int(ok):
            return list(ids), {}
        return [], dict(zip(ids[::2], ids[1::2], strict=True))

    @contextlib.contextmanager
    def _locked(self, agent_id: str) -> Iterator[None]:
        """The agent's write lock for a claim's judgement or release: this thread's when
        it holds it already (``writing``), else taken (briefly waited for when the thread
        holds others: HOLDING_WAIT_S)."""
        held = self._held()
        if agent_id in held:
            yield
            return
        with self.lock(agent_id, wait_s=HOLDING_WAIT_S if held else None):
            yield

    def _unclaim(self, agent_id: str, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids:
            self.redis.eval(_UNCLAIM, 1, self.key("memories"), agent_id, *ids)

    def claim_memories(self, pairs: Sequence[tuple[str, str]]) -> Claims:
        """Claim (memory id, agent) for a write, before it takes any lock; return the ids
        this claim newly set, by agent. An id another agent's graph holds is
        ``MemoryExists`` (nothing claimed); one another agent holds without having it is
        taken over (module docstring)."""
        agent_of = dict(pairs)
        for _ in range(_CLAIM_ROUNDS):
            new, held = self._claim(pairs)
            if not held:
                claims: Claims = {}
                for memory_id in new:
                    claims.setdefault(agent_of[memory_id], []).append(memory_id)
                return claims
            by_holder: dict[str, list[str]] = {}
            for memory_id, holder in held.items():
                by_holder.setdefault(holder, []).append(memory_id)
            for holder, ids in sorted(by_holder.items()):
                # Under the holder's lock its graph does not change, and a write of its
                # that claimed these ids confirms them under this lock before it commits.
                with self._locked(holder):
                    stored = stored_ids(self, holder, ids)
                    if stored:
                        raise _exists(min(stored))
                    log.info("memory ids %s: agent %r's claim was never committed; taken over", ids[:3], holder)
                    self._unclaim(holder, ids)
        raise _exists(min(held))

    def confirm_claims(self, agent_id: str, ids: Sequence[str]) -> list[str]:
        """The claim of ``ids`` for the agent again, under its write lock just before its
        write: what this sets anew (a claim released or taken over since), or
        ``MemoryExists`` when another agent holds one of them now (nothing set)."""
        if not ids:
            return []
        new, held = self._claim([(memory_id, agent_id) for memory_id in ids])
        if held:
            raise _exists(min(held))
        return new

    def release_claims(self, claims: Claims) -> None:
        """A write that did not commit gives back the ids it newly claimed: under each
        agent's lock, those the agent's graph does not hold. Best effort (the server
        gone, a lock held too long): what stays is a stale claim, taken over by the next
        writer of the id (``claim_memories``)."""
        for agent_id, ids in sorted(claims.items()):
            if not ids:
                continue
            try:
                with self._locked(agent_id):
                    stored = stored_ids(self, agent_id, ids)
                    self._unclaim(agent_id, [i for i in ids if i not in stored])
            except StorageError as exc:
                log.warning("claims of %d memory ids of agent %r left (%s); the next writer of one takes it over",
                            len(ids), agent_id, exc)

    def forget_memories(self, agent_id: str, memory_ids: Sequence[str]) -> None:
        """Drop deleted memories from the directory (after their delete committed, under
        the agent's lock), if they are still the agent's."""
        self._unclaim(agent_id, memory_ids)
