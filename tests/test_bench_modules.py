"""`make bench` runs every benchmark module, and each of them at least imports (the benchmarks
themselves are too slow for the suite; this catches one left out or broken by a rename)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.procs import REPO

PROGRAMS = sorted(path.stem for path in (REPO / "bench").glob("*.py")
                  if 'if __name__ == "__main__":' in path.read_text(encoding="utf-8"))


def makefile_bench_modules() -> set[str]:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    listed = re.search(r"^BENCH_MODULES = (.*)$", makefile, re.M)
    recipe = re.search(r"^bench:.*?\n((?:\t.*\n)+)", makefile, re.M)
    assert listed is not None
    assert recipe is not None
    modules = set(listed.group(1).split())
    assert "$(BENCH_MODULES)" in recipe.group(1)
    modules |= set(re.findall(r"-m bench\.(\w+)", recipe.group(1)))
    return modules


def test_make_bench_runs_every_bench_program() -> None:
    assert len(PROGRAMS) >= 11
    assert makefile_bench_modules() == set(PROGRAMS)


def test_pi_memory_runs_shorter_than_its_default() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "bench.pi_memory --seconds $(BENCH_PI_MEMORY_SECONDS)" in makefile
    seconds = re.search(r"^BENCH_PI_MEMORY_SECONDS = (\d+)$", makefile, re.M)
    assert seconds is not None
    assert 0 < int(seconds.group(1)) < 600


@pytest.mark.parametrize("module", PROGRAMS)
def test_bench_module_imports(module: str) -> None:
    done = subprocess.run([sys.executable, "-c", f"import bench.{module}"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
