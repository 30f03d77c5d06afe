"""The scheduler process of the Ray cluster tests (`python -m tests.integration.cluster_driver`).

Wired exactly as `lrlab serve` wires it (api.loops.start_scheduler, from LRLAB_* settings:
LRLAB_RAY_ADDRESS, LRLAB_DATABASE_URL, LRLAB_DATA_DIR, LRLAB_LEASE_SECONDS), without the
HTTP server. Prints {"ready": true} once connected, then answers each stdin line
`resources` with Ray's cluster resources as JSON; stops the scheduler at EOF.
"""

from __future__ import annotations

import json
import logging
import sys

from api.loops import start_scheduler
from services.settings import Settings
from services.store import open_store


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    settings = Settings()
    assert settings.ray_address, "LRLAB_RAY_ADDRESS names the cluster to join"
    store = open_store(settings.resolved_database_url)
    scheduler, launcher = start_scheduler(store, settings)
    import ray

    print(json.dumps({"ready": True, "address": settings.ray_address}), flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "resources":
                print(json.dumps(ray.cluster_resources()), flush=True)  # type: ignore[no-untyped-call]
    finally:
        scheduler.stop(timeout=30)
        launcher.close()
        store.close()


if __name__ == "__main__":
    main()
