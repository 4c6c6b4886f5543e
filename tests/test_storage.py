"""storage.local_file: the local path handed to libraries that need a file (PyAV, audio decoders)."""

from pathlib import Path

import fsspec

from skyscript_assets.storage import local_file


def test_a_local_file_is_used_in_place(tmp_path):
    video = tmp_path / "ep01.mp4"
    video.write_bytes(b"video")
    with local_file(str(video)) as path:
        assert path == video


def test_a_remote_file_is_copied_under_its_own_name_and_removed_afterwards():
    """What a library says about the copy (a loss naming `ep01.mkv#2`, say) reads the same as on
    a local landing zone, not `input.mkv#2`."""
    fs = fsspec.filesystem("memory")
    fs.pipe_file("/landing/drama/ep01.mkv", b"matroska")
    with local_file("memory://landing/drama/ep01.mkv") as path:
        assert path.name == "ep01.mkv" and path.read_bytes() == b"matroska"
        copy = Path(path)
    assert not copy.exists()
    fs.rm("/landing", recursive=True)
