"""The ``smimig`` command: see and change MIG state at a glance. Built on the public API only.

Exit codes: 0 success; 1 an unexpected error (a bug: please report it), or ``doctor`` found something that
needs attention; 2 a usage error (bad option or
argument, nothing was run); 3 nvidia-smi failed (or could not be run) and nothing was changed; 4 nvidia-smi
printed something smimig does not understand; 5 a change failed part-way: some of it was done (listed).

Why argparse: the standard library, so the CLI adds no dependency to a package that lab nodes install next
to the driver, and sub-commands with shared options are all it needs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, TextIO

import attrs

import smimig
from smimig.errors import (
    InstanceBusy,
    MigOperationError,
    NvidiaSmiError,
    NvidiaSmiNotFound,
    NvidiaSmiTimeout,
    ParseError,
    SmimigError,
)

__all__ = [
    "EXIT_NVIDIA_SMI",
    "EXIT_OK",
    "EXIT_PARSE",
    "EXIT_PARTIAL",
    "EXIT_UNEXPECTED",
    "EXIT_USAGE",
    "main",
]

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_NVIDIA_SMI = 3
EXIT_PARSE = 4
EXIT_PARTIAL = 5

_DESCRIPTION = """\
See and change NVIDIA MIG state. With no command, shows the status of every GPU: its MIG mode, GPU
instances with profile and placement, the compute instances inside them, each MIG device's UUID (what
goes into CUDA_VISIBLE_DEVICES) and the room left per profile.
"""
_EPILOG = """\
examples:
  smimig --simulate A30x4 status          try it without a GPU (state kept in your cache directory)
  smimig mode on -i 0                     nvidia-smi -i 0 -mig 1
  smimig create-gi 2g.12gb 2g.12gb -i 0 -C
  smimig create-ci --gi 1 1c.2g.12gb 1c.2g.12gb -i 0
  smimig destroy-ci -i 0 && smimig destroy-gi -i 0
  smimig gis --json
  smimig apply layout.yaml --dry-run     plan, explain, change nothing
  smimig export > layout.yaml             the current state, to apply elsewhere or later
  smimig run --each -- python train.py    one process per MIG device

exit codes: 0 ok, 1 unexpected error, 2 usage, 3 nvidia-smi failed (nothing changed),
            4 output not understood, 5 partial success (what was done is listed)
"""


def _ids(text: str) -> list[int]:
    parts = text.split(",")
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"expected an id or comma-separated ids, got {text!r}")
    return [int(part) for part in parts]


def _one_id(text: str) -> int:
    ids = _ids(text)
    if len(ids) != 1:
        raise argparse.ArgumentTypeError(f"expected one id, got {text!r}")
    return ids[0]


def _common(suppress: bool) -> argparse.ArgumentParser:
    """Options accepted before or after the command (``smimig --json gis`` and ``smimig gis --json``)."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS if suppress else False, help="print JSON"
    )
    group.add_argument(
        "--simulate",
        metavar="MODEL[xN]",
        default=default,
        help="use a simulated node instead of nvidia-smi, e.g. A30x4, H100-80GBx2, A100-40GB; its state "
        "is kept in the cache directory, so successive commands build on each other ('--simulate list' "
        "lists the models)",
    )
    group.add_argument(
        "--reset-simulation",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="with --simulate: start from a fresh node (MIG off everywhere) before the command",
    )
    group.add_argument(
        "--host",
        metavar="[USER@]HOST[:PORT]",
        default=default,
        help="run nvidia-smi on another machine through ssh (BatchMode: a key or agent must let you in; "
        "extra ssh options from $SMIMIG_SSH_OPTIONS, the remote binary from $SMIMIG_NVIDIA_SMI)",
    )
    group.add_argument(
        "--sudo",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="run nvidia-smi through 'sudo -n' (changes need root)",
    )
    return parser


def _gpu_option(parser: argparse.ArgumentParser, required: bool = False, many: bool = True) -> None:
    parser.add_argument(
        "-i",
        "--gpu",
        "--id",
        dest="gpu",
        type=_ids if many else _one_id,
        required=required,
        metavar="GPU" if not many else "GPU[,GPU…]",
        help="GPU index" + ("es" if many else "") + (" (all when omitted)" if not required else ""),
    )


