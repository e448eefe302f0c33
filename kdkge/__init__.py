"""kdkge: Kronecker-decomposed knowledge graph embeddings (reproduction of Demir et al., 2022)."""
