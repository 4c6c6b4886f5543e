"""The landing zone: one folder per drama under an fsspec URL (a local path or s3://...)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import fsspec
from pydantic import ValidationError

from skyscript_assets.ids import UnsafeIdError, validate_drama_id
from skyscript_assets.schema import DramaInfo, LossRecord
from skyscript_assets.storage import full_uri, open_fs  # noqa: F401  (re-exported for the landing's users)

DRAMA_INFO_FILE = "drama.json"


@dataclass(frozen=True)
class DramaFolder:
    drama_id: str
    uri: str  # the folder's URL, protocol included for remote stores
    fingerprint: str  # changes when an episode file is added, removed or rewritten


@dataclass(frozen=True)
class RejectedFolder:
    name: str
    uri: str
    reason: str  # one line, ready for a log or a loss row


def scan_landing_zone(url: str) -> tuple[list[DramaFolder], list[RejectedFolder]]:
    """List drama folders under `url`, split into valid ones and rejected names with reasons."""
    fs, root = open_fs(url)
    if not fs.exists(root):
        return [], []
    dramas: list[DramaFolder] = []
    rejected: list[RejectedFolder] = []
    for entry in sorted(fs.ls(root, detail=True), key=lambda e: e["name"]):
        if entry.get("type") != "directory":
            continue
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        try:
            drama_id = validate_drama_id(name)
        except UnsafeIdError as exc:
            rejected.append(RejectedFolder(name=name, uri=full_uri(fs, entry["name"]), reason=str(exc)))
            continue
        dramas.append(DramaFolder(drama_id, full_uri(fs, entry["name"]), _fingerprint(fs, entry["name"])))
    return dramas, rejected


def find_drama(url: str, drama_id: str) -> DramaFolder:
    """The landing folder of one drama; the id is validated before it touches a path."""
    validate_drama_id(drama_id)
    fs, root = open_fs(url)
    path = f"{root}/{drama_id}"
    if not fs.isdir(path):
        raise FileNotFoundError(f"drama {drama_id!r} has no folder in the landing zone {url}")
    return DramaFolder(drama_id, full_uri(fs, path), _fingerprint(fs, path))


def read_drama_info(folder_uri: str, drama_id: str) -> tuple[DramaInfo, list[LossRecord]]:
    """drama.json if present; a broken one is a loss and the defaults are used."""
    fs, folder = open_fs(folder_uri)
    path = f"{folder}/{DRAMA_INFO_FILE}"
    default = DramaInfo(title=drama_id)
    if not fs.exists(path):
        return default, []
    try:
        with fs.open(path, "rb") as f:
            raw = json.loads(f.read().decode("utf-8"))
        if not isinstance(raw, dict):
            raise ValueError(f"top level is {type(raw).__name__}, expected an object")
        info = DramaInfo.model_validate(raw)
    except (ValueError, ValidationError, OSError) as exc:
        message = " ".join(str(exc).split())[:300]
        return default, [
            LossRecord(stage="drama_manifest", item=DRAMA_INFO_FILE, reason="invalid_drama_json",
                       detail=f"{drama_id}/{DRAMA_INFO_FILE}: ignored, {message}")
        ]
    if not info.title:
        info = info.model_copy(update={"title": drama_id})
    return info, []


def _fingerprint(fs: fsspec.AbstractFileSystem, path: str) -> str:
    digest = hashlib.sha256()
    try:
        entries = sorted(fs.ls(path, detail=True), key=lambda e: e["name"])
    except OSError:
        entries = []
    for entry in entries:
        digest.update(f"{entry['name']}|{entry.get('size')}|{entry.get('mtime', '')}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]