def _parser() -> argparse.ArgumentParser:  # noqa: PLR0915  # one statement per option, in --help's order
    parser = argparse.ArgumentParser(
        prog="smimig",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"smimig {smimig.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common(suppress=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text, parents=[common])

    _gpu_option(command("status", "everything at a glance (the default)"))
    _gpu_option(command("gpus", "GPUs and their MIG devices (nvidia-smi -L)"))
    for name, what in (("profiles", "profiles"), ("placements", "possible placements")):
        sub = command(name, f"GPU instance {what}, or compute instance {what} with --ci/--gi")
        _gpu_option(sub)
        sub.add_argument("--ci", action="store_true", help=f"compute instance {what} instead")
        sub.add_argument("--gi", type=_ids, metavar="GI[,GI…]", help="in these GPU instances (implies --ci)")
    _gpu_option(command("gis", "GPU instances (nvidia-smi mig -lgi)"))
    sub = command("cis", "compute instances (nvidia-smi mig -lci)")
    _gpu_option(sub)
    sub.add_argument("--gi", type=_ids, metavar="GI[,GI…]", help="in these GPU instances only")
    _gpu_option(command("devices", "MIG devices with GPU/GI/CI ids and UUIDs"))

    sub = command("mode", "turn MIG mode on or off (nvidia-smi -i N -mig 1|0)")
    sub.add_argument("state", choices=("on", "off"))
    _gpu_option(sub, required=True)

    sub = command("create-gi", "create GPU instances (nvidia-smi mig -i N -cgi … [-C])")
    sub.add_argument("profiles", nargs="+", metavar="PROFILE", help="id, name or name:start, e.g. 5, 2g.12gb, 9:0")
    _gpu_option(sub, required=True, many=False)
    sub.add_argument("-C", "--ci", dest="ci", action="store_true", help="also a default compute instance in each")

    sub = command("create-ci", "create compute instances (nvidia-smi mig -i N -gi G -cci …)")
    sub.add_argument("profiles", nargs="*", metavar="PROFILE", help="id or name (default: the default profile)")
    _gpu_option(sub, required=True, many=False)
    sub.add_argument("--gi", type=_one_id, required=True, metavar="GI", help="GPU instance id")

    sub = command("destroy-ci", "destroy compute instances (nvidia-smi mig -dci)")
    _gpu_option(sub)
    sub.add_argument("--gi", type=_ids, metavar="GI[,GI…]")
    sub.add_argument("--ci", type=_ids, metavar="CI[,CI…]")

    sub = command("destroy-gi", "destroy GPU instances (nvidia-smi mig -dgi)")
    _gpu_option(sub)
    sub.add_argument("--gi", type=_ids, metavar="GI[,GI…]")

    for name, help_text in (
        ("plan", "show the steps that would bring the GPUs to a layout file"),
        ("apply", "bring the GPUs to a layout file (only the steps needed; again: no change)"),
    ):
        sub = command(name, help_text)
        sub.add_argument("file", type=Path, help="a layout (YAML or JSON), or a mig-parted config with --config")
        sub.add_argument("--config", metavar="NAME", help="which config of a mig-parted file")
        if name == "apply":
            sub.add_argument("--dry-run", action="store_true", help="plan only, change nothing")
            sub.add_argument("--force", action="store_true", help="destroy instances even if processes run on them")
    sub = command("export", "the current state as a layout file (apply it to get back here)")
    sub.add_argument("--format", choices=("yaml", "json", "mig-parted"), default="yaml")
    sub.add_argument("--name", default="smimig", help="the config name, with --format mig-parted")
    sub = command("doctor", "pre-flight check: driver, MIG mode and why it is pending, rights, parsing")
    sub.add_argument("--save-dir", type=Path, metavar="DIR", help="where to save output smimig cannot parse")
    sub = command("lease", "run a command on a fresh MIG device, destroyed when the command ends")
    sub.add_argument("profile", metavar="PROFILE", help="GPU instance profile, e.g. 1g.10gb")
    _gpu_option(sub, many=False)
    sub.add_argument("--ci-profile", metavar="CI", help="compute instance profile (default: full size)")
    sub.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD…")
    sub = command("run", "run a command on MIG devices with CUDA_VISIBLE_DEVICES set")
    sub.add_argument("--each", action="store_true", required=True, help="one process per MIG device")
    _gpu_option(sub)
    sub.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD…")
    return parser


def _simulation_path(spec: str) -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    safe = "".join(character if character.isalnum() or character in "-_" else "_" for character in spec)
    return Path(cache) / "smimig" / f"simulate-{safe}.json"


def _client(options: argparse.Namespace) -> smimig.Smi:
    if options.simulate:
        from smimig.sim import StateFileRunner, parse_node_spec  # noqa: PLC0415  # only when simulating

        try:
            model, gpus = parse_node_spec(options.simulate)
        except ValueError as error:
            raise ValueError(f"{error} (smimig --simulate list describes the models)") from None
        runner = StateFileRunner(_simulation_path(options.simulate), model, gpus)
        if options.reset_simulation:
            runner.reset()
        return smimig.Smi(runner=runner)
    if options.reset_simulation:
        raise ValueError("--reset-simulation goes with --simulate")
    if options.host:
        user, _, rest = options.host.rpartition("@")
        host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
        remote = smimig.SshRunner(
            host,
            user=user or None,
            port=int(port) if port.isascii() and port.isdigit() else None,
            options=shlex.split(os.environ.get("SMIMIG_SSH_OPTIONS", "")),
            executable=os.environ.get("SMIMIG_NVIDIA_SMI", "nvidia-smi"),
            sudo=options.sudo,
        )
        return smimig.Smi(runner=remote)
    return smimig.Smi(sudo=options.sudo)


def _plain(value: object) -> object:
    if attrs.has(type(value)):
        return {key: _plain(item) for key, item in attrs.asdict(value, recurse=False).items()}  # type: ignore[arg-type]
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


class _Text(str):
    """Already formatted output (export): printed as it is, with or without --json."""

    __slots__ = ()


def _show(result: object, as_json: bool, out: TextIO) -> None:
    if isinstance(result, _Text):
        out.write(f"{result}\n")
    elif as_json:
        json.dump(_plain(result), out, indent=2)
        out.write("\n")
    else:
        out.write(f"{result}\n")


def _run(options: argparse.Namespace, smi: smimig.Smi) -> object:  # noqa: PLR0911  # one return per command
    command = options.command or "status"
    gpu: Any = getattr(options, "gpu", None)  # required (so set) where the API needs one
    actions: dict[str, Callable[[], object]] = {
        "status": lambda: smi.status(gpu),
        "gpus": lambda: smi.list_gpus(gpu),
        "gis": lambda: smi.list_gis(gpu),
        "cis": lambda: smi.list_cis(gpu, options.gi),
        "devices": lambda: smi.devices(gpu),
        "mode": lambda: (smi.enable_mig if options.state == "on" else smi.disable_mig)(gpu),
        "create-gi": lambda: smi.create_gi(gpu, options.profiles, ci=options.ci),
        "create-ci": lambda: smi.create_ci(gpu, options.gi, options.profiles or None),
        "destroy-ci": lambda: smi.destroy_ci(gpu, options.gi, options.ci),
        "destroy-gi": lambda: smi.destroy_gi(gpu, options.gi),
    }
    if command == "plan":
        return smi.plan(smi.load_layout(options.file, config=options.config))
    if command == "apply":
        layout = smi.load_layout(options.file, config=options.config)
        return smi.apply(layout, dry_run=options.dry_run, force=options.force)
    if command == "export":
        layout = smi.export()
        if options.json or options.format == "json":
            return _Text(layout.to_json().rstrip("\n"))
        if options.format == "mig-parted":
            return _Text(layout.to_mig_parted_yaml(options.name).rstrip("\n"))
        return _Text(layout.to_yaml().rstrip("\n"))
    if command in ("profiles", "placements"):
        compute = options.ci or options.gi is not None
        if command == "profiles":
            return smi.list_ci_profiles(gpu, options.gi) if compute else smi.list_gi_profiles(gpu)
        return smi.list_ci_placements(gpu, options.gi) if compute else smi.list_gi_placements(gpu)
    return actions[command]()


def _report(error: SmimigError, err: TextIO) -> int:
    """One clear sentence, then nvidia-smi's own words; the exit code for the kind of failure."""
    if isinstance(error, MigOperationError):
        done = len(error.completed)
        sentence = (
            f"{error.command} failed part-way: {done} change(s) were made before it"
            if done
            else f"{error.command} failed; nothing was changed"
        )
        err.write(f"smimig: {sentence}.\n")
        for item in error.completed:
            err.write(f"  done: {item}\n")
        for failure in error.failures:
            err.write(f"  nvidia-smi: {failure}\n")
        if not error.failures and error.message:
            err.write(f"  nvidia-smi: {error.message}\n")
        if isinstance(error, smimig.PermissionDenied):
            err.write("  MIG changes need root: run as root or add --sudo.\n")
        return EXIT_PARTIAL if done else EXIT_NVIDIA_SMI
    if isinstance(error, NvidiaSmiError):
        err.write(f"smimig: {error.command} failed with exit code {error.returncode}.\n")
        if error.message:
            err.write("".join(f"  nvidia-smi: {line}\n" for line in error.message.splitlines()))
        return EXIT_NVIDIA_SMI
    if isinstance(error, (NvidiaSmiNotFound, NvidiaSmiTimeout)):
        err.write(f"smimig: {error}\n")
        return EXIT_NVIDIA_SMI
    if isinstance(error, ParseError):
        err.write(f"smimig: nvidia-smi printed something smimig does not understand: {error}\n")
        err.write("  Please report it with the output of the same nvidia-smi command.\n")
        return EXIT_PARSE
    err.write(f"smimig: {error}\n")
    return EXIT_UNEXPECTED


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:  # noqa: PLR0911
    """Run the command line; return its exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _parser()
    options = parser.parse_args(argv)
    if (getattr(options, "simulate", None) or "").lower() in ("list", "help"):
        from smimig.sim.catalog import describe_models  # noqa: PLC0415  # only when asked

        out.write(describe_models())
        return EXIT_OK
    if options.command == "run":
        return _run_each(options, parser, out, err)
    if options.command == "lease":
        return _lease(options, parser, err)
    if options.command == "doctor":
        return _doctor(options, out, err)
    try:
        smi = _client(options)
        result = _run(options, smi)
    except (ValueError, OSError) as error:
        err.write(f"smimig: {error}\n")
        return EXIT_USAGE
    except InstanceBusy as error:
        err.write(f"smimig: {error}\n")
        return EXIT_NVIDIA_SMI
    except SmimigError as error:
        return _report(error, err)
    _show(result, options.json, out)
    return EXIT_OK


def _run_each(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO, err: TextIO) -> int:
    command = options.cmd[1:] if options.cmd[:1] == ["--"] else options.cmd
    if not command:
        parser.error("run --each needs a command after --")
    try:
        smi = _client(options)
        runs = smi.run_on_each(command, options.gpu)
    except (ValueError, OSError) as error:
        err.write(f"smimig: {error}\n")
        return EXIT_USAGE
    except SmimigError as error:
        return _report(error, err)
    if not runs:
        err.write("smimig: no MIG devices to run on\n")
        return EXIT_USAGE
    for run in runs:
        out.write(
            f"GPU {run.device.gpu} GI {run.device.gi} CI {run.device.ci} {run.device.uuid}: exit {run.returncode}\n"
        )
    return next((run.returncode or 0 for run in runs if run.returncode), EXIT_OK)


def _doctor(options: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Exit code 0 when healthy, 1 when something needs attention (one line per finding)."""
    try:
        report = _client(options).doctor(save_dir=options.save_dir)
    except ValueError as error:
        err.write(f"smimig: {error}\n")
        return EXIT_USAGE
    _show(report if options.json else _Text(str(report)), options.json, out)
    return EXIT_OK if report.healthy else EXIT_UNEXPECTED


def _lease(options: argparse.Namespace, parser: argparse.ArgumentParser, err: TextIO) -> int:
    command = options.cmd[1:] if options.cmd[:1] == ["--"] else options.cmd
    if not command:
        parser.error("lease needs a command after --")
    from smimig.runner import spawn  # noqa: PLC0415  # only this command starts a user's process

    try:
        smi = _client(options)
        with smi.lease(options.profile, options.gpu, ci_profile=options.ci_profile) as held:
            err.write(
                f"smimig: leased {held.profile_name} on GPU {held.gpu} (GI {held.gi}, CI {held.ci}): {held.uuid}\n"
            )
            process = spawn(command, held.env)
            try:
                code = process.wait()
            except KeyboardInterrupt:
                process.wait()
                raise
    except (ValueError, OSError) as error:
        err.write(f"smimig: {error}\n")
        return EXIT_USAGE
    except SmimigError as error:
        return _report(error, err)
    return code


def main_exit() -> None:
    """The console script's entry point."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # "smimig gis | head": the reader left, which is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_OK
    raise SystemExit(code)
