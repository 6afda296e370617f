"""Which MovieLens datasets exist, where they are on disk, and how to fetch them from GroupLens.

A dataset lives in ``<data_dir>/<name>/``. When it is missing, :func:`locate_dataset` downloads
the official GroupLens zip, verifies its MD5 (pinned here for the frozen releases; for the
``latest`` releases, which GroupLens rebuilds from time to time, the ``.md5`` file published beside
the zip) and unpacks it atomically. Offline, it raises :class:`DatasetNotFoundError` saying which
file to fetch and where to put it.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tqdm.auto import tqdm

from rec_lib.config import DATA_DIR_ENV
from rec_lib.errors import ChecksumMismatchError, DatasetNotFoundError

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"
DOWNLOAD_TIMEOUT_S = 60
_CHUNK = 1 << 20
WELL_KNOWN_MOVIES = {1: "Toy Story", 260: "Star Wars", 296: "Pulp Fiction", 356: "Forrest Gump", 2571: "The Matrix"}
"""MovieLens ids that mean the same film in ml-1m and ml-latest(-small), for sanity views and examples."""

Layout = Literal["ml-1m", "ml-100k", "csv"]

LAYOUT_FILES: dict[Layout, tuple[str, ...]] = {
    "ml-1m": ("ratings.dat", "movies.dat", "users.dat"),
    "ml-100k": ("u.data", "u.item", "u.user"),
    "csv": ("ratings.csv", "movies.csv"),
}


@dataclass(frozen=True)
class DatasetSpec:
    """One official GroupLens release."""

    name: str
    layout: Layout
    md5: str | None
    """MD5 of the zip; None means the release changes over time and its published .md5 is used."""

    @property
    def archive_name(self) -> str:
        return f"{self.name}.zip"

    @property
    def required_files(self) -> tuple[str, ...]:
        return LAYOUT_FILES[self.layout]


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("ml-100k", "ml-100k", "0e33842e24a9c977be4e0107933c0723"),
        DatasetSpec("ml-1m", "ml-1m", "c4d9eecfca2ab87c1945afe126590906"),
        DatasetSpec("ml-25m", "csv", "6b51fb2759a8657d3bfcbfc42b592ada"),
        DatasetSpec("ml-32m", "csv", None),
        DatasetSpec("ml-latest-small", "csv", None),
    )
}


def detect_layout(folder: Path) -> Layout | None:
    """The layout whose files are all present in ``folder``, or None."""
    for layout, files in LAYOUT_FILES.items():
        if all((folder / name).is_file() for name in files):
            return layout
    return None


def locate_dataset(
    name: str,
    data_dir: Path,
    *,
    download: bool = True,
    base_url: str = GROUPLENS_URL,
) -> tuple[Path, Layout]:
    """The folder of dataset ``name`` under ``data_dir`` and its layout, downloading it if needed.

    Any folder with a complete ml-1m, ml-100k or CSV layout counts (a synthetic dataset, say);
    only the official names in :data:`DATASETS` can be downloaded.
    """
    folder = data_dir / name
    spec = DATASETS.get(name)
    layout = detect_layout(folder)
    if layout is not None:
        return folder, layout
    if spec is None:
        known = ", ".join(sorted(DATASETS))
        raise DatasetNotFoundError(
            f"No dataset '{name}' in {folder}: expected the files of one layout "
            f"({_layouts_text()}). Official names that can be downloaded: {known}."
        )
    if not download:
        raise DatasetNotFoundError(_offline_instructions(spec, data_dir, base_url, "downloads are off"))
    download_dataset(spec, data_dir, base_url=base_url)
    return folder, spec.layout


def download_dataset(spec: DatasetSpec, data_dir: Path, *, base_url: str = GROUPLENS_URL) -> Path:
    """Fetch ``spec``'s zip from ``base_url``, verify its MD5 and unpack it to ``data_dir/name``."""
    url = f"{base_url}/{spec.archive_name}"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        expected_md5 = spec.md5 or _fetch_published_md5(url)
        with tempfile.TemporaryDirectory(dir=data_dir, prefix=f".{spec.name}-") as tmp:
            archive = Path(tmp) / spec.archive_name
            actual_md5 = _fetch_to_file(url, archive)
            if actual_md5 != expected_md5:
                raise ChecksumMismatchError(
                    f"{url}: MD5 {actual_md5} does not match the expected {expected_md5}; "
                    "the download was discarded. Retry, or fetch the zip by hand and compare."
                )
            _unpack(archive, spec, Path(tmp) / "unpacked", data_dir / spec.name)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise DatasetNotFoundError(_offline_instructions(spec, data_dir, base_url, str(exc))) from exc
    return data_dir / spec.name


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_published_md5(url: str) -> str:
    with urllib.request.urlopen(f"{url}.md5", timeout=DOWNLOAD_TIMEOUT_S) as response:
        text = response.read().decode("ascii", errors="replace").strip()
    md5 = text.split()[0].lower() if text else ""
    if len(md5) != 32:
        raise ChecksumMismatchError(f"{url}.md5 holds no MD5 checksum: {text[:80]!r}")
    return md5


def _fetch_to_file(url: str, target: Path) -> str:
    digest = hashlib.md5()
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, target.open("wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {target.name}") as bar:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    return digest.hexdigest()


def _unpack(archive: Path, spec: DatasetSpec, staging: Path, destination: Path) -> None:
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.namelist():
            resolved = (staging / member).resolve()
            if not resolved.is_relative_to(staging.resolve()):
                raise ChecksumMismatchError(f"{archive.name}: member {member!r} would unpack outside its folder")
        zipped.extractall(staging)
    unpacked = staging / spec.name
    if detect_layout(unpacked) != spec.layout:
        raise DatasetNotFoundError(
            f"{archive.name} unpacked without the expected files {', '.join(spec.required_files)} "
            f"in its folder {spec.name}/"
        )
    if destination.exists():
        shutil.rmtree(destination)
    unpacked.rename(destination)


def _layouts_text() -> str:
    return "; ".join(f"{layout}: {', '.join(files)}" for layout, files in LAYOUT_FILES.items())


def _offline_instructions(spec: DatasetSpec, data_dir: Path, base_url: str, reason: str) -> str:
    checksum = f"MD5 {spec.md5}" if spec.md5 else f"the MD5 in {spec.archive_name}.md5 beside it"
    first_file = data_dir / spec.name / spec.required_files[0]
    return (
        f"Dataset '{spec.name}' is not in {data_dir / spec.name} and could not be downloaded ({reason}).\n"
        f"To fix: on a machine with internet access, download {base_url}/{spec.archive_name}, check it "
        f"against {checksum}, and unzip it inside {data_dir} so that {first_file} exists. "
        f"Or point {DATA_DIR_ENV} (or --data-dir) at a folder that already holds {spec.name}/."
    )
