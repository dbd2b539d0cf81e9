# retention: the engine with the shipped catalog. By default it runs the scheduler, firing
# the jobs of /catalog/jobs on their schedules; the web workspace is the same image with the
# command `serve --host 0.0.0.0` (port 8080, behind an HTTPS proxy), run as a second container. Mount your own catalog on /catalog and keep
# /state (state database, signing key, archive, reports) on a persistent volume: the catalog
# may be mounted read-only, since nothing is ever written under /catalog.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/retention
COPY pyproject.toml README.md retention.yaml ./
# The package ships the catalog (retention/demo/shipped links to these) so `retention demo` runs
# from any directory of an installed copy.
COPY policies ./policies
COPY connectors ./connectors
COPY jobs ./jobs
COPY retention ./retention
# The package itself is local; its dependency ranges are pinned in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[postgresql,mysql]"

COPY retention.yaml /catalog/retention.yaml
COPY policies /catalog/policies
COPY connectors /catalog/connectors
COPY jobs /catalog/jobs

RUN useradd --system --uid 10001 --no-create-home --home-dir /state retention \
    && mkdir -p /state \
    && chown retention /state

ENV RETENTION_CATALOG=/catalog \
    RETENTION_STATE=sqlite:////state/retention-state.db \
    RETENTION_SIGNING_KEY=/state/keys/signing.pem \
    RETENTION_ARCHIVE=/state/archive \
    RETENTION_REPORTS=/state/reports

USER 10001
WORKDIR /state
VOLUME ["/catalog", "/state"]
# The web workspace (`retention serve --host 0.0.0.0`) listens here.
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["retention"]
CMD ["scheduler"]
