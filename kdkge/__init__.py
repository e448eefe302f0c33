"""kdkge: Kronecker Decomposition for Knowledge Graph Embeddings (Demir, Lienen, Ngonga Ngomo 2022)."""

__version__ = "0.1.0"
