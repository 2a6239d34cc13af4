"""Draw the README's picture of a slice map: ``python docs/slice_map_picture.py`` (needs ``pip install cairosvg``).

A simulated H100 80GB in MIG mode: a 3g.40gb GPU instance split into three compute instances (one of them
leased), a 2g.20gb one with a process running on it, a 1g.10gb one without a compute instance, and a free
slice. The picture is ``smi.status()`` as Jupyter shows it, rendered on a white page.
"""

from __future__ import annotations

from pathlib import Path

import cairosvg  # type: ignore[import-not-found]  # a tool for this picture only, not a dependency of smimig

import smimig
from smimig.ledger import LeaseRecord
from smimig.sim import SimulatedRunner

HERE = Path(__file__).resolve().parent


def picture_svg() -> str:
    runner = SimulatedRunner("H100-80GB", mig=True)
    smi = smimig.Smi(runner=runner)
    made = smi.create_gi(0, ["3g.40gb", "2g.20gb", "1g.10gb"])
    smi.create_ci(0, made[0].id, ["1c.3g.40gb"] * 3)
    smi.create_ci(0, made[1].id)
    runner.add_process(0, made[1].id, 0, pid=31337, name="python serve.py")
    status = smi.status().gpus[0]
    if status.slice_map is None:
        raise SystemExit("the simulated GPU is not in MIG mode")
    lease = LeaseRecord(
        gpu=0, gi=made[0].id, ci=1, profile="MIG 1c.3g.40gb", placement=smimig.Placement(4, 4), uuid=None,
        user="alice", pid=48213, alive=True, state="held", created_at="", uid=1000, start_time=None, boot_id=None,
        entry="",
    )  # fmt: skip
    return status.slice_map.marked(leases=[lease]).svg()


def main() -> None:
    svg = picture_svg()
    page = svg.replace("<svg ", '<svg style="color:#1f2328" ', 1)  # the text colour of a light page
    cairosvg.svg2png(bytestring=page.encode(), write_to=str(HERE / "slice-map.png"), background_color="white")


if __name__ == "__main__":
    main()
