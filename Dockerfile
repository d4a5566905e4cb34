# The modelplane operator image.
#
#   docker build -t modelplane:0.1.0 .
#
# Two stages: the build stage installs the locked dependencies and the project into a virtual
# environment with uv; the final stage copies only that environment onto the same Python base
# and runs as an unprivileged user. Nothing is written at run time except under /tmp (the chart
# mounts an emptyDir there and makes the root filesystem read-only), so the byte code is
# compiled at build time. Pin the base by digest in your build (`python:...@sha256:...`) when
# your registry allows it; tests/packaging/test_dockerfile.py checks these rules with hadolint.

# The base is named in full in both stages (not through an ARG) so that hadolint sees the pin.
FROM python:3.11.13-slim-bookworm AS build
# uv from PyPI at the version scripts/bootstrap.sh uses.
RUN pip install --no-cache-dir uv==0.13.8
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/modelplane
WORKDIR /src
# Dependencies first, from the lock alone, so that a source change reuses this layer.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY src ./src
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11.13-slim-bookworm
LABEL org.opencontainers.image.title="modelplane" \
      org.opencontainers.image.description="Kubernetes operator for the machine-learning model lifecycle" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed, unprivileged uid/gid that matches the chart's runAsUser, so runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 modelplane \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin modelplane
COPY --from=build /opt/modelplane /opt/modelplane
ENV PATH=/opt/modelplane/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080 8081 9443
ENTRYPOINT ["python", "-m", "modelplane.operator"]
CMD ["--all-namespaces"]
