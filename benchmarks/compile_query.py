"""Is torch.compile a lever on CPU?  The DistMult query BN(BN(h) ∘ BN(r)), forward + backward, eager
against ``torch.compile`` (inductor, which fuses the element-wise work into generated C++ loops).

The query's batch norms over the whole batch are the largest cost of a 1vsAll epoch after the
matrix products (``results/benchmarks.md``, profiles), so this is where a fused kernel would pay.
Prints the one-time compile seconds, median CPU ms per call of each (two interleaved rounds of 30
calls after 3 warm-up calls, 1 torch thread) and the largest forward difference: compiled code sums
in another order, so it would be an opt-in that changes float results.

Usage: python benchmarks/compile_query.py [--rows 1024] [--width 289]   (needs a C++ compiler)
"""

import argparse
import time

import torch


class Query(torch.nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.head, self.relation, self.product = (torch.nn.BatchNorm1d(width) for _ in range(3))

    def forward(self, h, r):
        return self.product(self.head(h) * self.relation(r))


def cpu_ms(fn, h, r, g, calls: int = 30) -> float:
    for _ in range(3):
        fn(h, r).backward(g)
    times = []
    for _ in range(calls):
        started = time.process_time()
        fn(h, r).backward(g)
        times.append(time.process_time() - started)
    return sorted(times)[calls // 2] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--width", type=int, default=289)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    eager, twin = Query(args.width), Query(args.width)
    twin.load_state_dict(eager.state_dict())
    compiled = torch.compile(twin)
    h = torch.randn(args.rows, args.width, requires_grad=True)
    r = torch.randn(args.rows, args.width, requires_grad=True)
    g = torch.randn(args.rows, args.width)
    started = time.time()
    compiled(h, r).backward(g)
    print(f"compile: {time.time() - started:.1f} s")
    for round_ in (1, 2):
        e, c = cpu_ms(eager, h, r, g), cpu_ms(compiled, h, r, g)
        print(f"round {round_}: eager {e:.2f} ms, compiled {c:.2f} ms per call ({e / c:.2f}x)")
    with torch.no_grad():
        print(f"largest forward difference: {(eager(h, r) - compiled(h, r)).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
