# syntax=docker/dockerfile:1
# GenVid: ONE image for the api, the operator and the worker (charts/genvid runs each with its
# own command; the operator hands this same image to the worker Jobs). No dev stack inside.
#
#   docker build -t genvid:0.1.0 .
#
# Layout: /app/.venv (locked dependencies, no dev groups), /app/{api,contracts,operator,worker,crds}
# (the web app is package data of the api: api/genvid_api/web/static);
# the packages are imported from source through PYTHONPATH (the project itself is not
# installed, so the dev stack package never enters the image).
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
# The same pinned uv as the Makefile, from PyPI.
RUN pip install uv==0.13.8
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY api/ api/
COPY contracts/ contracts/
COPY operator/ operator/
COPY worker/ worker/
COPY crds/ crds/
# Bytecode now: the root filesystem is read-only at run time.
RUN /app/.venv/bin/python -m compileall -q api contracts operator worker

FROM python:${PYTHON_VERSION}-slim-bookworm
LABEL org.opencontainers.image.title="genvid" \
      org.opencontainers.image.description="GenVid api, operator and worker" \
      org.opencontainers.image.version="0.1.0"
# Owned by root and not writable by the runtime user; /tmp is an emptyDir in the chart.
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONPATH=/app/api:/app/contracts:/app/operator:/app/worker \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
WORKDIR /app
# Non-root, numeric (runAsNonRoot can verify it); the same uid the worker Jobs run as.
USER 65532:65532
# The chart sets the command of each component; this is the api's.
EXPOSE 8000
CMD ["uvicorn", "--factory", "genvid_api.main:create_app", "--host", "0.0.0.0", "--port", "8000"]
