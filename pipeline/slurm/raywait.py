"""Wait until the Ray cluster at ADDRESS has NODES live nodes (``slurm/ray-cluster.sbatch`` runs it).

    python -m pipeline.slurm.raywait HOST:PORT NODES [TIMEOUT_SECONDS]

Exit 0 when they are up, 1 (with the count seen) when the timeout passes first.
"""

from __future__ import annotations

import logging
import sys
import time


def wait_for_nodes(address: str, nodes: int, timeout: float) -> int:
    """The number of live nodes, polled until it reaches `nodes` or `timeout` seconds pass."""
    import ray

    deadline = time.monotonic() + timeout
    alive = 0
    while True:
        try:
            if not ray.is_initialized():
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            alive = sum(1 for node in ray.nodes() if node.get("Alive"))
        except Exception:  # noqa: BLE001 - the head is still starting; try again until the deadline
            alive = 0
        if alive >= nodes or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    if ray.is_initialized():
        ray.shutdown()
    return alive


def main(arguments: list[str]) -> int:
    if len(arguments) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    address, nodes = arguments[0], int(arguments[1])
    timeout = float(arguments[2]) if len(arguments) == 3 else 300.0
    alive = wait_for_nodes(address, nodes, timeout)
    if alive < nodes:
        print(f"raywait: {alive} of {nodes} Ray nodes joined {address} within {timeout:.0f} s", file=sys.stderr)
        return 1
    print(f"raywait: {alive} Ray node{'s' if alive != 1 else ''} up at {address}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
