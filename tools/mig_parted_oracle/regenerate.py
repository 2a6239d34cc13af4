"""Regenerate fixtures/mig-parted/expected-*.json: mig-parted's own answers, for the conformance tests.

    python tools/mig_parted_oracle/regenerate.py --oracle PROGRAM

writes every case (a mig-parted file, a config name, a node's GPUs) as one JSON list to PROGRAM's standard
input and stores what it answers beside the cases. PROGRAM is an oracle built from NVIDIA mig-parted's own
source: smimig keeps none of mig-parted's code here, nor anything that builds it; fixtures/mig-parted/README.md
says what the oracle runs of mig-parted's, and what it must answer.

Cases:
- ``edge-cases``: every case of fixtures/mig-parted/edge-cases.yaml, on the node written there.
- ``config-default``: NVIDIA's default config (``--nvidia-config FILE``; not committed here), every config on nodes of
  two GPUs of each simulated model, and on a node mixing three models (GPU ids from smimig's simulator catalog).

Input, one object per case: ``{"id", "file" (the YAML text), "config" ("" for none), "devices": [{"index",
"device_id", "subsystem_id"}]}``. Output, one object per case, in order: ``{"id", "error" (absent: none),
"stage" ("parse", "select" or "apply"), "config" (the config selected), "gpus": {"<index>": {"mig_enabled",
"entries" (the entries that selected it, 0-based, in order), "mig_devices" (the counts that stand),
"flattened" (mig-parted's order of them), "gis" (the GPU instances SetMigConfig created, each a list of its
compute instances' profiles; absent for models the oracle has no mock of), "pack_error"}}}``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "mig-parted"
sys.path.insert(0, str(ROOT))

from smimig.sim.catalog import MODELS  # noqa: E402  # the repository's own package, from this checkout

MIXED = ("A100-40GB", "A30", "H100-80GB")


def _device(index: int, model: str) -> dict[str, Any]:
    gpu = MODELS[model]
    return {"index": index, "device_id": gpu.pci_device_id, "subsystem_id": gpu.pci_subsystem_id}


def nodes() -> dict[str, list[dict[str, Any]]]:
    """The nodes the published files are resolved for: two GPUs of each simulated model, and a mixed node."""
    result = {f"{key}x2": [_device(0, key), _device(1, key)] for key in MODELS}
    result["mixed"] = [_device(index, key) for index, key in enumerate(MIXED)]
    return result


def edge_cases() -> dict[str, Any]:
    spec = yaml.safe_load((FIXTURES / "edge-cases.yaml").read_text(encoding="utf-8"))
    cases = [{"id": case["id"], "config": case.get("config", "lab") or "", "node": "edge"} for case in spec["cases"]]
    return {"file": "edge-cases.yaml", "nodes": {"edge": spec["node"]}, "cases": cases}


def case_text(file: str, case_id: str) -> str:
    """The mig-parted file a case resolves: an edge case's own text, or the published file."""
    if file == "edge-cases.yaml":
        spec = yaml.safe_load((FIXTURES / file).read_text(encoding="utf-8"))
        return str(next(case["file"] for case in spec["cases"] if case["id"] == case_id))
    return PUBLISHED[file].read_text(encoding="utf-8")


PUBLISHED: dict[str, Path] = {}  # NVIDIA's files, where --nvidia-config says they are


def published(name: str) -> dict[str, Any]:
    text = PUBLISHED[f"{name}.yaml"].read_text(encoding="utf-8")
    configs = yaml.safe_load(text)["mig-configs"]
    cases = [{"id": f"{config}@{node}", "config": config, "node": node} for config in configs for node in nodes()]
    return {"file": f"{name}.yaml", "nodes": nodes(), "cases": cases}


def run_oracle(oracle: str, suite: dict[str, Any]) -> list[dict[str, Any]]:
    stdin = [
        {
            "id": case["id"],
            "file": case_text(suite["file"], case["id"]),
            "config": case["config"],
            "devices": suite["nodes"][case["node"]],
        }
        for case in suite["cases"]
    ]
    completed = subprocess.run(  # noqa: S603  # the oracle the maintainer names, with the cases on stdin
        shlex.split(oracle), input=json.dumps(stdin), capture_output=True, text=True, check=True, timeout=600
    )
    answers: list[dict[str, Any]] = json.loads(completed.stdout)
    return answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oracle", required=True, help="the oracle program's command line")
    parser.add_argument("--source", default="", help="what the oracle was built from, kept in the fixture")
    parser.add_argument(
        "--nvidia-config", required=True, type=Path, help="NVIDIA's config-default.yaml (not committed here)"
    )
    options = parser.parse_args(argv)
    PUBLISHED["config-default.yaml"] = options.nvidia_config
    for name, suite in (("edge-cases", edge_cases()), ("config-default", published("config-default"))):
        answers = run_oracle(options.oracle, suite)
        for case, answer in zip(suite["cases"], answers):
            if answer["id"] != case["id"]:
                raise SystemExit(f"the oracle answered {answer['id']} for {case['id']}")
            case["expected"] = {key: value for key, value in answer.items() if key != "id"}
        out = FIXTURES / f"expected-{name}.json"
        document = {"source": options.source, **suite}
        out.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        print(f"{out.relative_to(ROOT)}: {len(answers)} cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
