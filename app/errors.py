"""The CaseGraph exception tree.

Domain code raises these; the API layer turns them into GraphQL errors whose
``extensions.code`` is the ``code`` attribute. Nothing here imports HTTP or GraphQL.

    CaseGraphError                       code
    ├── InvalidInput                     INVALID_INPUT (or a more specific code)
    │   ├── ContentEmpty                 CONTENT_EMPTY
    │   ├── ContentTooLarge              CONTENT_TOO_LARGE
    │   ├── InvalidImportance            INVALID_IMPORTANCE
    │   ├── InvalidTopK                  INVALID_TOP_K
    │   ├── InvalidTag                   INVALID_TAG
    │   ├── InvalidId                    INVALID_ID
    │   ├── InvalidDate                  INVALID_DATE
    │   └── BatchTooLarge                BATCH_TOO_LARGE
    ├── NotFound                         NOT_FOUND
    │   ├── MemoryNotFound               MEMORY_NOT_FOUND
    │   ├── SessionNotFound              SESSION_NOT_FOUND
    │   ├── CustomerNotFound             CUSTOMER_NOT_FOUND
    │   ├── TicketNotFound               TICKET_NOT_FOUND
    │   └── NodeNotFound                 NODE_NOT_FOUND   (a graph reference that names nothing)
    ├── Conflict                         CONFLICT
    │   ├── SessionEnded                 SESSION_ENDED
    │   └── MemoryExists                 MEMORY_EXISTS  (an imported id is already stored)
    ├── AuthenticationRequired           UNAUTHENTICATED
    ├── Forbidden                        FORBIDDEN  (a valid key outside its agents or role)
    ├── StorageError                     STORAGE_ERROR  (a Kùzu failure, translated in graph.py)
    │   └── StorageFull                  STORAGE_FULL   (buffer pool full: docs/kuzu-quirks.md #9)
    └── ConfigurationError               CONFIGURATION_ERROR
        └── ModelMismatch                MODEL_MISMATCH
"""

from __future__ import annotations


class CaseGraphError(Exception):
    """Base class: a readable ``message`` plus a machine-readable ``code``."""

    code = "CASEGRAPH_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(CaseGraphError):
    code = "INVALID_INPUT"


class ContentEmpty(InvalidInput):
    code = "CONTENT_EMPTY"


class ContentTooLarge(InvalidInput):
    code = "CONTENT_TOO_LARGE"


class InvalidImportance(InvalidInput):
    code = "INVALID_IMPORTANCE"


class InvalidTopK(InvalidInput):
    code = "INVALID_TOP_K"


class InvalidTag(InvalidInput):
    code = "INVALID_TAG"


class InvalidId(InvalidInput):
    code = "INVALID_ID"


class InvalidDate(InvalidInput):
    code = "INVALID_DATE"


class BatchTooLarge(InvalidInput):
    code = "BATCH_TOO_LARGE"


class NotFound(CaseGraphError):
    code = "NOT_FOUND"


class MemoryNotFound(NotFound):
    code = "MEMORY_NOT_FOUND"


class SessionNotFound(NotFound):
    code = "SESSION_NOT_FOUND"


class CustomerNotFound(NotFound):
    code = "CUSTOMER_NOT_FOUND"


class TicketNotFound(NotFound):
    code = "TICKET_NOT_FOUND"


class NodeNotFound(NotFound):
    code = "NODE_NOT_FOUND"


class Conflict(CaseGraphError):
    code = "CONFLICT"


class SessionEnded(Conflict):
    code = "SESSION_ENDED"


class MemoryExists(Conflict):
    code = "MEMORY_EXISTS"


class AuthenticationRequired(CaseGraphError):
    code = "UNAUTHENTICATED"


class Forbidden(CaseGraphError):
    code = "FORBIDDEN"


class StorageError(CaseGraphError):
    code = "STORAGE_ERROR"
    # A transient refusal whose message names no internals: the client is told it (and its
    # code) and may retry; other storage errors are masked as INTERNAL_ERROR.
    transient = False


class StorageFull(StorageError):
    """Kùzu's buffer pool filled up (with pages changed since the last checkpoint, which it
    cannot evict). Nothing was written. The graph store checkpoints when it meets this and
    runs memory writes, ticket refreshes and reads once more (graph.py), so a caller sees
    it from those only if that did not help; other writes fail once."""

    code = "STORAGE_FULL"
    transient = True
    checkpointed: bool | None = None  # set by the transaction that checkpointed after it


class StorageUnavailable(StorageError):
    """The store's server could not be reached, another writer held the agent's lock too
    long (``STORE_BUSY``), or replicas did not confirm a write in time
    (``REPLICATION_TIMEOUT``). The write was not acknowledged; a retry may pass."""

    code = "STORE_UNAVAILABLE"
    transient = True


class ConfigurationError(CaseGraphError):
    code = "CONFIGURATION_ERROR"


class ModelMismatch(ConfigurationError):
    code = "MODEL_MISMATCH"
