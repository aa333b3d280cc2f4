# weir-python:local, FROM scratch: the CPython .venv was made from (relocated to /usr/local), its
# standard library, the shared libraries ldd lists for it and its extension modules, the CA bundle,
# and the packages of .venv that containers need as the virtualenv /opt/venv (first on PATH).
# Images built on it (weir-mockllm:local) put their own Python packages in /opt/weir. The build
# context is a root filesystem assembled by tests/docker/images.py, which passes the libraries'
# directories as LIBRARY_PATH: scripts/images python
FROM scratch
COPY rootfs/ /
ARG LIBRARY_PATH
ENV LD_LIBRARY_PATH=${LIBRARY_PATH} \
    PATH=/opt/venv/bin:/usr/local/bin \
    VIRTUAL_ENV=/opt/venv \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PYTHONPATH=/opt/weir \
    PYTHONUNBUFFERED=1
CMD ["python"]
