"""The shipped datasets are byte-identical to the PyKEEN 1.11.1 files (data/SHA256SUMS)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"

# dataset -> (train, valid, test, entities, relations); see data/README.md
COUNTS = {
    "umls": (5216, 652, 661, 135, 46),
    "kinship": (8544, 1068, 1074, 104, 25),
    "nations": (1592, 199, 201, 14, 55),
}


def _sums() -> list[tuple[str, str]]:
    rows = []
    for line in (DATA / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            rows.append((name.lstrip("*"), digest))
    return rows


def test_sums_cover_every_split():
    listed = {name for name, _ in _sums()}
    expected = {f"{d}/{s}.txt" for d in COUNTS for s in ("train", "valid", "test")}
    assert listed == expected
    on_disk = {p.relative_to(DATA).as_posix() for p in DATA.glob("*/*.txt")}
    assert on_disk == expected


@pytest.mark.parametrize("name,digest", _sums())
def test_sha256(name, digest):
    assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("dataset", sorted(COUNTS))
def test_counts(dataset):
    n_train, n_valid, n_test, n_ent, n_rel = COUNTS[dataset]
    entities, relations, sizes = set(), set(), []
    for split in ("train", "valid", "test"):
        lines = (DATA / dataset / f"{split}.txt").read_text(encoding="utf-8").splitlines()
        triples = [line.split("\t") for line in lines]
        assert all(len(t) == 3 for t in triples)
        sizes.append(len(triples))
        for h, r, t in triples:
            entities.update((h, t))
            relations.add(r)
    assert sizes == [n_train, n_valid, n_test]
    assert (len(entities), len(relations)) == (n_ent, n_rel)
