"""Test reference: what the authors' code did at dice-group/dice-embeddings ca983cc.

This is an independent transcription, written from scratch, of the parts of
commit ca983cc568f91495733c43e653149a88aab9d425 ("finishing up experiments",
2022-02-18) that produced the numbers in Demir et al. 2022. Quirks are kept on
purpose. Line numbers refer to that commit. See NOTES.md next to this file.
Only torch, numpy and pandas are used. The authors ran pandas 1.4.0, torch 1.10.1
and numpy 1.22.1 (requirements.txt). All frames here use the object dtype, so the
NaN handling is the same under pandas 2/3 as under 1.4.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

COMMIT = "ca983cc568f91495733c43e653149a88aab9d425"
COLUMNS = ["subject", "relation", "object"]


# --------------------------------------------------------------------------- #
# Losses (1vsAll: logits of shape (B, |E|), integer tail index of shape (B,))
# --------------------------------------------------------------------------- #
def ce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Plain softmax cross-entropy, mean over the batch.

    core/executer.py:312-313 (``nn.CrossEntropyLoss()``), applied to the
    ``(h, r) -> t`` pairs of core/dataset_classes.py:313-331.
    """
    return -logits.log_softmax(dim=-1).gather(1, target.view(-1, 1)).squeeze(1).mean()


def ls_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float) -> torch.Tensor:
    """Label smoothing with torch's ``CrossEntropyLoss(label_smoothing=alpha)`` semantics.

    core/executer.py:310-311. The target distribution is (1-alpha)*onehot + alpha/|E|
    (the uniform part also covers the true class). The loss is the mean over the batch
    of the cross-entropy against that distribution.
    """
    logp = logits.log_softmax(dim=-1)
    q = torch.full_like(logp, alpha / logp.shape[1])
    q.scatter_add_(1, target.view(-1, 1), torch.full_like(logp[:, :1], 1.0 - alpha))
    return -(q * logp).sum(dim=1).mean()


def lr_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float) -> torch.Tensor:
    """The authors' LabelRelaxationLoss, as written (core/helper_classes.py:52-84).

    Chosen when ``--label_relaxation_rate`` is set (core/executer.py:306-307).
    Quirks kept:
    * p = softmax(logits) (l.67-68); the credal target is 1-alpha on the true class and
      alpha * p_j / sum_{k != true} p_k elsewhere (l.75-78). It is NOT detached (the
      ``torch.no_grad`` at l.70 is commented out), so gradients also flow through it.
    * ``F.kl_div(p.log(), q)`` uses the default reduction 'mean': ONE scalar averaged
      over all B*|E| entries (not 'batchmean', no per-row values) (l.79).
    * The zeroing condition p_true > 1-alpha (l.81-83) picks between 0 and that batch
      scalar for each row, so the loss is  D * (number of rows with p_true <= 1-alpha) / B.
      Rows that meet the condition still count inside D.
    """
    p = logits.softmax(dim=-1)
    onehot = F.one_hot(target, num_classes=p.shape[1])  # int64, as in l.73
    others_mass = ((1 - onehot) * p).sum(dim=-1, keepdim=True)
    q = torch.where(onehot > 0.1, torch.full_like(p, 1.0 - alpha), alpha * p / others_mass)
    divergence = F.kl_div(p.log(), q, reduction="mean", log_target=False)  # scalar
    p_true = (p * onehot).sum(dim=-1)
    per_row = torch.where(p_true > 1.0 - alpha, torch.zeros_like(divergence), divergence)
    return per_row.mean()


def loss_2022(logits, target, label_smoothing_rate=None, label_relaxation_rate=None):
    """How the loss is picked (core/executer.py:306-313): relaxation wins, then smoothing,
    else plain CE. A rate of 0.0 or None is falsy and means off."""
    if label_relaxation_rate:
        return lr_loss(logits, target, label_relaxation_rate)
    if label_smoothing_rate:
        return ls_loss(logits, target, label_smoothing_rate)
    return ce_loss(logits, target)


# --------------------------------------------------------------------------- #
# Reading and the 2022 split construction
# --------------------------------------------------------------------------- #
def read_split(path) -> pd.DataFrame:
    """Read one split the way the authors did (core/knowledge_graph.py:373-423).

    They call dask ``read_csv(delim_whitespace=True, header=None, usecols=[0, 1, 2],
    names=[subject, relation, object])`` (l.395-396): any whitespace splits fields, there
    is no header, and pandas' default NA strings apply. Nothing is deduplicated or sorted.
    A small file is one partition, so the index is 0..n-1. The N-Triples branch (l.412-421)
    runs only if the first line ends in ' .\\n', which is not the case for UMLS/KINSHIP.
    """
    df = pd.read_csv(path, sep=r"\s+", header=None, usecols=[0, 1, 2], names=COLUMNS, dtype=object)
    return df.astype(object)


