"""A simulator in a process of its own: ``python -m benchmarks.simproc ACCESS SECRET ORG PIPELINE``.

Prints its base URL on the first stdout line and serves until stdin is closed.
"""

from __future__ import annotations

import sys

from enos_pulumi.simulator import Simulator


def main(argv: list[str]) -> int:
    access_key, secret_key, org_id, pipeline_id = argv
    sim = Simulator()
    sim.add_app(access_key, secret_key, orgs=[org_id])
    sim.add_pipeline(org_id, pipeline_id, status="PAUSED")
    sim.start()
    try:
        print(sim.base_url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or exits)
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
