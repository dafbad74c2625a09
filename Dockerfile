# syntax=docker/dockerfile:1
# The exchange: `exchange up` (the whole exchange, embedded SQLite in the /data volume) by
# default; `exchange serve broker|catalog|authz|departments|portal` runs one part (see
# compose.yaml). Checked by hadolint in `make lint`.
#
# The base is pinned to a patch release and a Debian release (not the floating
# `3.11-slim`), so a rebuild gets the same Python and the same system libraries. Pin a
# digest as well (`python:3.11.13-slim-bookworm@sha256:…`, from `docker buildx imagetools
# inspect`) where builds must be bit-for-bit reproducible.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- build: a virtual environment with the dependencies, then the exchange itself ---------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# A C compiler for the package's one extension (setup.py: the departments' bulk
# kernels); only this stage has it, the images copy the built environment. Debian's
# release is pinned by the base image, the compiler is whatever that release ships.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies in their own layer: it is rebuilt only when pyproject.toml changes, not on
# every change of the code. The list is read from pyproject.toml (the one place it is kept).
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install -r requirements.txt
COPY README.md setup.py ./
COPY src ./src
RUN pip install --no-deps .

# --- build-load: the same environment with Locust, for the load generator ------------------
FROM build AS build-load
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['load']))" > load.txt \
    && pip install -r load.txt

# --- base of both images: Python, the content, a non-root user -----------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EXCHANGE_HOST=0.0.0.0 \
    EXCHANGE_PORT=8000 \
    EXCHANGE_CATALOG_DIR=/app/catalog \
    EXCHANGE_SERVICES_DIR=/app/services \
    EXCHANGE_DATABASE_URL=sqlite:////data/exchange.db
# A fixed uid/gid, so a volume prepared on the host can be given to it (chown 10001).
RUN groupadd --system --gid 10001 exchange \
    && useradd --system --uid 10001 --gid exchange --home-dir /data --no-create-home exchange \
    && mkdir -p /data/loadtest /data/audit \
    && chown -R exchange:exchange /data
COPY catalog /app/catalog
COPY services /app/services
WORKDIR /data

# --- loadgen: Locust and loadtests/ (compose.yaml's locust-master and locust-worker) -------
FROM base AS loadgen
COPY --from=build-load /opt/venv /opt/venv
COPY loadtests /app/loadtests
USER 10001:10001
# Locust serves no /healthz; compose waits on the portal's health instead.
HEALTHCHECK NONE
CMD ["locust", "-f", "/app/loadtests/locustfile.py", "--headless", "-H", "http://127.0.0.1:8000"]

# --- exchange (the default target): the exchange itself -------------------------------------
FROM base AS exchange
COPY --from=build /opt/venv /opt/venv
# State (the SQLite database, its audit journal, the generated operator key) lives in
# /data, the working directory, so `.exchange/` of a PostgreSQL deployment is kept there.
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8000
# Every part answers /healthz on EXCHANGE_PORT; python is in the image, curl is not.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-m", "exchange.healthcheck"]
CMD ["exchange", "up"]
