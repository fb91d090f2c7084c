#!/usr/bin/env python3
"""Build the service-container image with podman, run it, and use it from the host.

    sudo python3 scripts/container_smoke.py [--fresh] [--keep]

Steps, each printed as it runs: make the Dockerfile's base image locally (debootstrap of
the Debian release its FROM names, `podman import` under that exact tag; cached in podman
for re-runs), build with --pull=never, run with only LIVEPEER_EMULATOR_* env vars and a
/data volume, wait for the image's HEALTHCHECK, then over the published port: upload →
ready → playback → restart and find the asset again → a new container on the same volume
with a public URL → delete, and stop with SIGTERM within 5 s.

Needs root, podman, runc and debootstrap (`.ci/run` installs them). No container registry
is needed: only the Debian mirror (for debootstrap and apt in the build) and PyPI (for pip).
Standard library only, so it runs with any python3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample.mp4"
IMAGE = "localhost/livepeer-emulator:smoke"
NAME = "livepeer-emulator-smoke"
VOLUME = "livepeer-emulator-smoke-data"
API_KEY = "smoke-key"
PUBLIC_URL = "http://livepeer:3000"
STOP_LIMIT_S = 5.0
MIN_FREE_GB = 3.0
# podman as root asks for nofile=1048576 and nproc=4194304; a sandbox without
# CAP_SYS_RESOURCE refuses those, so ask for limits any machine grants.
ULIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
# Without systemd podman cannot run HEALTHCHECK on a timer; this script runs it itself
# with `podman healthcheck run`, which executes the image's own HEALTHCHECK command.
RUN_FLAGS = ["--runtime", "runc", "--health-interval", "disable", *ULIMITS]

_started = time.monotonic()


class SmokeError(Exception):
    pass


def step(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f}s] {message}", flush=True)


def podman(*args: str, check: bool = True, timeout: float = 900) -> str:
    proc = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise SmokeError(
            f"podman {' '.join(args[:3])} … failed ({proc.returncode}):\n"
            f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    return proc.stdout.strip()


def wait_for(what: str, probe: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise SmokeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)  # a script polling a container: nothing to advance


# --- the base image -------------------------------------------------------------------


def base_images(dockerfile: Path) -> list[str]:
    """The external images the Dockerfile's FROM lines name (not its own stages)."""
    stages: set[str] = set()
    bases: list[str] = []
    for line in dockerfile.read_text().splitlines():
        match = re.match(r"\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if not match:
            continue
        image, alias = match.group(1), match.group(2)
        if image not in stages and image not in bases:
            bases.append(image)
        if alias:
            stages.add(alias)
    return bases


def qualified(image: str) -> str:
    """`debian:bookworm-slim` → `docker.io/library/debian:bookworm-slim`, as docker reads it."""
    first = image.split("/")[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if "/" in image else f"docker.io/library/{image}"


def debian_suite(image: str) -> str:
    match = re.fullmatch(r"docker\.io/library/debian:([a-z]+)(?:-slim)?", qualified(image))
    if not match:
        raise SmokeError(f"can only make Debian base images locally, not {image}")
    return match.group(1)


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (DEBIAN_MIRROR overrides it)."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    conf = Path("/etc/apt")
    sources = [conf / "sources.list", *sorted((conf / "sources.list.d").glob("*"))]
    for source in sources:
        if not source.is_file() or source.suffix not in (".list", ".sources"):
            continue
        for url in re.findall(r"(?:URIs:|deb)\s+(?:\[[^]]*\]\s+)?(\S+)", source.read_text()):
            if re.search(r"/debian/?$", url):
                return str(url)
    raise SmokeError("no Debian mirror in /etc/apt sources; set DEBIAN_MIRROR")


def ensure_base_image(image: str) -> None:
    tag = qualified(image)
    if _exists(tag):
        step(f"base image {tag}: cached in podman")
        return
    suite, mirror = debian_suite(image), debian_mirror()
    step(f"base image {tag}: debootstrap --variant=minbase {suite} from {mirror}")
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="smoke-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", suite, str(rootfs), mirror],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=900,
        )
        # As in Debian's slim images: no package cache or lists in the image.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / junk).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["podman", "import", "--quiet", "-", tag],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise SmokeError(f"podman import failed: {imported.stderr}")
    step(f"base image {tag}: imported in {time.monotonic() - began:.0f}s")


def _exists(tag: str) -> bool:
    return _podman_ok("image", "exists", tag)


