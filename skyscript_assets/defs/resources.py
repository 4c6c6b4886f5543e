"""Typed resources. An empty setting means "the embedded default from settings.py",
resolved when the resource is used, so nothing reads the environment at import time.
In production the values come from `dg.EnvVar` (see defs/profiles in the k8s profile)."""


import json
from functools import cached_property

import dagster as dg
import fsspec

from .. import settings
from ..catalog import Catalog
from ..ids import is_safe_segment, validate_drama_id

_catalogs: dict[str, Catalog] = {}


class CatalogResource(dg.ConfigurableResource):
    """The catalog database (SQLite under SKYSCRIPT_HOME by default, Postgres in production)."""

    database_url: str = ""

    def resolved_url(self) -> str:
        return self.database_url or settings.database_url()

    def get(self) -> Catalog:
        url = self.resolved_url()
        if url not in _catalogs:  # one engine (and one migration check) per process
            _catalogs[url] = Catalog(url)
        return _catalogs[url]


class LandingZone(dg.ConfigurableResource):
    """Where scraped dramas arrive: one folder per drama under an fsspec URL."""

    url: str = ""

    def resolved_url(self) -> str:
        return self.url or settings.landing_url()


class ArtifactStore(dg.ConfigurableResource):
    """Artifacts under an fsspec URL root, laid out `<drama>/<asset>/<episode>/...`."""

    root_url: str = ""

    def resolved_root(self) -> str:
        return (self.root_url or settings.artifacts_url()).rstrip("/")

    @cached_property
    def _fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        fs, root = fsspec.core.url_to_fs(self.resolved_root())
        return fs, root.rstrip("/")

    def path(self, drama_id: str, asset: str, *parts: str) -> str:
        """Path (inside the store's filesystem) of an artifact; no part may escape the root."""
        validate_drama_id(drama_id)
        for part in (asset, *parts):
            if not is_safe_segment(part):
                raise ValueError(f"unsafe artifact path segment {part!r}")
        _, root = self._fs
        return "/".join([root, drama_id, asset, *parts])

    def uri(self, drama_id: str, asset: str, *parts: str) -> str:
        fs, _ = self._fs
        path = self.path(drama_id, asset, *parts)
        return path if fs.protocol in ("file", ("file", "local")) else fs.unstrip_protocol(path)

    def write_bytes(self, data: bytes, drama_id: str, asset: str, *parts: str) -> str:
        """Write atomically where the filesystem allows (tmp + move), return the URI."""
        fs, _ = self._fs
        path = self.path(drama_id, asset, *parts)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path}.tmp"
        with fs.open(tmp, "wb") as f:
            f.write(data)
        fs.mv(tmp, path)
        return self.uri(drama_id, asset, *parts)

    def write_json(self, value, drama_id: str, asset: str, *parts: str) -> str:
        return self.write_bytes(json.dumps(value, indent=2, ensure_ascii=False, default=str).encode(), drama_id, asset, *parts)

    def read_json(self, drama_id: str, asset: str, *parts: str):
        fs, _ = self._fs
        with fs.open(self.path(drama_id, asset, *parts), "rb") as f:
            return json.loads(f.read())

    def remove(self, drama_id: str, asset: str, *parts: str) -> None:
        fs, _ = self._fs
        path = self.path(drama_id, asset, *parts)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def local_resources() -> dict[str, dg.ConfigurableResource]:
    """Embedded defaults: SQLite catalog, local folders, all under SKYSCRIPT_HOME."""
    return {"catalog": CatalogResource(), "landing": LandingZone(), "artifacts": ArtifactStore()}
