"""Nothing executed: .pt files are loaded with weights_only=True, archives cannot escape or explode."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch

from kdkge import calibration_report
from kdkge.training_state import resumable_epoch
from kdkge.experiment import RunSpec, load_checkpoint, run, save_checkpoint
from kdkge.dataset_sources import RegistryError, RemoteDataset, _extract, fetch, parse_size, sha256_of
from kdkge.safe_load import UnreadableFileError, UnsafeFileError, load_plain


class _RunsCode:
    """Unpickling this calls os.system (writes a marker file) — what a hostile .pt file would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile_pt(path: Path, marker: Path, **plain) -> Path:
    torch.save({**plain, "payload": _RunsCode(marker)}, path)
    return path


def assert_one_line(text: str) -> None:
    assert text and "\n" not in text


# --------------------------------------------------------------------------- #
# .pt files
# --------------------------------------------------------------------------- #


def test_a_checkpoint_whose_pickle_runs_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    evil = hostile_pt(tmp_path / "model.pt", marker, format=1)
    with pytest.raises(UnsafeFileError) as info:
        load_checkpoint(evil)
    text = str(info.value)
    assert_one_line(text)
    assert f"refused to load the checkpoint {evil}" in text and "posix.system" in text and "weights_only=True" in text
    assert not marker.exists()


def test_a_hostile_training_state_is_refused_before_training(tmp_path):
    marker = tmp_path / "ran"
    evil = hostile_pt(tmp_path / "state.pt", marker, epoch=3)
    with pytest.raises(UnsafeFileError) as info:
        resumable_epoch(evil)
    assert_one_line(str(info.value))
    assert "refused to load the training state" in str(info.value) and "resume=false" in str(info.value)
    assert evil.exists(), "kept for inspection"
    spec = RunSpec(dataset="nations", dim=4, epochs=1, batch_size=512)
    with pytest.raises(UnsafeFileError, match="refused to load the training state"):
        run([spec], checkpoint=evil, checkpoint_every=1, resume=True, progress=False)
    assert not marker.exists()


def test_a_downloaded_hostile_checkpoint_is_refused_by_the_calibration_backfill(tmp_path):
    marker = tmp_path / "ran"

    class Store:  # what RunStore.download does: write the artifact into the folder, return its path
        def download(self, run_id, path, folder):
            return str(hostile_pt(Path(folder) / "model.pt", marker, format=1))

    class Tracker:
        def log_run_metrics(self, *args, **kwargs):  # pragma: no cover - never reached
            raise AssertionError("nothing may be logged")

    with pytest.raises(UnsafeFileError, match=r"refused to load the checkpoint .*model.pt: its pickle calls the Python object posix.system"):
        calibration_report.backfill(Store(), Tracker(), "run")
    assert not marker.exists()


def test_plain_files_still_load_and_garbage_is_one_line(tmp_path):
    spec = RunSpec(dataset="nations", dim=4, epochs=1, batch_size=512)
    [result] = run([spec], checkpoint=tmp_path / "state.pt", checkpoint_every=1, progress=False)
    assert load_plain(tmp_path / "state.pt", "training state")["epoch"] == 1  # generators: uint8 tensors; Adam: plain dict
    assert load_checkpoint(save_checkpoint(result, tmp_path / "model.pt")).spec == spec
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file\x00\x01")
    with pytest.raises(UnreadableFileError) as info:
        load_checkpoint(tmp_path / "garbage.pt")
    assert_one_line(str(info.value))
    assert f"cannot read the checkpoint {tmp_path / 'garbage.pt'}" in str(info.value)
    assert resumable_epoch(tmp_path / "garbage.pt") is None and not (tmp_path / "garbage.pt").exists()  # dropped, warned


# --------------------------------------------------------------------------- #
# archives
# --------------------------------------------------------------------------- #


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None, mode: str = "w:gz") -> Path:
    data = data or {}
    with tarfile.open(path, mode) as tar:
        for info in members:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(
    "members, message",
    [
        ([_file("../escape.txt")], r"refused to extract the archive: member '../escape.txt' points outside the extraction folder"),
        ([_file("/etc/kdkge-test.txt")], r"refused to extract the archive: member '/etc/kdkge-test.txt' points outside"),
        ([_link("kg/train.txt", "/etc/passwd")], r"refused to extract the archive: 'kg/train.txt' is a link to an absolute path"),
        ([_link("kg/train.txt", "../../../etc/passwd")], r"refused to extract the archive: 'kg/train.txt' would link to .*outside the destination"),
        ([_link("kg/train.txt", "/etc/passwd", tarfile.LNKTYPE)], r"refused to extract the archive: .*kg/train.txt"),
    ],
    ids=["dotdot", "absolute-path", "absolute-symlink", "symlink-outside", "absolute-hardlink"],
)
def test_unsafe_tar_members_are_one_line_errors(tmp_path, members, message):
    archive = _tar(tmp_path / "a.tar.gz", members, {m.name: b"x\ty\tz\n" for m in members if m.isfile()})
    with pytest.raises(RegistryError, match=message) as info:
        _extract(archive, tmp_path / "out", label="tiny")
    assert_one_line(str(info.value))
    assert "the archive is unsafe, check its source" in str(info.value)
    assert not (tmp_path / "escape.txt").exists()


