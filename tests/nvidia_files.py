"""NVIDIA's default mig-parted configuration, which this repository does not commit.

Material fetched from other repositories is not committed here; data files of that kind live in the steering
repository's ``shared/``, which CI and every developer have beside the checkout. The tests that apply NVIDIA's
own file (``deployments/systemd/config-default.yaml`` of NVIDIA/mig-parted, Apache-2.0) read it from there,
or from ``$SMIMIG_MIG_PARTED_DEFAULT``; without it they are skipped and say so. What smimig must answer for it
(mig-parted's own resolutions, made by the oracle in tools/mig_parted_oracle) is committed, as our data.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CANDIDATES = (
    ROOT.parent / "shared" / "mig-parted" / "config-default.yaml",
    ROOT.parent / "shared" / "realdata" / "mig-parted" / "config-default.yaml",
)

MISSING = (
    "NVIDIA's default mig-parted config is not in shared/ (shared/mig-parted/config-default.yaml) nor in "
    "$SMIMIG_MIG_PARTED_DEFAULT: the project does not commit it (see tests/nvidia_files.py)"
)


def default_config() -> Path | None:
    """The file, where one is provided; None otherwise."""
    named = os.environ.get("SMIMIG_MIG_PARTED_DEFAULT")
    for candidate in (Path(named),) if named else CANDIDATES:
        if candidate.is_file():
            return candidate
    return None
