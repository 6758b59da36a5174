FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY agents ./agents
RUN pip install --no-cache-dir .
ENV WIREWATCH_WEB_HOST=0.0.0.0
EXPOSE 6066
ENTRYPOINT ["wirewatch"]
CMD ["worker"]
