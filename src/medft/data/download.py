"""Downloads with progress, checksum verification and atomic placement.

Hosts that publish checksums (Zenodo, figshare) are asked for them through their APIs; a file
is renamed into place only after its checksum matched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import urllib.request
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)


def file_md5(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def fetch(url: str, dest: str | Path, md5: str | None = None) -> Path:
    """Download ``url`` to ``dest`` (kept if it exists and matches ``md5``)."""
    dest = Path(dest)
    if dest.exists() and (md5 is None or file_md5(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    log.info("downloading %s to %s", url, dest)
    with urllib.request.urlopen(url) as response, open(partial, "wb") as out:
        total = int(response.headers.get("Content-Length", 0)) or None
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=dest.name,
            mininterval=2,
            disable=not sys.stderr.isatty(),  # redraws would fill a log file
        ) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
                bar.update(len(chunk))
    if md5 is not None and (actual := file_md5(partial)) != md5:
        partial.unlink()
        raise OSError(
            f"{dest.name}: MD5 {actual} does not match the published {md5}; "
            "the download is corrupt, run again"
        )
    partial.rename(dest)
    return dest


def _json(url: str) -> dict | list:
    with urllib.request.urlopen(url) as response:
        return json.load(response)


def zenodo_files(record: int) -> dict[str, tuple[str, str]]:
    """``{file name: (download url, md5)}`` of a Zenodo record."""
    files = _json(f"https://zenodo.org/api/records/{record}")["files"]
    return {f["key"]: (f["links"]["self"], f["checksum"].removeprefix("md5:")) for f in files}


def figshare_files(article: int) -> dict[str, tuple[str, str]]:
    """``{file name: (download url, md5)}`` of a figshare article."""
    files = _json(f"https://api.figshare.com/v2/articles/{article}/files")
    return {f["name"]: (f["download_url"], f["computed_md5"]) for f in files}
