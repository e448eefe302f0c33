"""What outlives a run: its training state (for an exact resume) and its trained model (for predictions).

* :class:`TrainingState`: the full state of a (stacked) run — weights, batch-norm statistics, Adam
  moments, batch-order generators, loss history, best-validation models — written atomically every
  N epochs, and restored to continue to the same final metrics as an uninterrupted run.
* :func:`save_checkpoint` / :func:`load_checkpoint`: a trained model with its vocabulary
  (:class:`TrainedModel`, for predictions by name).

Every file is read with ``weights_only=True`` (:mod:`kdkge.safe_load`): loading never runs code.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from .data import KnowledgeGraph
from .models import build_model
from .safe_load import load_plain
from .spec import DTYPES, LEGACY_SPEC, RunResult, RunSpec
from .training import make_optimizer, resolve_device


class TrainingState:
    """The training state file ``path`` of the stacked run ``specs``.

    A state of other specs is an error, never silently reused; fields added to :class:`RunSpec`
    after a state was written take the meaning they had then (:data:`kdkge.spec.LEGACY_SPEC`).
    """

    def __init__(self, path: str | Path, specs: list[RunSpec]):
        self.path = Path(path)
        self.specs = [dataclasses.asdict(s) for s in specs]

    def load(self, model: torch.nn.Module, device: torch.device, history: list, best: list[dict]):
        """Restore ``model`` (in place), the loss ``history`` and the ``best``-validation records from
        the file; return ``(epoch, optimizer, generators)`` to continue training from."""
        state = load_plain(self.path, "training state", map_location=device)
        defaults = {**dataclasses.asdict(RunSpec()), **LEGACY_SPEC}  # what old states meant by missing fields
        if [{**defaults, **saved} for saved in state["specs"]] != self.specs:
            raise ValueError(f"checkpoint {self.path} belongs to other settings; delete it or set resume=false")
        base = RunSpec(**self.specs[0])
        model.load_state_dict(state["model"])
        optimizer = make_optimizer(model, base.lr, device, sparse=base.sparse)
        optimizer.load_state_dict(state["optimizer"])
        generators = [torch.Generator().set_state(g) for g in state["generators"]]
        history.extend(state["history"])
        for tracked, saved in zip(best, state.get("best", [])):
            tracked.update(saved)
        return state["epoch"], optimizer, generators

    def save(self, epoch: int, model: torch.nn.Module, optimizer, generators: list[torch.Generator],
             history: list, best: list[dict]) -> None:
        """Write the state after ``epoch`` (atomic: a kill leaves either the old or the new file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")  # per process: two writers never share a temp file
        torch.save(
            {
                "specs": self.specs, "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "generators": [g.get_state() for g in generators],
                "history": history, "best": best,
            },
            tmp,
        )
        tmp.replace(self.path)


def save_checkpoint(result_or_model, path: str | Path, spec: RunSpec | None = None, kg: KnowledgeGraph | None = None) -> Path:
    """Write a trained model with everything needed to reload it (atomic: temp file + rename)."""
    if isinstance(result_or_model, RunResult):
        model, spec, kg = result_or_model.model, result_or_model.spec, result_or_model.kg
    else:
        model = result_or_model
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": 1,
        "spec": dataclasses.asdict(spec),
        "entities": list(kg.entities),
        "relations": list(kg.relations),
        "num_relations": kg.num_relations,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


class TrainedModel:
    """A reloaded model with the names of its entities and relations, for predictions."""

    def __init__(self, model: torch.nn.Module, spec: RunSpec, entities: list[str], relations: list[str]):
        self.model, self.spec = model.eval(), spec
        self.entities, self.relations = list(entities), list(relations)
        self._entity_id = {e: i for i, e in enumerate(self.entities)}

    def relation_id(self, name: str) -> int:
        from .data import RECIPROCAL_SUFFIX

        if name.endswith(RECIPROCAL_SUFFIX) and name[: -len(RECIPROCAL_SUFFIX)] in self.relations:
            return self.relations.index(name[: -len(RECIPROCAL_SUFFIX)]) + len(self.relations)
        if name not in self.relations:
            raise KeyError(f"unknown relation {name!r}")
        return self.relations.index(name)

    @torch.no_grad()
    def predict(self, head: str, relation: str, k: int = 10) -> list[tuple[str, float]]:
        """Top-``k`` tails of ``(head, relation, ?)`` by score, as ``(entity name, score)``."""
        if head not in self._entity_id:
            raise KeyError(f"unknown entity {head!r}")
        device = next(self.model.parameters()).device
        h = torch.tensor([self._entity_id[head]], device=device)
        r = torch.tensor([self.relation_id(relation)], device=device)
        scores = self.model.score_all_tails(h, r)[0]
        top = torch.topk(scores, min(k, len(self.entities)))
        return [(self.entities[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())]


def load_checkpoint(path: str | Path, device: str = "cpu") -> TrainedModel:
    payload = load_plain(path, "checkpoint")  # weights_only=True: a file never runs code (kdkge.safe_load)
    spec = RunSpec(**{**LEGACY_SPEC, **payload["spec"]})
    num_relations = payload.get("num_relations", 2 * len(payload["relations"]))
    model = build_model(spec.model, len(payload["entities"]), num_relations, spec.dim, **spec.model_options)
    model.to(dtype=DTYPES[spec.dtype])
    model.load_state_dict(payload["state_dict"])
    return TrainedModel(model.to(resolve_device(device)), spec, payload["entities"], payload["relations"])
