# livepeer-emulator as a CI service container: configured only through
# LIVEPEER_EMULATOR_* env vars, state in the /data volume, health via
# `livepeer-emulator healthcheck`. See "Use in CI" in README.md.
#
#   docker build -t livepeer-emulator .
#   docker run --rm -p 3000:3000 livepeer-emulator

# Stage 1: install the package (not editable) and its dependencies into a venv.
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/livepeer-emulator
COPY . /src
# The shipped scenarios are data files of the distribution: they land in
# /opt/livepeer-emulator/share/livepeer-emulator/scenarios, where the emulator finds them.
# Bytecode is compiled here: the non-root user cannot write it at run time, and every
# healthcheck would otherwise compile its imports again.
RUN /opt/livepeer-emulator/bin/pip install --no-cache-dir /src \
 && /opt/livepeer-emulator/bin/livepeer-emulator healthcheck --help >/dev/null

# Stage 2: the runtime: Debian's Python and ffmpeg, the venv, nothing else.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 emulator \
 && useradd --uid 10001 --gid emulator --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin emulator \
 && mkdir /data \
 && chown emulator:emulator /data
COPY --from=build /opt/livepeer-emulator /opt/livepeer-emulator

ENV PATH=/opt/livepeer-emulator/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LIVEPEER_EMULATOR_HOST=0.0.0.0 \
    LIVEPEER_EMULATOR_PORT=3000 \
    LIVEPEER_EMULATOR_DATA_DIR=/data

USER emulator
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000

# Unhealthy until the server answers /_emulator/health, which it does only once the
# database is open and ffprobe was found. Plain Python: no curl in the image.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["livepeer-emulator", "healthcheck"]

# Exec form: the server is PID 1 and gets SIGTERM itself (it stops within a few seconds).
CMD ["livepeer-emulator", "serve"]
