# One image for the three services; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY ingest ingest
COPY domain domain
COPY streams streams
COPY replay replay
COPY projections projections
COPY eventlog eventlog
COPY tajo_events tajo_events
COPY telemetry telemetry
RUN pip install --no-cache-dir . && useradd --create-home tajo
USER tajo
ENV TAJO_DATA_DIR=/home/tajo/data
ENTRYPOINT ["tajo-events"]
