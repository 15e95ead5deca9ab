# A small image whose entry point is `archiver`:
#   docker build -t archiver .
#   docker run --rm -v "$PWD:/work" archiver validate policies/
# Built in two stages so the image holds the installed wheel, not the build tools.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY archiver ./archiver
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
# The wheels of this build and nothing else (--no-index): the versions are the ones
# the build stage resolved, so there is nothing to pin here.
# hadolint ignore=DL3013
RUN pip install --no-index --find-links /wheels cxone-archiver \
    && rm -rf /wheels \
    && useradd --uid 10001 --user-group --home-dir /work --create-home archiver
# Not root: archiver needs no privilege, and its state folder and audit files are
# created owner-only for this user.
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["archiver"]
CMD ["--help"]
