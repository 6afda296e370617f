"""Finding datasets, and downloading them with checksum checks, without any network: file:// URLs."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from rec_lib.config import DATA_DIR_ENV, resolve_data_dir
from rec_lib.data import datasets
from rec_lib.data.datasets import DATASETS, DatasetSpec, download_dataset, locate_dataset
from rec_lib.errors import ChecksumMismatchError, DatasetNotFoundError


def _mirror(tmp_path: Path, source: Path, name: str) -> tuple[str, str]:
    """Zip ``source`` as GroupLens does (one top folder named like the dataset); return its URL base and MD5."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = mirror / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in sorted(source.iterdir()):
            zipped.write(file, f"{name}/{file.name}")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    return mirror.as_uri(), md5


def test_data_dir_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "from-env"))
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_data_dir() == tmp_path / "from-env"
    monkeypatch.delenv(DATA_DIR_ENV)
    assert resolve_data_dir().as_posix().endswith("data/raw")


def test_existing_folder_is_found_without_download(ml1m_dir: Path) -> None:
    folder, layout = locate_dataset(ml1m_dir.name, ml1m_dir.parent, download=False)
    assert (folder, layout) == (ml1m_dir, "ml-1m")


def test_download_verifies_pinned_md5_and_unpacks(tmp_path: Path, ml1m_dir: Path, monkeypatch) -> None:
    base_url, md5 = _mirror(tmp_path, ml1m_dir, "ml-1m")
    monkeypatch.setitem(DATASETS, "ml-1m", DatasetSpec("ml-1m", "ml-1m", md5))
    data_dir = tmp_path / "data"
    folder, layout = locate_dataset("ml-1m", data_dir, base_url=base_url)
    assert layout == "ml-1m"
    assert (folder / "ratings.dat").read_bytes() == (ml1m_dir / "ratings.dat").read_bytes()
    assert [p.name for p in data_dir.iterdir()] == ["ml-1m"], "no staging files left behind"


def test_download_uses_published_md5_for_latest_releases(tmp_path: Path, csv_dir: Path) -> None:
    base_url, md5 = _mirror(tmp_path, csv_dir, "ml-latest-small")
    (tmp_path / "mirror" / "ml-latest-small.zip.md5").write_text(f"{md5}  ml-latest-small.zip\n")
    folder = download_dataset(DATASETS["ml-latest-small"], tmp_path / "data", base_url=base_url)
    assert (folder / "movies.csv").is_file()


def test_checksum_mismatch_discards_download(tmp_path: Path, ml1m_dir: Path) -> None:
    base_url, _ = _mirror(tmp_path, ml1m_dir, "ml-1m")
    data_dir = tmp_path / "data"
    with pytest.raises(ChecksumMismatchError, match="does not match the expected c4d9eecfca2ab87c1945afe126590906"):
        download_dataset(DATASETS["ml-1m"], data_dir, base_url=base_url)
    assert list(data_dir.iterdir()) == []


def test_offline_error_says_what_to_place_where(tmp_path: Path) -> None:
    unreachable = (tmp_path / "no-such-mirror").as_uri()
    with pytest.raises(DatasetNotFoundError) as caught:
        locate_dataset("ml-1m", tmp_path / "data", base_url=unreachable)
    message = str(caught.value)
    assert f"{unreachable}/ml-1m.zip" in message
    assert "c4d9eecfca2ab87c1945afe126590906" in message
    assert str(tmp_path / "data" / "ml-1m" / "ratings.dat") in message
    assert "REC_DATA_DIR" in message


def test_unknown_dataset_lists_official_names(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="ml-100k, ml-1m, ml-25m, ml-32m, ml-latest-small"):
        locate_dataset("ml-7", tmp_path)


def test_download_refused_when_disabled(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="downloads are off"):
        locate_dataset("ml-100k", tmp_path, download=False)


def test_zip_slip_is_refused(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = mirror / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../escape.txt", "x")
    spec = DatasetSpec("ml-100k", "ml-100k", hashlib.md5(archive.read_bytes()).hexdigest())
    with pytest.raises(ChecksumMismatchError, match="outside its folder"):
        datasets.download_dataset(spec, tmp_path / "data", base_url=mirror.as_uri())
    assert not (tmp_path / "data" / "escape.txt").exists()
