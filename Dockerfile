# Build stage: the full image has a C compiler for agents/watchkernel.pyx (and any dependency
# without a wheel); the runtime image gets only the wheels.
FROM python:3.11 AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY streams ./streams
COPY agents ./agents
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# The sample watches file the compose file points at
COPY streams/samples ./streams/samples
ENV WIREWATCH_WEB_HOST=0.0.0.0
EXPOSE 6066
ENTRYPOINT ["wirewatch"]
CMD ["worker"]
