"""Who is calling and what they may touch: one check for every API (GraphQL, REST...).

A request's bearer key becomes a ``Caller``: a role (read < write < admin) over a set of
agent ids (the tenants), or over all of them. This module decides; it does not find what a
request names. ``app/api/scope.py`` does that, for every root GraphQL field and every REST
route, and asks here before anything reaches the domain: ``authorize(caller, agent_id,
Role.X)`` for an agent named in the request, ``authorize_owned`` for an object named by id
alone (checked against its owner). Nested objects carry the agent id they were loaded for
and check it again. Operations over the whole service (backups, integrity reports) need
``authorize_service``.

    CASEGRAPH_API_KEY        one admin key over all agents (the original single key)
    keys.json (casegraph.ops.keys)     any number of scoped keys, managed by ``casegraph keys``
    neither                  no authentication; the server then only binds loopback

Nothing here imports HTTP or GraphQL code.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import IntEnum

from casegraph.errors import Forbidden
from casegraph.ops.keys import ALL_AGENTS, KeyStore


class Role(IntEnum):
    """Each role includes the ones below it."""

    READ = 1
    WRITE = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        return cls[name.upper()]


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str
    role: Role
    agents: frozenset[str] | None  # None = every agent

    def may(self, agent_id: str, role: Role) -> bool:
        return self.role >= role and (self.agents is None or agent_id in self.agents)

    @property
    def all_agents(self) -> bool:
        return self.agents is None


# No key configured at all (loopback only): the caller may do anything.
OPEN = Caller(key_id="open", role=Role.ADMIN, agents=None)
# The fail-closed default when no caller was attached to a request.
NOBODY = Caller(key_id="nobody", role=Role.READ, agents=frozenset())

_VERBS = {Role.READ: "read", Role.WRITE: "write to", Role.ADMIN: "administer"}


def authorize(caller: Caller, agent_id: str, role: Role) -> None:
    """Raise ``Forbidden`` unless ``caller`` holds ``role`` over ``agent_id``."""
    if not caller.may(agent_id, role):
        shown = agent_id if len(agent_id) <= 60 else agent_id[:60] + "..."
        raise Forbidden(f"this API key may not {_VERBS[role]} agent {shown!r}")


def authorize_owned(caller: Caller, owner_agent_id: str, role: Role, hidden: Exception) -> None:
    """For an object named by its id alone (a session): ``authorize`` against the agent that
    owns it, except that an object of an agent the caller may not even read does not exist
    for it (``hidden``, a not-found error), so ids cannot be probed across tenants."""
    if not caller.may(owner_agent_id, Role.READ):
        raise hidden
    authorize(caller, owner_agent_id, role)


def authorize_service(caller: Caller, role: Role = Role.ADMIN) -> None:
    """Raise ``Forbidden`` unless ``caller`` holds ``role`` over every agent (service-wide
    operations: backups, integrity reports, metrics that name every agent)."""
    if not (caller.role >= role and caller.all_agents):
        raise Forbidden(f"this needs a key with the {role.name.lower()} role over all agents")


class Authenticator:
    """Turns a bearer key into a Caller, from the single env key and the key file."""

    def __init__(self, admin_key: str | None, keys: KeyStore) -> None:
        self._admin_key = admin_key.encode() if admin_key else None
        self.keys = keys

    @property
    def required(self) -> bool:
        """True when any key is configured; read per request (keys can be created live)."""
        return self._admin_key is not None or self.keys.configured()

    def authenticate(self, token: str | None) -> Caller | None:
        """The caller for ``token``; OPEN when no key is configured; None when refused."""
        if not self.required:
            return OPEN
        if not token:
            return None
        if self._admin_key is not None and hmac.compare_digest(
            token.encode("utf-8", "surrogatepass"), self._admin_key
        ):
            return Caller(key_id="env", role=Role.ADMIN, agents=None)
        record = self.keys.verify(token)
        if record is None:
            return None
        agents = None if ALL_AGENTS in record.agents else frozenset(record.agents)
        return Caller(key_id=record.id, role=Role.parse(record.role), agents=agents)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
