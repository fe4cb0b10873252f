# ALİM API image. Not built in this project's CI (no registry access there); kept minimal.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    ALIM_DATA_DIR=/data ALIM_ENV=production

WORKDIR /app
COPY pyproject.toml README.md langgraph.json ./
COPY alim ./alim
COPY graphs ./graphs
COPY tools ./tools
COPY api ./api
COPY clients/python ./clients/python
RUN pip install --no-cache-dir ./clients/python . \
 && useradd --system --uid 10001 alim && mkdir -p /data && chown alim /data
USER alim

# Build the knowledge index into the image's data dir at first start (persist /data as a volume).
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["alim", "serve", "--host", "0.0.0.0", "--port", "8000"]
