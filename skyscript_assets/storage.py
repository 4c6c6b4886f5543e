"""The artifact store and fsspec helpers: where keyframes, JSON, shards and reports live.

Below the Dagster layer: stages, the CLI and the assets all use it. An artifact lives at
`<root>/<drama>/<asset>/<episode>/...`; the root is a local folder or an `s3://` URL.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import fsspec

from skyscript_assets.ids import is_safe_segment, validate_drama_id

REPORTS_FOLDER = "_reports"  # cross-drama reports; no drama id starts with "_"


def open_fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem of `url` and the path inside it, without a trailing slash."""
    fs, root = fsspec.core.url_to_fs(url)
    return fs, root.rstrip("/")


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return fs.protocol in ("file", ("file", "local"))


def full_uri(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """A path of `fs` as the URI other processes can open: plain for local files, with the protocol otherwise."""
    return path if is_local(fs) else fs.unstrip_protocol(path)


def read_bytes(uri: str) -> bytes:
    with fsspec.open(uri, "rb") as handle:
        return handle.read()


@contextmanager
def local_file(uri: str) -> Iterator[Path]:
    """A local path holding `uri`'s bytes, for libraries that need a file (PyAV, audio decoders).

    Local files are used in place; remote ones are copied to a temporary file removed afterwards,
    under their own name (what a library reports about the file, in a loss say, names it alike)."""
    fs, path = open_fs(uri)
    if is_local(fs):
        yield Path(path)
        return
    name = path.rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory(prefix="skyscript-") as folder:
        local = Path(folder) / (name if is_safe_segment(name) else f"input{Path(path).suffix}")
        with fs.open(path, "rb") as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, length=8 << 20)
        yield local


class ArtifactStore:
    """Artifacts under an fsspec URL root, laid out `<drama>/<asset>/<episode>/...`."""

    def __init__(self, root_url: str):
        self.root_url = root_url.rstrip("/")

    @cached_property
    def _fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        return open_fs(self.root_url)

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return self._fs[0]

    def path(self, drama_id: str, asset: str, *parts: str) -> str:
        """Path (inside the store's filesystem) of an artifact; no part may escape the root."""
        validate_drama_id(drama_id)
        for part in (asset, *parts):
            if not is_safe_segment(part):
                raise ValueError(f"unsafe artifact path segment {part!r}")
        return "/".join([self._fs[1], drama_id, asset, *parts])

    def uri(self, drama_id: str, asset: str, *parts: str) -> str:
        return full_uri(self.fs, self.path(drama_id, asset, *parts))

    def uri_of(self, path: str) -> str:
        """The URI of a path of this store's filesystem (e.g. a shard written by a stage)."""
        return full_uri(self.fs, path)

    def folder(self, drama_id: str, asset: str) -> tuple[fsspec.AbstractFileSystem, str]:
        """The filesystem and the folder of one asset of one drama (for stages that write many files)."""
        return self.fs, self.path(drama_id, asset)

    def write_bytes(self, data: bytes, drama_id: str, asset: str, *parts: str) -> str:
        """Write atomically where the filesystem allows (tmp + move), return the URI."""
        path = self.path(drama_id, asset, *parts)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path}.tmp"
        with self.fs.open(tmp, "wb") as f:
            f.write(data)
        self.fs.mv(tmp, path)
        return self.uri(drama_id, asset, *parts)

    def write_json(self, value, drama_id: str, asset: str, *parts: str) -> str:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        return self.write_bytes(text.encode(), drama_id, asset, *parts)

    def read_json(self, drama_id: str, asset: str, *parts: str):
        with self.fs.open(self.path(drama_id, asset, *parts), "rb") as f:
            return json.loads(f.read())

    def remove(self, drama_id: str, asset: str, *parts: str) -> None:
        path = self.path(drama_id, asset, *parts)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def report_path(self, name: str) -> str:
        """Where a cross-drama report goes: `<root>/_reports/<name>`."""
        if not is_safe_segment(name):
            raise ValueError(f"unsafe report name {name!r}")
        return f"{self._fs[1]}/{REPORTS_FOLDER}/{name}"

    def write_report(self, data: bytes, name: str) -> str:
        path = self.report_path(name)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with self.fs.open(path, "wb") as f:
            f.write(data)
        return full_uri(self.fs, path)
