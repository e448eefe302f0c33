"""The command line all benchmark drivers share (``kdkge.bench`` passes these flags to each).

The drivers run as scripts (``python benchmarks/<name>_driver.py``, PyKEEN's and dicee's in
``.bench-venv`` without kdkge installed), so this module is imported from the script's folder.
"""

import argparse


def driver_parser(description: str | None = None) -> argparse.ArgumentParser:
    """``--warmup``/``--epochs`` (untimed and timed epochs), ``--threads`` (torch threads), ``--dim``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--warmup", type=int, default=2, help="untimed epochs first")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--dim", type=int, default=289, help="embedding size d")
    return parser