def container_logs() -> str:
    """The server's output (podman logs writes the container's stderr to its own)."""
    proc = subprocess.run(
        ["podman", "logs", NAME], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return proc.stdout.strip()


def _podman_ok(*args: str) -> bool:
    return subprocess.run(["podman", *args], capture_output=True, timeout=60).returncode == 0


# --- the image ------------------------------------------------------------------------


@contextmanager
def pip_trust() -> Iterator[list[str]]:
    """Build mounts that make pip in the build trust what this machine trusts.

    A machine behind a TLS-inspecting proxy has that proxy's CA in its system bundle, but
    pip in the build uses its own. The mount is a directory over root's config dir (which
    leaves at most an empty /root/.config behind), so the Dockerfile stays a plain one.
    """
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if not bundle.is_file():
        yield []
        return
    with tempfile.TemporaryDirectory(prefix="smoke-pip-") as tmp:
        pip_dir = Path(tmp) / "pip"
        pip_dir.mkdir()
        shutil.copy(bundle, pip_dir / "ca.crt")
        (pip_dir / "pip.conf").write_text("[global]\ncert = /root/.config/pip/ca.crt\n")
        os.chmod(tmp, 0o755)
        yield ["--volume", f"{tmp}:/root/.config:ro"]


def build_image() -> None:
    step(f"build {IMAGE} from {ROOT / 'Dockerfile'} (podman build --pull=never)")
    began = time.monotonic()
    with pip_trust() as mounts:
        podman(
            "build",
            "--pull=never",
            "--runtime",
            "runc",
            "--format",
            "docker",  # OCI images drop HEALTHCHECK
            *mounts,
            "--tag",
            IMAGE,
            str(ROOT),
        )
    size = podman("image", "inspect", IMAGE, "--format", "{{.Size}}")
    step(f"built in {time.monotonic() - began:.0f}s, {int(size) / 1e6:.0f} MB")


# --- the container --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Container:
    def __init__(self, port: int) -> None:
        self.port = port
        self.root = f"http://127.0.0.1:{port}"

    def start(self, **env: str) -> None:
        settings = {"LIVEPEER_EMULATOR_API_KEY": API_KEY, **env}
        # Multi-line values (inline YAML) shown on one line, as JSON strings.
        shown = " ".join(
            f"{k}={json.dumps(v)}" if "\n" in v else f"{k}={v}" for k, v in settings.items()
        )
        step(f"run {NAME} on 127.0.0.1:{self.port} → 3000, volume {VOLUME}:/data, {shown}")
        podman("rm", "--force", "--ignore", NAME)
        envs = [arg for k, v in settings.items() for arg in ("--env", f"{k}={v}")]
        podman(
            "run",
            "--detach",
            "--name",
            NAME,
            *RUN_FLAGS,
            "--publish",
            f"127.0.0.1:{self.port}:3000",
            "--volume",
            f"{VOLUME}:/data",
            *envs,
            IMAGE,
        )

    def wait_healthy(self) -> None:
        began = time.monotonic()

        def healthy() -> bool:
            if podman("inspect", NAME, "--format", "{{.State.Running}}") != "true":
                raise SmokeError("the container stopped before it was healthy")
            # Exit code 0: the image's HEALTHCHECK command reported healthy.
            return _podman_ok("healthcheck", "run", NAME)

        wait_for("the image's HEALTHCHECK", healthy, 60)
        status = podman("inspect", NAME, "--format", "{{.State.Health.Status}}")
        assert status == "healthy", status
        code, body = self.request("GET", "/_emulator/health")
        assert (code, body) == (200, {"status": "ok"}), (code, body)
        step(f"healthy after {time.monotonic() - began:.1f}s (HEALTHCHECK and GET from the host)")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        url: str | None = None,
        data: bytes | None = None,
        key: str | None = API_KEY,
    ) -> tuple[int, Any]:
        if body is not None:
            data = json.dumps(body).encode()
        req = urllib.request.Request(url or self.root + path, data=data, method=method)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with _OPENER.open(req, timeout=30) as resp:
                raw, code = resp.read(), resp.status
                kind = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            raw, code, kind = err.read(), err.code, err.headers.get("Content-Type", "")
        return code, (json.loads(raw) if raw and "json" in kind else raw)


# Plain HTTP to the published port: no proxy in between.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the scenario ---------------------------------------------------------------------


# Inline YAML, as a compose file or CI variable would hold it: assets ready at once.
INLINE_SCENARIO = "name: ci-inline\ntimeline:\n  queue: 0s\n  processing: 0s\n"