def _with_reciprocals(df: pd.DataFrame, object_source: pd.Series) -> pd.DataFrame:
    """df followed by the rows (df.object, df.relation + '_inverse', object_source).

    Like ``pd.DataFrame({...})`` from Series, the three columns are aligned on their index
    labels (union of the indexes). A label that a column lacks becomes NaN.
    """
    inverse = pd.DataFrame(
        {
            "subject": df["object"].astype(object),
            "relation": df["relation"].astype(object).map(lambda x: x + "_inverse").astype(object),
            "object": object_source.astype(object),
        }
    ).astype(object)
    return pd.concat([df.astype(object), inverse], ignore_index=True).astype(object)


def splits_2022(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, noise_rate=None, rng=None):
    """Build the authors' train/valid/test frames and vocabularies.

    Transcribes core/knowledge_graph.py:50-111. ``add_reciprical`` is True for 1vsAll
    (core/static_funcs.py:49).
    * train: train + (o, r_inverse, s)                                         l.54-58
    * valid: valid + (o, r_inverse, s)                                         l.59-64
    * test:  test + (test.object, test.relation_inverse, VALID.subject)        l.65-70
      The bug: ``valid`` already holds its reciprocals (2*|valid| rows), and pandas aligns
      on the index. The inverse block therefore has max(|test|, 2*|valid|) rows. Row i < |test|
      has object valid_with_reciprocals.subject[i] (wrong target). Rows i >= |test| are
      (NaN, NaN, valid_with_reciprocals.subject[i]).
    * optional noise on the train frame that already holds its reciprocals (l.73-92), see add_noise
    * entities: pd.unique over the subject column and then the object column of
      concat(train, valid, test). The authors write ``values.ravel('K')`` (l.95-99), and that
      array is column-major. This gives the order of first appearance, not sorted. NaN counts
      as one entity.
    * relations: pd.unique(concat.relation), order of first appearance, NaN counts as one
      relation (l.107).

    Returns (train, valid, test, entities, relations). The frames are string triples
    (object dtype, NaN kept). The vocabularies are object arrays (index = integer id).
    """
    train = _with_reciprocals(train, train["subject"])
    if len(valid) > 0:
        valid = _with_reciprocals(valid, valid["subject"])
    if len(test) > 0:
        test = _with_reciprocals(test, valid["subject"])  # sic: valid, fixed in 8d0c9c5
    if noise_rate is not None:
        train = add_noise(train, noise_rate, rng)
    kg = pd.concat([train, valid, test], ignore_index=True).astype(object)
    entities = pd.unique(np.concatenate([kg["subject"].to_numpy(object), kg["object"].to_numpy(object)]))
    relations = pd.unique(kg["relation"].to_numpy(object))
    return train, valid, test, entities, relations


def add_noise(train: pd.DataFrame, rate: float, rng=None) -> pd.DataFrame:
    """Append int(rate * len(train)) random triples (core/knowledge_graph.py:73-92).

    ``train`` already holds its reciprocals here. Entities come from pd.unique(subject column,
    then object column) of that frame (l.77). Relations come from pd.unique(relation), which
    includes the ``_inverse`` ones (l.84). The draws are subject, relation, object, in that
    order, each uniform with replacement (``np.random.choice``). The noisy rows get no
    reciprocals, and nothing is deduplicated. The authors draw from numpy's global RandomState,
    seeded with 1 at import time (knowledge_graph.py:12, then seed_everything(1) at
    executer.py:29), so pass ``np.random.RandomState(1)`` to copy that seed. 1 >= rate > 0
    is asserted (static_funcs.py:35-36).
    """
    rng = np.random if rng is None else rng
    n = int(len(train) * rate)
    ents = pd.unique(np.concatenate([train["subject"].to_numpy(object), train["object"].to_numpy(object)]))
    rels = pd.unique(train["relation"].to_numpy(object))
    s = rng.choice(ents, n)
    r = rng.choice(rels, n)
    o = rng.choice(ents, n)
    noisy = pd.DataFrame({"subject": s, "relation": r, "object": o}).astype(object)
    return pd.concat([train, noisy], ignore_index=True).astype(object)


def to_index(df: pd.DataFrame, entities, relations) -> np.ndarray:
    """Map string triples to int64 ids (core/knowledge_graph.py:143-145, 170-172, 192-194).
    NaN maps to the NaN id."""
    ent = pd.Index(entities, dtype=object)
    rel = pd.Index(relations, dtype=object)
    out = np.stack(
        [ent.get_indexer(df["subject"]), rel.get_indexer(df["relation"]), ent.get_indexer(df["object"])], axis=1
    ).astype(np.int64)
    assert (out >= 0).all()
    return out


