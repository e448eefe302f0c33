"""Knowledge graphs: loading, indexing, reciprocal triples, noise, training labels and filters.

A dataset is a folder holding ``train.txt``, ``valid.txt`` and ``test.txt`` with one
``head<TAB>relation<TAB>tail`` triple per line (the format of the standard UMLS, KINSHIP and
NATIONS splits shipped in ``data/``).

Indexing is deterministic: entities and relations get the position of their name in sorted order.
Reciprocal relations (Sec. 3.2, Lacroix et al. 2018) are appended after the originals: relation
``r`` has id ``i`` and its inverse ``r^-1`` has id ``i + |R_original|``.  Every model therefore sees
``|R| = 2 · |R_original|`` relations (UMLS: 92, KINSHIP: 50).
"""

from __future__ import annotations

import logging
import sys
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .paths import DATA_ROOT

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
BUILTIN = ("umls", "kinship", "nations")
RECIPROCAL_SUFFIX = "^-1"
UNSEEN_POLICIES = ("skip", "error")


class DataError(ValueError):
    """Malformed or inconsistent dataset input; the message names the file (and line)."""


@dataclass(frozen=True)
class KnowledgeGraph:
    """An indexed knowledge graph with its three splits.

    Triples are ``LongTensor[n, 3]`` of ``(head, relation, tail)`` ids *without* reciprocals;
    use :func:`with_reciprocals` to add ``(t, r^-1, h)``.
    """

    name: str
    entities: tuple[str, ...]
    relations: tuple[str, ...]  # originals only; reciprocal ids are offset by len(relations)
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    num_noisy: int = 0  # how many triples at the end of ``train`` are injected noise (Sec. 6.3)
    report: dict = field(default_factory=dict)  # what loading cleaned up: duplicates, unseen, ...
    # protocol=paper_code (kdkge.data_2022): the authors' NaN relation, their 2022 test split
    # (reciprocal rows included) and their noise, added after the reciprocals
    extra_relations: int = 0  # relations embedded beyond originals + reciprocals (ids from 2·|R| on)
    paper_test: torch.Tensor | None = None
    noise_after_reciprocals: torch.Tensor | None = None

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        """Relations a model must embed: originals plus their reciprocals (plus any extra ones)."""
        return 2 * len(self.relations) + self.extra_relations

    def training_triples(self) -> torch.Tensor:
        """What training sees: ``train`` with its reciprocals, then any noise added after them."""
        triples = with_reciprocals(self.train, len(self.relations))
        if self.noise_after_reciprocals is not None:
            triples = torch.cat([triples, self.noise_after_reciprocals])
        return triples

    @property
    def clean_train(self) -> torch.Tensor:
        """The training triples without injected noise (what "on training set" rows evaluate)."""
        return self.train[: len(self.train) - self.num_noisy]

    def relation_name(self, rel_id: int) -> str:
        n = len(self.relations)
        return self.relations[rel_id] if rel_id < n else self.relations[rel_id - n] + RECIPROCAL_SUFFIX

    def relation_id(self, name: str) -> int:
        if name.endswith(RECIPROCAL_SUFFIX):
            return self.relations.index(name[: -len(RECIPROCAL_SUFFIX)]) + len(self.relations)
        return self.relations.index(name)


#: Words of a header line (``head relation tail``, ``subject predicate object``, ...): a split file
#: holds triples only, and a header would silently become a triple.
HEADER_WORDS = (
    {"head", "subject", "source", "src", "from", "h", "s"},
    {"relation", "predicate", "rel", "relation_type", "edge", "r", "p"},
    {"tail", "object", "target", "dst", "to", "t", "o"},
)


def _is_header(parts: list[str]) -> bool:
    """Whether three fields read as column names (at least two of them full words, not single letters)."""
    words = [p.lower().lstrip("#").strip() for p in parts]
    return all(w in vocabulary for w, vocabulary in zip(words, HEADER_WORDS)) and sum(len(w) > 1 for w in words) >= 2


