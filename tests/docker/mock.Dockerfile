# weir-mockllm:local, weir's mock providers (tests/mockllm): docker-compose.yaml's "mock" service.
# Built on weir-python:local, which has the mock's dependencies (built FROM scratch, no registry).
# Build context: tests/ (tests/.dockerignore leaves out bytecode). scripts/images builds both;
# `docker-compose up` builds this one from weir-python:local if it is missing.
FROM weir-python:local
# On weir-python's PYTHONPATH. Each instruction costs seconds on a base of this size: no more of them.
COPY mockllm /opt/weir/mockllm
CMD ["python", "-m", "mockllm", "--host", "0.0.0.0", "--port", "18000"]
