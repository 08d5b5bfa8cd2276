# The project's services (processor, sink, gateway, harvesters, query CLI) in one image;
# the compose file picks the subcommand. Configuration comes from LINEAGE_ environment variables.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY core ./core
COPY lineage ./lineage
COPY producers ./producers
COPY stream_processor ./stream_processor
COPY sinks ./sinks
COPY schemas ./schemas
RUN pip install . && useradd --system --uid 10001 lineage
USER lineage
ENTRYPOINT ["lineage"]
CMD ["--help"]