def test_unsafe_zip_members_are_one_line_errors(tmp_path):
    for name in ("../escape.txt", "/abs.txt", "kg/../../escape.txt"):
        archive = tmp_path / "a.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr(name, "a\tr\tb\n")
        with pytest.raises(RegistryError, match=rf"member {name!r} points outside the extraction folder") as info:
            _extract(archive, tmp_path / "out", label="tiny")
        assert_one_line(str(info.value))
    assert not (tmp_path / "escape.txt").exists()


def test_tar_and_zip_bombs_are_refused_before_extraction(tmp_path, monkeypatch):
    zeros = b"\0" * (3 << 20)  # 3 MiB of zeros: a few KiB compressed
    tar = _tar(tmp_path / "bomb.tar.gz", [_file("kg/train.txt")], {"kg/train.txt": zeros})
    monkeypatch.setenv("KDKGE_MAX_EXTRACT_BYTES", "1M")
    with pytest.raises(RegistryError, match=r"hold 3.0 MiB, which exceeds the cap of 1.0 MiB: refused as a possible archive bomb") as info:
        _extract(tar, tmp_path / "out", label="tiny")
    assert_one_line(str(info.value)) and "KDKGE_MAX_EXTRACT_BYTES" in str(info.value)
    assert not (tmp_path / "out" / "kg" / "train.txt").exists()
    zipped = tmp_path / "bomb.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("kg/train.txt", zeros)
    with pytest.raises(RegistryError, match=r"declare 3.0 MiB, which exceeds the cap of 1.0 MiB"):
        _extract(zipped, tmp_path / "out", label="tiny")
    _extract(zipped, tmp_path / "ok", max_bytes="4M", label="tiny")  # an explicit cap wins over the environment
    assert (tmp_path / "ok" / "kg" / "train.txt").stat().st_size == 3 << 20


def test_a_lying_zip_header_is_caught_while_writing(tmp_path):
    zipped = tmp_path / "liar.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("kg/train.txt", b"a" * 4096)
    raw = bytearray(zipped.read_bytes())
    # shrink the declared uncompressed size (local header and central directory) to 16 bytes
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.index(signature) + offset
        raw[at:at + 4] = (16).to_bytes(4, "little")
    zipped.write_bytes(bytes(raw))
    with pytest.raises(RegistryError) as info:
        _extract(zipped, tmp_path / "out", max_bytes=1024, label="tiny")
    assert_one_line(str(info.value))  # either caught by the byte count or by zipfile's own checks, never extracted whole


def test_corrupt_archive_and_bad_cap_are_one_line_errors(tmp_path):
    good = _tar(tmp_path / "a.tar", [_file("kg/train.txt")], {"kg/train.txt": b"a\tr\tb\n" * 1000}, mode="w")
    truncated = tmp_path / "t.tar"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(RegistryError, match=r"tiny: the tar archive is corrupt or truncated") as info:
        _extract(truncated, tmp_path / "out", label="tiny")
    assert_one_line(str(info.value))
    (tmp_path / "x.bin").write_bytes(b"neither")
    with pytest.raises(RegistryError, match=r"is neither a tar nor a zip archive"):
        _extract(tmp_path / "x.bin", tmp_path / "out")
    with pytest.raises(RegistryError, match=r"size 'lots' is not a number of bytes: write e.g. 4294967296, 500M or 4G"):
        parse_size("lots")
    assert parse_size("500M") == 500 << 20 and parse_size("4G") == 4 << 30 and parse_size(123) == 123


def test_fetch_refuses_a_download_over_the_cap(tmp_path, monkeypatch):
    import http.server
    import threading
    from functools import partial

    root = tmp_path / "www"
    root.mkdir()
    (root / "big.tar.gz").write_bytes(os.urandom(256 << 10))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(http.server.SimpleHTTPRequestHandler, directory=str(root)))
    httpd.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("KDKGE_CACHE", str(tmp_path / "cache"))
        entries = {"big": RemoteDataset(f"http://127.0.0.1:{httpd.server_address[1]}/big.tar.gz", sha256_of(root / "big.tar.gz"))}
        with pytest.raises(RegistryError, match=r"big: the download from .* exceeds the cap of 100.0 KiB") as info:
            fetch("big", registry=entries, max_bytes="100K")
        assert_one_line(str(info.value))
        with pytest.raises(RegistryError, match=r"big \(http://.*\) is neither a tar nor a zip archive"):
            fetch("big", registry=entries)
    finally:
        httpd.shutdown()
        httpd.server_close()
