"""kdkge: Kronecker Decomposition for Knowledge Graph Embeddings (Demir, Lienen, Ngonga Ngomo 2022)."""

from .malloc import tune as _tune_malloc

__version__ = "0.1.0"

_tune_malloc()  # reuse freed step buffers (kdkge/malloc.py; KDKGE_MALLOC_TUNE=0 turns it off), no numerical effect