# --------------------------------------------------------------------------- #
# Evaluation (core/executer.py:374-456, the '1VsAll' = entity branch)
# --------------------------------------------------------------------------- #
def er_vocab_2022(*idx_splits: np.ndarray) -> dict:
    """(h, r) -> list of tails over concat(train incl. reciprocals+noise, valid, test) of
    the indexed splits, including the wrong-target and NaN test rows
    (core/knowledge_graph.py:211-217, core/static_funcs.py:261-266)."""
    vocab = defaultdict(list)
    for h, r, t in np.concatenate(idx_splits):
        vocab[(int(h), int(r))].append(int(t))
    return vocab


def filtered_ranks(scores: torch.Tensor, triples: np.ndarray, er_vocab: dict) -> list:
    """1-based filtered ranks for one batch (core/executer.py:432-442).

    For each row, every known tail of (h, r) gets -inf, then the target's own score is put
    back. The rank is the target's position in ``torch.sort(descending=True)`` plus 1, so
    ties are broken by torch.sort, not by a best/worst/mean rule.
    """
    scores = scores.detach().clone()
    for j, (h, r, t) in enumerate(triples):
        keep = scores[j, int(t)].item()
        scores[j, er_vocab[(int(h), int(r))]] = -np.inf
        scores[j, int(t)] = keep
    _, order = torch.sort(scores, dim=1, descending=True)
    return [int(torch.where(order[j] == int(t))[0].item()) + 1 for j, (_, _, t) in enumerate(triples)]


def metrics_2022(ranks) -> dict:
    """H@k = #(rank <= k) / N and MRR = mean(1/rank) over ALL evaluated rows
    (core/executer.py:416-418, 444-453)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return {
        "H@1": float((ranks <= 1).sum() / len(ranks)),
        "H@3": float((ranks <= 3).sum() / len(ranks)),
        "H@10": float((ranks <= 10).sum() / len(ranks)),
        "MRR": float(np.mean(1.0 / ranks)),
    }


def evaluate_2022(score_fn, triples: np.ndarray, er_vocab: dict, batch_size: int = 1024) -> dict:
    """The whole evaluation (core/executer.py:374-456). ``score_fn(h, r)`` returns (B, |E|)
    logits, with the model in eval() mode (l.384). ``triples`` is the whole indexed split,
    reciprocal and NaN rows included. The batches are consecutive slices of batch_size (l.422-424)."""
    ranks = []
    for i in range(0, len(triples), batch_size):
        batch = np.asarray(triples[i : i + batch_size])
        scores = score_fn(torch.tensor(batch[:, 0]), torch.tensor(batch[:, 1]))
        ranks += filtered_ranks(scores, batch, er_vocab)
    return metrics_2022(ranks)


# --------------------------------------------------------------------------- #
# Scoring functions, eval mode (dropouts are identity; default rates are 0.0)
# --------------------------------------------------------------------------- #
def _self_kron(x: torch.Tensor) -> torch.Tensor:
    """Row-wise x ⊗ x: out[:, i*d + j] = x_i * x_j (batch_kronecker_product, core/models/real.py:8-20)."""
    return (x.unsqueeze(2) * x.unsqueeze(1)).reshape(x.shape[0], -1)


def krone_scores(ent, rel, bn_ent, bn_rel, h, r) -> torch.Tensor:
    """KronE.forward_k_vs_all (core/models/real.py:160-227). The tables have width
    sqrt(embedding_dim). BN is applied on the d-dim embeddings before ⊗, and there is no
    hidden BN/dropout. The feature (h⊗h)*(r⊗r) is reshaped to (B, d, d) row-major, multiplied
    by the raw (no BN) entity table ent.T, and summed over the d rows."""
    eh, er = bn_ent(ent[h]), bn_rel(rel[r])
    feat = _self_kron(eh) * _self_kron(er)
    d = ent.shape[1]
    return (feat.reshape(-1, d, d) @ ent.T).sum(dim=1)


def kpdistmult_scores(ent, rel, bn_ent, bn_rel, bn_hidden, h, r) -> torch.Tensor:
    """KPDistMult ('KD-Rel-DistMult') forward_k_vs_all (core/models/real.py:120-158).
    ent has width d and rel has width int(sqrt(d)). The score is
    BN_hidden(BN_ent(e_h) * BN_rel(r⊗r)) @ ent.T."""
    return bn_hidden(bn_ent(ent[h]) * bn_rel(_self_kron(rel[r]))) @ ent.T