def read_triples(path: Path) -> list[tuple[str, str, str]]:
    """Read ``head<TAB>relation<TAB>tail`` lines, streaming (large files never sit in memory twice).

    Blank lines and surrounding whitespace are tolerated, and so is a UTF-8 byte-order mark at the
    start of the file (stripped).  :class:`DataError` naming ``file:line`` (and a fix) for: another
    column count, an empty field, a NUL byte, a header line (``head relation tail``; it would be read
    as a triple), and a relation whose name ends in :data:`RECIPROCAL_SUFFIX` (``r^-1`` names the
    reciprocal of ``r``, which kdkge adds itself).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing split file {path}: a dataset folder needs train.txt, valid.txt and test.txt")
    triples = []
    try:
        with path.open(encoding="utf-8-sig") as handle:  # -sig: a leading byte-order mark is dropped
            for lineno, line in enumerate(handle, start=1):
                if "\x00" in line:
                    raise DataError(f"{path}:{lineno}: NUL byte in the line: the file is binary, truncated or UTF-16, "
                                    "not UTF-8 text; re-encode it as UTF-8 (iconv -f UTF-16 -t UTF-8)")
                line = line.strip()
                if not line:
                    continue
                parts = [p.strip() for p in line.split("\t")]
                if len(parts) != 3:
                    if _is_header(line.split()):
                        raise DataError(f"{path}:{lineno}: header line {line!r}: split files hold triples only; delete the line")
                    raise DataError(
                        f"{path}:{lineno}: expected 3 tab-separated fields (head, relation, tail), "
                        f"found {len(parts)}"
                    )
                if not all(parts):
                    raise DataError(f"{path}:{lineno}: empty field in {line!r}")
                if parts[1].lower() in HEADER_WORDS[1] and _is_header(parts):  # cheap test first: millions of lines
                    raise DataError(f"{path}:{lineno}: header line {line!r}: split files hold triples only; delete the line")
                if parts[1].endswith(RECIPROCAL_SUFFIX):
                    raise DataError(
                        f"{path}:{lineno}: relation {parts[1]!r} ends in {RECIPROCAL_SUFFIX!r}, the name kdkge gives the "
                        f"reciprocal of {parts[1][: -len(RECIPROCAL_SUFFIX)]!r}: the two would collide; rename the relation"
                    )
                # interned: a name that recurs on millions of lines is stored once
                triples.append((sys.intern(parts[0]), sys.intern(parts[1]), sys.intern(parts[2])))
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start}); re-encode the file as UTF-8") from None
    if not triples:
        raise DataError(f"{path}: no triples (file is empty)")
    return triples


def check_evaluable(folder: Path, raw: dict[str, list], train_entities: set, train_relations: set) -> None:
    """A valid/test split none of whose triples can be ranked (every one uses an entity or relation
    that never occurs in train) is an error, whatever the ``unseen`` policy: its metrics would be
    empty, or the ranks of untrained embeddings."""
    for split in ("valid", "test"):
        triples = raw[split]
        if triples and not any(h in train_entities and t in train_entities and r in train_relations for h, r, t in triples):
            raise DataError(
                f"{folder}/{split}.txt: all {len(triples)} triples of the {split} split use an entity or relation that "
                "never occurs in train.txt, so none can be ranked: check that the three files belong to the same graph"
            )


def resolve_dataset_path(name_or_path: str | Path) -> Path:
    """A built-in name (``umls``, ``kinship``, ``nations``) or a folder path."""
    text = str(name_or_path)
    from .dataset_sources import REGISTRY, fetch

    if text in REGISTRY and not Path(text).expanduser().is_dir():
        return fetch(text)  # downloaded once, verified, cached
    folder = DATA_ROOT / text if text in BUILTIN else Path(text).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"dataset folder {folder} does not exist: use one of {', '.join(BUILTIN)} or a folder "
            "holding train.txt, valid.txt, test.txt"
        )
    return folder


def load_dataset(name_or_path: str | Path, unseen: str = "skip") -> KnowledgeGraph:
    """Load and index a dataset.

    Args:
        name_or_path: built-in dataset name or folder path.
        unseen: policy for valid/test triples whose entity or relation never occurs in train
            (no embedding is trained for it, so any rank would be meaningless):
            ``"skip"`` drops them with a warning naming the count; ``"error"`` raises.

    Duplicate triples within a split are dropped and counted in ``report``.
    """
    if unseen not in UNSEEN_POLICIES:
        raise DataError(f"unseen={unseen!r} is not a policy: use one of {UNSEEN_POLICIES}")
    folder = resolve_dataset_path(name_or_path)
    raw = {split: read_triples(folder / f"{split}.txt") for split in SPLITS}
    report: dict = {}

    for split in SPLITS:
        unique = list(dict.fromkeys(raw[split]))
        if len(unique) != len(raw[split]):
            report[f"duplicates_{split}"] = len(raw[split]) - len(unique)
            log.warning("%s/%s.txt: dropped %d duplicate triples", folder, split, len(raw[split]) - len(unique))
        raw[split] = unique

    train_entities = {e for h, _, t in raw["train"] for e in (h, t)}
    train_relations = {r for _, r, _ in raw["train"]}
    check_evaluable(folder, raw, train_entities, train_relations)
    for split in ("valid", "test"):
        kept = [tr for tr in raw[split] if tr[0] in train_entities and tr[2] in train_entities and tr[1] in train_relations]
        dropped = len(raw[split]) - len(kept)
        if dropped:
            msg = (
                f"{folder}/{split}.txt: {dropped} of {len(raw[split])} triples use an entity or relation "
                "that never occurs in train.txt"
            )
            if unseen == "error":
                raise DataError(msg + " (set dataset.unseen=skip to drop them)")
            warnings.warn(msg + "; they are skipped (dataset.unseen=skip)", stacklevel=2)
            report[f"unseen_{split}"] = dropped
            raw[split] = kept

    entities = tuple(sorted(train_entities))
    relations = tuple(sorted(train_relations))
    e_id = {e: i for i, e in enumerate(entities)}
    r_id = {r: i for i, r in enumerate(relations)}

    def index(triples):
        return torch.tensor([(e_id[h], r_id[r], e_id[t]) for h, r, t in triples], dtype=torch.long).view(-1, 3)

    return KnowledgeGraph(
        name=folder.name,
        entities=entities,
        relations=relations,
        train=index(raw["train"]),
        valid=index(raw["valid"]),
        test=index(raw["test"]),
        report=report,
    )


def with_reciprocals(triples: torch.Tensor, num_original_relations: int) -> torch.Tensor:
    """Append ``(t, r + |R_original|, h)`` for every ``(h, r, t)`` (Sec. 3.2)."""
    inverse = torch.stack([triples[:, 2], triples[:, 1] + num_original_relations, triples[:, 0]], dim=1)
    return torch.cat([triples, inverse], dim=0)


def add_noise(kg: KnowledgeGraph, ratio: float, seed: int) -> KnowledgeGraph:
    """Sec. 6.3: add ``round(ratio · |train|)`` random triples to the training split only.

    A noisy triple is drawn uniformly from E × R × E (as the paper's code does) and rejected if it
    is a known fact of any split or was already drawn, so every added triple is false.  The draw uses
    its own generator seeded with ``seed``: the same seed gives the same noise.  Valid and test stay clean.
    """
    if not 0.0 <= ratio < 1.0:
        raise DataError(f"noise_ratio={ratio} must lie in [0, 1)")
    count = int(round(ratio * len(kg.train)))
    if count == 0:
        return kg
    known = {tuple(t) for split in (kg.train, kg.valid, kg.test) for t in split.tolist()}
    rng = np.random.default_rng(seed)
    noise: list[tuple[int, int, int]] = []
    seen = set()
    while len(noise) < count:
        h, t = rng.integers(kg.num_entities, size=2)
        r = rng.integers(len(kg.relations))
        triple = (int(h), int(r), int(t))
        if triple in known or triple in seen:
            continue
        seen.add(triple)
        noise.append(triple)
    noisy = torch.cat([kg.train, torch.tensor(noise, dtype=torch.long)], dim=0)
    return replace(kg, train=noisy, num_noisy=count)


@dataclass(frozen=True)
class TrainingLabels:
    """Training data points for 1vsAll or KvsAll (Sec. 3.2), stored without dense label matrices.

    Data point ``i`` is the query ``queries[i] = (h, r)``; its true tails are
    ``tails[offsets[i]:offsets[i + 1]]``.  1vsAll has one tail per data point (one point per
    triple); KvsAll has one point per distinct ``(h, r)`` with all its training tails.
    """

    queries: torch.Tensor  # [n, 2]
    offsets: torch.Tensor  # [n + 1]
    tails: torch.Tensor  # [offsets[-1]]

    def __len__(self) -> int:
        return len(self.queries)

    def to(self, device) -> "TrainingLabels":
        return TrainingLabels(self.queries.to(device), self.offsets.to(device), self.tails.to(device))

    def batch_targets(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Positive cells of a batch as ``(rows, cols)`` into its ``[len(idx), |E|]`` score matrix."""
        starts, ends = self.offsets[idx], self.offsets[idx + 1]
        counts = ends - starts
        device = self.offsets.device
        rows = torch.repeat_interleave(torch.arange(len(idx), device=device), counts)
        # position of each label inside its data point's tail list
        within = torch.arange(len(rows), device=device) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        cols = self.tails[torch.repeat_interleave(starts, counts) + within]
        return rows, cols


def one_vs_all(triples: torch.Tensor) -> TrainingLabels:
    """1vsAll: one data point ``((h, r), {t})`` per triple (Lacroix et al. 2018)."""
    n = len(triples)
    return TrainingLabels(queries=triples[:, :2].clone(), offsets=torch.arange(n + 1), tails=triples[:, 2].clone())


def k_vs_all(triples: torch.Tensor) -> TrainingLabels:
    """KvsAll: one data point per distinct ``(h, r)`` with every training tail (Dettmers et al. 2018)."""
    pairs, inverse = torch.unique(triples[:, :2], dim=0, return_inverse=True)
    order = torch.argsort(inverse, stable=True)
    counts = torch.bincount(inverse, minlength=len(pairs))
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])
    return TrainingLabels(queries=pairs, offsets=offsets, tails=triples[order, 2])


def training_labels(triples: torch.Tensor, strategy: str) -> TrainingLabels:
    """The data points of ``strategy`` ``1vsall`` or ``kvsall`` (a run asks its strategy,
    :meth:`kdkge.strategies.TrainingStrategy.labels`; negative sampling trains on 1vsAll data points)."""
    builders = {"1vsall": one_vs_all, "kvsall": k_vs_all}
    if strategy not in builders:
        raise DataError(f"training strategy {strategy!r} is unknown: use one of {sorted(builders)}")
    return builders[strategy](triples)


def known_tails(kg: KnowledgeGraph) -> dict[tuple[int, int], set[int]]:
    """Filter index: all true tails of ``(h, r)`` over train + valid + test, reciprocals included.

    Injected noise is not a fact and is left out of the filter.
    """
    index: dict[tuple[int, int], set[int]] = {}
    for split in (kg.clean_train, kg.valid, kg.test):
        for h, r, t in with_reciprocals(split, len(kg.relations)).tolist():
            index.setdefault((h, r), set()).add(t)
    return index
