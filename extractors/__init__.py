"""Entity extraction for CaseGraph: support ids by rules, names/orgs/places by spaCy NER.

Typical use::

    extractor = EntityExtractor()            # en_core_web_sm(-ish) or rules-only fallback
    extractor.extract("Jane Doe asked about order #4521")
    extractor.extract("what happened with reservation M20IZO?")  # identifier m20izo
    parse_tags(["customer:jane-doe", "order:#4521", "vip"])
"""

from .identifiers import ID_KINDS, IDENTIFIER, find_identifiers, identifier_key, split_handle
from .keys import (
    CUSTOMER_ID_RE,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    InvalidTagError,
    TagLinks,
    candidate_customer_ids,
    is_stop_word,
    normalise_customer_id,
    normalise_order_key,
    normalise_ticket_key,
    parse_tags,
    slugify,
    validate_tags,
)
from .pipeline import BLANK_MODEL, DEFAULT_MODELS, RULES_ONLY, EntityExtractor, ExtractorError
from .rules import (
    ENTITY_KINDS,
    ExtractedEntity,
    find_rule_entities,
    identifier_mentions,
    weak_identifiers,
)

__all__ = [
    "BLANK_MODEL",
    "CUSTOMER_ID_RE",
    "DEFAULT_MODELS",
    "ENTITY_KINDS",
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "RULES_ONLY",
    "EntityExtractor",
    "ID_KINDS",
    "IDENTIFIER",
    "ExtractedEntity",
    "ExtractorError",
    "InvalidTagError",
    "TagLinks",
    "candidate_customer_ids",
    "find_identifiers",
    "find_rule_entities",
    "identifier_key",
    "identifier_mentions",
    "is_stop_word",
    "normalise_customer_id",
    "normalise_order_key",
    "normalise_ticket_key",
    "parse_tags",
    "slugify",
    "split_handle",
    "validate_tags",
    "weak_identifiers",
]