def use_the_container(container: Container) -> None:
    sample = SAMPLE.read_bytes()
    container.start(LIVEPEER_EMULATOR_CLOCK="manual", LIVEPEER_EMULATOR_SCENARIO="default")
    container.wait_healthy()
    expect_scenario(container, "default")

    code, body = container.request("GET", "/api/asset", key="not-a-configured-key")
    assert code == 401, (code, body)
    step("API key from LIVEPEER_EMULATOR_API_KEY enforced: another key gets 401")

    code, other = container.request(
        "POST", "/api/asset/request-upload", {"name": "seen"}, {"Host": "livepeer:3000"}
    )
    assert code == 200, (code, other)
    for field in ("url", "tusEndpoint"):
        assert other[field].startswith("http://livepeer:3000/api/asset/upload/"), other
    location = tus_create(container, other["tusEndpoint"], "http://livepeer:3000", "livepeer:3000")
    step(
        f"upload URLs follow the request's Host: Host livepeer:3000 → url, tusEndpoint and "
        f"tus Location {location[:45]}…"
    )

    asset_id = upload(container, "smoke", sample, container.root)
    code, clock = container.request("POST", "/_emulator/clock/advance", {"seconds": 30})
    assert code == 200, (code, clock)
    asset = expect_ready(container, asset_id, len(sample))
    step(f"ready after advancing the manual clock 30 s ({clock['applied']} steps applied)")
    playback(container, asset["playbackId"], sample, container.root)

    step("restart: podman restart (SIGTERM, then start again)")
    podman("restart", "--time", "10", NAME)
    container.wait_healthy()
    again = expect_ready(container, asset_id, len(sample))
    assert again["playbackId"] == asset["playbackId"], again
    step("after restart: the asset is still there, ready")
    playback(container, asset["playbackId"], sample, container.root)

    # A new container on the same volume, now on the real clock with an inline scenario.
    container.start(
        LIVEPEER_EMULATOR_PUBLIC_URL=PUBLIC_URL, LIVEPEER_EMULATOR_SCENARIO=INLINE_SCENARIO
    )
    container.wait_healthy()
    expect_scenario(container, "ci-inline")
    again = expect_ready(container, asset_id, len(sample))
    assert again["downloadUrl"].startswith(PUBLIC_URL + "/"), again
    step(f"new container, same volume: the asset is found; its URLs use {PUBLIC_URL}")
    code, other = container.request(
        "POST", "/api/asset/request-upload", {"name": "seen"}, {"Host": "elsewhere:8080"}
    )
    assert code == 200, (code, other)
    for field in ("url", "tusEndpoint"):
        assert other[field].startswith(PUBLIC_URL + "/api/asset/upload/"), other
    tus_create(container, other["tusEndpoint"], PUBLIC_URL, "elsewhere:8080")
    step("PUBLIC_URL wins over the Host (elsewhere:8080): url, tusEndpoint, tus Location")
    second = upload(container, "public", sample, PUBLIC_URL)
    wait_for("the asset to be ready on the real clock", lambda: is_ready(container, second), 20)
    step("the inline scenario's zero timeline: ready on the real clock without waiting")
    playback(
        container, expect_ready(container, second, len(sample))["playbackId"], sample, PUBLIC_URL
    )

    for gone in (asset_id, second):
        code, body = container.request("DELETE", f"/api/asset/{gone}")
        assert code == 204, (code, body)
        code, body = container.request("GET", f"/api/asset/{gone}")
        assert code == 404, (code, body)
    step("delete: 204 for both assets, then GET → 404")

    stop_with_sigterm()


def published(container: Container, url: str, origin: str) -> str:
    """A URL the server made for `origin`, reached through the published port."""
    assert url.startswith(origin + "/"), (url, origin)
    return container.root + url[len(origin) :]


def upload(container: Container, name: str, sample: bytes, origin: str) -> str:
    code, answer = container.request("POST", "/api/asset/request-upload", {"name": name})
    assert code == 200, (code, answer)
    for field in ("url", "tusEndpoint"):
        assert answer[field].startswith(origin + "/api/asset/upload/"), answer
    url = published(container, answer["url"], origin)
    code, body = container.request(
        "PUT", "", url=url, data=sample, headers={"Content-Type": "video/mp4"}, key=None
    )
    assert code == 200, (code, body)
    asset_id = str(answer["asset"]["id"])
    step(f"upload: asset {asset_id}, url {answer['url'][:50]}…, PUT {len(sample)} bytes → 200")
    return asset_id


def tus_create(container: Container, endpoint: str, origin: str, host: str) -> str:
    """Create a tus upload, sending `host` as the Host; returns its Location."""
    req = urllib.request.Request(
        published(container, endpoint, origin),
        data=b"",
        method="POST",
        headers={"Host": host, "Tus-Resumable": "1.0.0", "Upload-Length": "1"},
    )
    with _OPENER.open(req, timeout=30) as resp:
        assert resp.status == 201, resp.status
        location = str(resp.headers["Location"])
    assert location.startswith(origin + "/api/asset/upload/tus/"), location
    return location


