# One image for every waqr service; the service is the command:
#   docker run waqr bot | api | ui | up | sim
# Build: docker build -t waqr .   (compose.yaml builds and wires it for you)

# --- build: the locked environment, made once ------------------------------------------------
FROM python:3.11-slim-bookworm AS build
# uv installs exactly what uv.lock pins (the same lock the tests run on).
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
# Dependencies first, so a source change does not rebuild them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY src ./src
RUN uv sync --frozen --no-dev --no-editable

# --- run -------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm
# tini: signals reach waqr and orphans are reaped (PID 1 duties). libmagic1: neonize imports
# python-magic, which loads it. Versions float with the Debian release the base image pins.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini libmagic1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home waqr \
    && mkdir -p /data \
    && chown waqr:waqr /data \
    && chmod 0700 /data
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    WAQR_DATA_DIR=/data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# bridge, bot (keep it unpublished), UI
EXPOSE 8000 3100 8501
# The API's check by default; compose.yaml sets each service's own (waqr health bot|api|ui).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["waqr", "health", "api"]
ENTRYPOINT ["tini", "--", "waqr"]
CMD ["api"]
