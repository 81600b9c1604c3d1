"""qemu-user-static registered with binfmt_misc for the length of a test, then removed.

The magic and mask are Debian's own (/usr/lib/binfmt.d/qemu-<arch>.conf from
qemu-user-static); the entry gets a name of ours (`hm-test-qemu-<arch>`) so that removing it
never touches a registration the machine already had. New entries go to the head of the
kernel's list, so ours wins while it exists and an older one is back once ours is gone.

Flag F ("fix binary") makes the kernel open the interpreter at registration: a container
(another mount namespace, no /usr/bin/qemu-*-static in it) still runs foreign binaries.
Kernel documentation: Documentation/admin-guide/binfmt-misc.rst.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

BINFMT = Path("/proc/sys/fs/binfmt_misc")
DEBIAN_CONFS = Path("/usr/lib/binfmt.d")
PREFIX = "hm-test-"


def kernel_has_binfmt_misc() -> bool:
    if any(line.split()[-1] == "binfmt_misc"
           for line in Path("/proc/filesystems").read_text().splitlines() if line.strip()):
        return True
    # a module not loaded yet: modprobe tells (no module tree in most containers)
    modprobe = shutil.which("modprobe") or "/usr/sbin/modprobe"
    if os.geteuid() != 0 or not Path(modprobe).exists():
        return False
    return subprocess.run([modprobe, "-q", "binfmt_misc"], check=False,
                          capture_output=True, timeout=30).returncode == 0


def registration(qemu_arch: str) -> str:
    """Debian's rule for qemu-<arch>, renamed to ours and with the F flag."""
    line = (DEBIAN_CONFS / f"qemu-{qemu_arch}.conf").read_text().strip()
    # :name:type:offset:magic:mask:interpreter:flags (magic and mask contain no ':')
    _, _name, kind, offset, magic, mask, interpreter, flags = line.split(":")
    assert Path(interpreter).exists(), f"{interpreter} missing: install qemu-user-static"
    flags = "".join(sorted(set(flags) | {"F"}))
    return f":{PREFIX}qemu-{qemu_arch}:{kind}:{offset}:{magic}:{mask}:{interpreter}:{flags}"


def _remove(name: str) -> None:
    entry = BINFMT / name
    if entry.exists():
        entry.write_text("-1")


@contextlib.contextmanager
def qemu_registered(qemu_arches: tuple[str, ...]) -> Iterator[list[str]]:
    """Mount binfmt_misc if it is not, register the interpreters; undo all of it on exit."""
    mounted_here = False
    registered: list[str] = []
    try:
        if not (BINFMT / "register").exists():
            subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
                           check=True, timeout=30)
            mounted_here = True
        if (BINFMT / "status").read_text().strip() != "enabled":
            raise RuntimeError("binfmt_misc is disabled on this machine (status: disabled)")
        for arch in qemu_arches:
            name = f"{PREFIX}qemu-{arch}"
            _remove(name)  # left over from a run that was killed
            (BINFMT / "register").write_text(registration(arch))
            registered.append(name)
        yield registered
    finally:
        for name in registered:
            _remove(name)
        if mounted_here:
            subprocess.run(["umount", str(BINFMT)], check=False, timeout=30)
