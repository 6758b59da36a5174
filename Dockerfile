# Build stage: the full image has a C compiler for agents/watch/kernel.pyx (and any dependency
# without a wheel); the runtime image gets only the wheels.
FROM python:3.11 AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY streams ./streams
COPY agents ./agents
COPY board ./board
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# The sample watches file the compose file points at
COPY streams/samples ./streams/samples
# The worker runs unprivileged: a system user whose home holds the cache folder the worker
# writes its table data to (WIREWATCH_CACHE_DIR). Numeric USER, so a runtime that enforces
# "non-root" (Kubernetes runAsNonRoot) can tell without reading /etc/passwd.
RUN groupadd --system --gid 10001 wirewatch \
    && useradd --system --uid 10001 --gid wirewatch --home-dir /home/wirewatch --create-home \
       --shell /usr/sbin/nologin wirewatch \
    && mkdir -p /home/wirewatch/.cache/wirewatch && chown -R wirewatch:wirewatch /home/wirewatch
ENV HOME=/home/wirewatch \
    WIREWATCH_CACHE_DIR=/home/wirewatch/.cache/wirewatch \
    WIREWATCH_WEB_HOST=0.0.0.0
USER 10001:10001
EXPOSE 6066
ENTRYPOINT ["wirewatch"]
CMD ["worker"]
