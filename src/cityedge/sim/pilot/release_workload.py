"""The workload a pilot release carries; it runs from its slot under the node's OTA supervisor.

In the pilot, each node's edge agent runs inside the pilot's node process (the pilot measures
it through a pipe), so a release cannot replace the agent itself. It ships this process
instead: the supervisor starts it from the installed slot, restarts it on every switch and
rollback, and judges the trial on the node agent's measured camera frame rate and uplink plus
this process staying alive. `behaviour.json` in the slot says how it behaves: a good release
runs until stopped; a bad one (`crash_after_s`) exits with code 3, as a broken build would.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    behaviour = json.loads(Path("behaviour.json").read_text())
    crash_after = behaviour.get("crash_after_s")
    release = os.environ.get("CITYEDGE_RELEASE", "?")
    print(f"release {release} running from {Path.cwd()}", flush=True)
    started = time.monotonic()
    while crash_after is None or time.monotonic() - started < crash_after:
        time.sleep(0.2)
    print(f"release {release}: exiting with code 3 after {crash_after} s (a broken build)", flush=True)
    return 3


if __name__ == "__main__":
    sys.exit(main())
