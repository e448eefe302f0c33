"""The splits, vocabulary and noise of the authors' code (dice-embeddings ``ca983cc``, 2022-02-18).

``protocol=paper_code`` trains and evaluates on what that code built from the standard files
(``core/knowledge_graph.py``; line numbers below are at ``ca983cc``, the facts are collected in
``tests/reference/NOTES.md``):

1. **Reciprocals** (l.51-71): train and valid get ``(o, r_inverse, s)``.  The test reciprocals are
   built as ``{'subject': test.object, 'relation': test.relation + '_inverse', 'object':
   self.valid_set['subject']}`` — *valid's* subjects, of a valid split that already holds its
   reciprocals — and pandas aligns the three columns on their index.  The 2022 test split is
   therefore ``|T|`` true triples, ``|T|`` inverse rows whose tail is a validation subject, and
   ``2|V| − |T|`` rows ``(NaN, NaN, validation subject)`` (UMLS: 661 + 661 + 643 = 1,965 rows;
   KINSHIP: 1,074 + 2,136 = 3,210).  Fixed in ``8d0c9c5``, six days after the experiments.
2. **Vocabulary** (l.95-111): ``pd.unique`` over all subjects of train, valid and test, then all
   objects; relations by first appearance.  NaN is one value: **one extra entity and one extra
   relation** (UMLS: 135 + 1 = 136 entities, 2·46 + 1 = 93 relations: the paper's Table 1, and
   why its |Θ| equals ours with |E| + 1 and |R| + 1).
3. **Noise** (l.73-92, Table 4): after the reciprocals, ``int(rate · |train with reciprocals|)``
   triples, subject, relation and object each drawn uniformly (``np.random.choice``, in that
   order) from the training vocabulary (``_inverse`` relations included); not checked to be false,
   no reciprocals, and part of the filter.  The authors seeded numpy's global state with 1;
   here ``np.random.RandomState(seed)`` — seed 1 draws the authors' noise.

The result is an ordinary :class:`~kdkge.data.KnowledgeGraph` (clean ``train``/``valid``/``test``,
used for the ``test_*`` metrics) whose vocabulary holds the NaN entity and relation, plus
``paper_test`` (the 2022 test split, reciprocal rows included, as id triples) and
``noise_after_reciprocals``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .data import SPLITS, DataError, KnowledgeGraph, check_evaluable, read_triples, resolve_dataset_path

#: The name the authors gave a reciprocal relation (we print ``r^-1``; only used while building).
INVERSE_SUFFIX = "_inverse"
#: Name of the entity and the relation that NaN became.
NAN_NAME = "<NaN>"

Triple = tuple  # (subject, relation, object) with None for NaN


def _reciprocals(triples: list[Triple], objects: list) -> list[Triple]:
    """``(o, r_inverse, objects[i])`` aligned on the row index like ``pd.DataFrame({...})``."""
    rows = max(len(triples), len(objects))
    out = []
    for i in range(rows):
        if i < len(triples):
            _, r, o = triples[i]
            subject, relation = o, r + INVERSE_SUFFIX
        else:
            subject = relation = None
        out.append((subject, relation, objects[i] if i < len(objects) else None))
    return out


def frames_2022(train: list[Triple], valid: list[Triple], test: list[Triple]):
    """The authors' train, valid and test frames as lists of string triples (None = NaN).

    ``core/knowledge_graph.py:51-71``: train and valid + their true reciprocals; test + the
    reciprocals whose objects are the subjects of the valid frame *with* its reciprocals.
    """
    train2 = train + _reciprocals(train, [h for h, _, _ in train])
    valid2 = valid + _reciprocals(valid, [h for h, _, _ in valid]) if valid else list(valid)
    test2 = test + _reciprocals(test, [h for h, _, _ in valid2]) if test else list(test)
    return train2, valid2, test2


def _first_appearance(values) -> list:
    return list(dict.fromkeys(values))


def noise_2022(train2: list[Triple], rate: float, seed: int) -> list[Triple]:
    """``int(rate · len(train2))`` random triples (``core/knowledge_graph.py:73-92``)."""
    count = int(len(train2) * rate)
    entities = _first_appearance([s for s, _, _ in train2] + [o for _, _, o in train2])
    relations = _first_appearance([r for _, r, _ in train2])
    rng = np.random.RandomState(seed)
    pick = lambda pool: [pool[i] for i in rng.choice(len(pool), count)]  # noqa: E731  (= np.random.choice(pool, n))
    subjects, rels, objects = pick(entities), pick(relations), pick(entities)
    return list(zip(subjects, rels, objects))


def load_dataset_2022(name_or_path: str | Path, noise_ratio: float = 0.0, seed: int = 1) -> KnowledgeGraph:
    """A dataset as the authors' code indexed it (see the module docstring).

    ``train``/``valid``/``test`` are the clean splits (ids in the 2022 vocabulary, reciprocal
    relation ``r`` ↦ ``r + |R|`` as everywhere in kdkge); the NaN relation is id ``2|R|``.
    """
    folder = resolve_dataset_path(name_or_path)
    raw = {split: read_triples(folder / f"{split}.txt") for split in SPLITS}
    check_evaluable(folder, raw, {e for h, _, t in raw["train"] for e in (h, t)}, {r for _, r, _ in raw["train"]})
    if not raw["valid"]:
        raise DataError(f"{folder}/valid.txt is empty: protocol=paper_code builds the test reciprocals from the valid split")
    train2, valid2, test2 = frames_2022(raw["train"], raw["valid"], raw["test"])
    noise = noise_2022(train2, noise_ratio, seed) if noise_ratio else []
    everything = train2 + noise + valid2 + test2
    entity_order = _first_appearance([s for s, _, _ in everything] + [o for _, _, o in everything])
    relation_order = _first_appearance([r for _, r, _ in everything])
    originals = [r for r in relation_order if r is not None and not r.endswith(INVERSE_SUFFIX)]
    missing = [r for r in relation_order if r is not None and r.endswith(INVERSE_SUFFIX) and r[: -len(INVERSE_SUFFIX)] not in originals]
    if missing:  # a relation named like a reciprocal: cannot be laid out as r ↦ r + |R|
        raise DataError(f"{folder}: relation {missing[0]!r} ends in {INVERSE_SUFFIX!r} without its original; rename it")
    has_nan = None in entity_order or None in relation_order
    e_id = {e: i for i, e in enumerate(entity_order)}
    r_id = {r: i for i, r in enumerate(originals)}
    r_id.update({r + INVERSE_SUFFIX: i + len(originals) for r, i in list(r_id.items())})
    r_id[None] = 2 * len(originals)  # the NaN relation (only used if the test split has NaN rows)

    def index(triples):
        return torch.tensor([(e_id[h], r_id[r], e_id[t]) for h, r, t in triples], dtype=torch.long).view(-1, 3)

    entities = tuple(NAN_NAME if e is None else e for e in entity_order)
    return KnowledgeGraph(
        name=folder.name,
        entities=entities,
        relations=tuple(originals),
        train=index(raw["train"]),
        valid=index(raw["valid"]),
        test=index(raw["test"]),
        extra_relations=1 if has_nan else 0,
        paper_test=index(test2),
        noise_after_reciprocals=index(noise) if noise else None,
        report={"protocol": "paper_code", "paper_test_rows": len(test2),
                "paper_test_nan_rows": sum(1 for h, _, _ in test2 if h is None)},
    )


def paper_filter_triples(kg: KnowledgeGraph) -> torch.Tensor:
    """What the authors' filter (``er_vocab``) is built from: train with reciprocals and noise,
    valid with reciprocals, and the whole 2022 test split (``core/knowledge_graph.py:211-217``)."""
    from .data import with_reciprocals

    parts = [with_reciprocals(kg.train, len(kg.relations))]
    if kg.noise_after_reciprocals is not None:
        parts.append(kg.noise_after_reciprocals)
    parts += [with_reciprocals(kg.valid, len(kg.relations)), kg.paper_test]
    return torch.cat(parts)

