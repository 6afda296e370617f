"""Prepare what a lent GPU machine needs for ``bench/gpu_check.sh``, here, where the network is: that machine
reaches nothing, and its Python (3.12, manylinux x86-64) lacks some of the packages the checks import.

    python3 bench/device_prepare.py [--data-dir ../shared/data]

Writes, in the repository root (both ignored by git):

* ``.whl/``: the wheels of papermill and ipykernel (notebook 02 under papermill) and of pymilvus, milvus-lite and
  SQLAlchemy (the scale bench's load step), at pyproject's pins, with every dependency pip resolves for that
  machine's Python, less the packages its image already holds (:data:`DEVICE_HOLDS`, from the device notes'
  package list) but for :data:`ALWAYS_CARRIED`, whose image versions pymilvus may not accept;
* ``.devdata/ml-latest-small/``: a copy of the dataset.

Then, with the device tool: ``run(command="bash bench/gpu_check.sh", carry=[".whl", ".devdata"])`` (or with
``GPU_CHECK=scale`` in front). Prints what it wrote and its size against the 64 MiB that one call may carry.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WANTED = {"notebooks": ("papermill", "ipykernel"), "serve": ("pymilvus", "milvus-lite", "SQLAlchemy")}
"""pyproject extras and the packages of each that the device checks import."""
PLATFORM = [
    "--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:",
    *[f"--platform=manylinux_2_{n}_x86_64" for n in (28, 27, 26, 24, 17)],
    "--platform=manylinux2014_x86_64", "--platform=manylinux1_x86_64",
]  # fmt: skip
DEVICE_HOLDS = {
    "attrs", "certifi", "charset-normalizer", "click", "grpcio", "idna", "numpy", "packaging", "pandas", "protobuf",
    "psutil", "pyarrow", "pygments", "python-dateutil", "pyyaml", "requests", "six", "tqdm", "typing-extensions",
    "urllib3",
}  # fmt: skip
"""Packages the device's image holds, of those the resolution asks for (from the device notes' package list)."""
ALWAYS_CARRIED = {"grpcio", "protobuf"}
"""Held there too, but pymilvus excludes some grpcio versions and needs protobuf >= 5.27: carried at the versions
pip resolves, so the image's do not matter."""
CARRY_LIMIT_MIB = 64


def pinned(extra: str, names: tuple[str, ...]) -> list[str]:
    """pyproject's pins of ``names`` in its optional dependencies ``extra``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {
        re.split(r"[=<>!~ ]", spec, maxsplit=1)[0].lower(): spec for spec in project["optional-dependencies"][extra]
    }
    return [pins[name.lower()] for name in names]


def resolved(requirements: list[str]) -> list[str]:
    """Every distribution pip would install for ``requirements`` on the device's Python, as ``name==version``."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed", "--target",
             f"{tmp}/target", "--report", str(report), *PLATFORM, *requirements],
            check=True,
        )  # fmt: skip
        installs = json.loads(report.read_text())["install"]
    return [f"{item['metadata']['name']}=={item['metadata']['version']}" for item in installs]


def carried(distributions: list[str]) -> list[str]:
    """The distributions the device lacks, and those carried whatever it holds."""

    def name(spec: str) -> str:
        return spec.split("==")[0].lower().replace("_", "-")

    return [d for d in distributions if name(d) not in DEVICE_HOLDS or name(d) in ALWAYS_CARRIED]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    wheels, data = ROOT / ".whl", ROOT / ".devdata" / "ml-latest-small"
    requirements = [spec for extra, names in WANTED.items() for spec in pinned(extra, names)]
    needed = carried(resolved(requirements))
    shutil.rmtree(wheels, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(wheels), *PLATFORM, *needed],
        check=True,
    )
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(args.data_dir / "ml-latest-small", data)
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
    tree = sum((ROOT / p).stat().st_size for p in tracked.decode().split("\0") if p and (ROOT / p).is_file())
    sizes = {".whl": _size(wheels), ".devdata": _size(data.parent), "tracked files": tree}
    for what, size in sizes.items():
        print(f"{what}: {size / 2**20:.1f} MiB")
    total = sum(sizes.values()) / 2**20
    print(f"{len(needed)} wheels; one call carries {total:.1f} MiB of its {CARRY_LIMIT_MIB} MiB")
    return 0 if total < CARRY_LIMIT_MIB else 1


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


if __name__ == "__main__":
    sys.exit(main())
