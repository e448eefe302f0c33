"""kdkge: Kronecker Decomposition for Knowledge Graph Embeddings (Demir, Lienen, Ngonga Ngomo 2022)."""

from .malloc import tune as _tune_malloc

__version__ = "0.1.0"

_tune_malloc()  # only with KDKGE_MALLOC_TUNE=1: reuse freed step buffers (kdkge/malloc.py), no numerical effect
