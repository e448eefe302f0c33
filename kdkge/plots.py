"""The figures logged with a run: the learning curve (reliability diagrams: :mod:`kdkge.calibration_metrics`)."""

from __future__ import annotations


def learning_curve(losses: list[tuple[int, float]], valid_mrr: list[tuple[int, float]], title: str):
    """Figure of the training loss per epoch and the validation MRR per evaluation."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot()
    if losses:
        if all(v > 0 for _, v in losses):
            ax.set_yscale("log")  # BCE losses fall by orders of magnitude
        ax.plot([e for e, _ in losses], [v for _, v in losses], color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    twin = ax.twinx()
    if valid_mrr:
        twin.plot([e for e, _ in valid_mrr], [v for _, v in valid_mrr], "o-", color="tab:orange", label="valid MRR")
    twin.set_ylabel("valid MRR (filtered)", color="tab:orange")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def log_and_close(tracker, fig, filename: str) -> None:
    """Log a figure and free it: a long sweep would otherwise keep every figure alive."""
    import matplotlib.pyplot as plt

    try:
        tracker.log_figure(fig, filename)
    finally:
        plt.close(fig)
