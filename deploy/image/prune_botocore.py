"""Drop the botocore API models the image never uses (run once, in the Dockerfile's build stage).

botocore ships the models of every AWS service (~30 MB); the iperf job talks to EC2 only.
Keep EC2 and the services the credential chain may need (STS, SSO).
A file rather than a RUN heredoc: Docker 20.10's classic builder cannot parse heredocs.
"""

from __future__ import annotations

import pathlib
import shutil
import sys

KEEP = {"ec2", "sts", "sso", "sso-oidc"}


def prune(prefix: pathlib.Path) -> int:
    site = next(prefix.glob("lib/python3*/site-packages"))
    removed = 0
    for service in (site / "botocore" / "data").iterdir():
        if service.is_dir() and service.name not in KEEP:
            shutil.rmtree(service)
            removed += 1
    return removed


if __name__ == "__main__":
    count = prune(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/opt/home-monitor"))
    print(f"pruned {count} botocore service models")
