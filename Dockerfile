# syntax=docker/dockerfile:1
# Build: docker build -t tracking-relay .   Run: docker run -p 8080:8080 -v relay-data:/data tracking-relay

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/relay
COPY requirements.lock ./
RUN /opt/relay/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY app ./app
RUN /opt/relay/bin/pip install --no-deps .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin relay \
    && mkdir -p /data && chown relay /data
COPY --from=build /opt/relay /opt/relay
ENV PATH=/opt/relay/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RELAY_DATABASE_URL=sqlite:////data/relay.db
WORKDIR /data
VOLUME ["/data"]
USER 10001
EXPOSE 8080
# Exec form: SIGTERM reaches the relay itself, which drains before exiting.
CMD ["relay", "serve", "--host", "0.0.0.0", "--port", "8080"]
