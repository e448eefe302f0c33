"""Downloaded datasets: fetched from a local HTTP server, verified, extracted, cached."""

import http.server
import tarfile
import threading
from functools import partial

import pytest

from kdkge import dataset_sources as registry
from kdkge.data import DATA_ROOT, load_dataset
from kdkge.dataset_sources import RegistryError, RemoteDataset, fetch, sha256_of


@pytest.fixture
def server(tmp_path):
    """Serve a tar.gz of NATIONS (in a sub-folder) on 127.0.0.1 and count the requests."""
    root = tmp_path / "www"
    root.mkdir()
    with tarfile.open(root / "nations.tar.gz", "w:gz") as tar:
        for split in ("train", "valid", "test"):
            tar.add(DATA_ROOT / "nations" / f"{split}.txt", arcname=f"nations_kg/{split}.txt")
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            hits.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root / "nations.tar.gz", hits
    httpd.shutdown()


def test_fetch_verifies_extracts_and_caches(server, tmp_path, monkeypatch):
    base, archive, hits = server
    monkeypatch.setenv("KDKGE_CACHE", str(tmp_path / "cache"))
    entries = {"tiny": RemoteDataset(f"{base}/nations.tar.gz", sha256_of(archive), subdir="nations_kg")}
    folder = fetch("tiny", registry=entries)
    assert sorted(p.name for p in folder.glob("*.txt")) == ["test.txt", "train.txt", "valid.txt"]
    assert len(load_dataset(folder).train) == 1592
    n = len(hits)
    assert fetch("tiny", registry=entries) == folder and len(hits) == n  # cached: no second download


def test_checksum_mismatch_and_unverified_are_refused(server, tmp_path, monkeypatch):
    base, archive, _ = server
    monkeypatch.setenv("KDKGE_CACHE", str(tmp_path / "cache"))
    bad = {"tiny": RemoteDataset(f"{base}/nations.tar.gz", "0" * 64, subdir="nations_kg")}
    with pytest.raises(RegistryError, match="SHA-256 mismatch"):
        fetch("tiny", registry=bad)
    unverified = {"tiny": RemoteDataset(f"{base}/nations.tar.gz", None, subdir="nations_kg")}
    with pytest.raises(RegistryError, match="no known SHA-256"):
        fetch("tiny", registry=unverified)
    assert fetch("tiny", registry=unverified, allow_unverified=True).is_dir()
    assert (tmp_path / "cache" / "tiny" / ".complete").read_text().strip() == sha256_of(archive)


def test_missing_files_and_bad_url(server, tmp_path, monkeypatch):
    base, archive, _ = server
    monkeypatch.setenv("KDKGE_CACHE", str(tmp_path / "cache"))
    wrong_dir = {"tiny": RemoteDataset(f"{base}/nations.tar.gz", sha256_of(archive), subdir="elsewhere")}
    with pytest.raises(RegistryError, match="lacks train.txt, valid.txt, test.txt"):
        fetch("tiny", registry=wrong_dir)
    missing = {"tiny": RemoteDataset(f"{base}/nope.tar.gz", None)}
    with pytest.raises(RegistryError, match="download of tiny .* failed"):
        fetch("tiny", registry=missing)
    with pytest.raises(RegistryError, match="not in the registry"):
        fetch("unknown", registry=missing)


def test_registry_names_resolve_through_load_dataset(server, tmp_path, monkeypatch):
    base, archive, _ = server
    monkeypatch.setenv("KDKGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(registry.REGISTRY, "tiny-nations", RemoteDataset(f"{base}/nations.tar.gz", sha256_of(archive), subdir="nations_kg"))
    assert load_dataset("tiny-nations").num_entities == 14
