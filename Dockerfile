# CaseGraph: one process (Kùzu allows one writer), CPU-only torch, models baked in.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# CPU build of torch first, so sentence-transformers does not pull CUDA wheels.
ARG TORCH_SPEC="torch==2.13.0"
RUN pip install --no-cache-dir ${TORCH_SPEC}
COPY pyproject.toml README.md ./
COPY app ./app
COPY extractors ./extractors
COPY graph_schema ./graph_schema
RUN pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 casegraph && mkdir /data && chown casegraph /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    CASEGRAPH_DATA_DIR=/data \
    CASEGRAPH_HOST=0.0.0.0 \
    CASEGRAPH_PORT=3300
USER casegraph
VOLUME ["/data"]
EXPOSE 3300
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3300/health').status == 200 else 1)"
# Binding 0.0.0.0 requires CASEGRAPH_API_KEY: pass it at run time (-e CASEGRAPH_API_KEY=...).
CMD ["casegraph", "serve"]
