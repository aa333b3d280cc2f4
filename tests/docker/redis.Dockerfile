# weir-redis:local, FROM scratch: Debian's redis-server (scripts/bootstrap installs it) and the
# shared libraries ldd lists for it. The build context is a root filesystem assembled by
# tests/docker/images.py, which passes the libraries' directories as LIBRARY_PATH: scripts/images redis
FROM scratch
COPY rootfs/ /
ARG LIBRARY_PATH
ENV LD_LIBRARY_PATH=${LIBRARY_PATH}
WORKDIR /data
EXPOSE 6379
# No configuration file: listen on every interface of the container, without protected mode (the
# port is only reachable where compose publishes it), keep nothing on disk.
CMD ["/usr/bin/redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