def is_ready(container: Container, asset_id: str) -> bool:
    code, asset = container.request("GET", f"/api/asset/{asset_id}")
    assert code == 200 and asset["status"]["phase"] != "failed", (code, asset)
    return bool(asset["status"]["phase"] == "ready")


def expect_ready(container: Container, asset_id: str, size: int) -> dict[str, Any]:
    code, asset = container.request("GET", f"/api/asset/{asset_id}")
    assert code == 200 and asset["status"]["phase"] == "ready", (code, asset)
    assert asset["size"] == size, asset
    return dict(asset)


def expect_scenario(container: Container, name: str) -> None:
    code, shown = container.request("GET", "/_emulator/scenario")
    assert code == 200 and shown["name"] == name, (code, shown)
    step(f"scenario from LIVEPEER_EMULATOR_SCENARIO: {name} ({shown['source']})")


def playback(container: Container, playback_id: str, sample: bytes, origin: str) -> None:
    code, info = container.request("GET", f"/api/playback/{playback_id}")
    assert code == 200, (code, info)
    sources = info["meta"]["source"]
    assert [s["hrn"] for s in sources] == ["MP4", "HLS (TS)", "Thumbnails"], sources
    mp4, hls, _ = sources
    # The outputs ffmpeg made in the image: an MP4 rendition and the HLS playlist.
    code, media = container.request("GET", "", url=published(container, mp4["url"], origin))
    assert code == 200 and media[4:8] == b"ftyp" and len(media) == mp4["size"], (code, len(media))
    code, playlist = container.request("GET", "", url=published(container, hls["url"], origin))
    assert code == 200 and playlist.startswith(b"#EXTM3U"), (code, playlist[:40])
    # The download URL serves the uploaded bytes themselves.
    source = f"{container.root}/asset/{playback_id}/video"
    code, body = container.request("GET", "", url=source)
    assert code == 200 and sha256(body) == sha256(sample), (code, len(body))
    step(f"playback: {len(sources)} sources; {hls['url']} and the MP4 rendition play")


def stop_with_sigterm() -> None:
    began = time.monotonic()
    podman("kill", "--signal", "TERM", NAME)
    code = podman("wait", NAME, timeout=STOP_LIMIT_S + 10)
    took = time.monotonic() - began
    if code != "0" or took > STOP_LIMIT_S:
        raise SmokeError(f"SIGTERM: exit code {code} after {took:.1f}s (want 0 within 5s)")
    step(f"SIGTERM: exited with code 0 in {took:.1f}s")


# --- the whole run --------------------------------------------------------------------


def preflight() -> None:
    if os.geteuid() != 0:
        raise SmokeError("run as root (podman builds and runs rootful containers here)")
    missing = [tool for tool in ("podman", "runc", "debootstrap") if not shutil.which(tool)]
    if missing:
        raise SmokeError(f"missing {', '.join(missing)}: apt-get install podman runc debootstrap")
    storage = Path(podman("info", "--format", "{{.Store.GraphRoot}}"))
    free_gb = shutil.disk_usage(storage).free / 1e9
    step(
        f"podman {podman('version', '--format', '{{.Client.Version}}')}, "
        f"storage {storage}: {free_gb:.0f} GB free"
    )
    if free_gb < MIN_FREE_GB:
        raise SmokeError(f"need {MIN_FREE_GB:.0f} GB free in {storage}, have {free_gb:.1f}")


def cleanup(keep_image: bool) -> None:
    podman("rm", "--force", "--ignore", NAME, check=False)
    podman("volume", "rm", "--force", VOLUME, check=False)
    if not keep_image:
        # The image and its build stage's layers; the base image stays as a cache.
        podman("rmi", "--force", IMAGE, check=False)
        podman("image", "prune", "--force", check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--fresh", action="store_true", help="remove the cached base and smoke images first"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the smoke image afterwards (faster re-runs)"
    )
    args = parser.parse_args()
    try:
        preflight()
        bases = base_images(ROOT / "Dockerfile")
        if args.fresh:
            for image in [IMAGE, *map(qualified, bases)]:
                podman("rmi", "--force", image, check=False)
            step("--fresh: removed cached images")
        podman("rm", "--force", "--ignore", NAME)
        podman("volume", "rm", "--force", VOLUME, check=False)
        podman("volume", "create", VOLUME)
        for image in bases:
            ensure_base_image(image)
        build_image()
        use_the_container(Container(free_port()))
    except (SmokeError, AssertionError, subprocess.SubprocessError) as exc:
        print(f"container smoke test FAILED: {exc!r}", file=sys.stderr)
        logs = container_logs() if shutil.which("podman") else ""
        if logs:
            print(f"--- container logs ---\n{logs}", file=sys.stderr)
        return 1
    finally:
        if shutil.which("podman"):
            cleanup(keep_image=args.keep)
    step("container smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
