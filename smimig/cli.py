"""The ``smimig`` command: see and change MIG state at a glance. Built on the public API only.

Exit codes, from the one table in :mod:`smimig.exit_codes` (every command's errors go through its
``explain``): 0 ok; 1 an unexpected error, a bug (one line names the file holding the traceback), and from
``doctor`` only, a report that needs attention (its answer, not a bug); 2 refused before anything ran (usage,
a bad argument or file, an impossible layout, instances in use without ``--force``, no room for a lease);
3 nvidia-smi (or ssh) failed and nothing was changed; 4 nvidia-smi printed something smimig cannot read;
5 a change failed part-way (what ran and what was restored are printed); 129 hung up (SIGHUP);
130 interrupted (Ctrl-C); 143 stopped (SIGTERM): each after finishing or undoing what had started, with one
line on stderr and never a traceback. ``lease`` and ``run --each`` exit with the job's own code
(``run --each``: the first non-zero), 128+N when signal N killed it, or when smimig received signal N itself:
it forwards SIGINT, SIGTERM and SIGHUP to the job's process group (each job runs in a session of its own),
waits for it, releases, exits.

Signals: for the duration of :func:`main` (in the main thread), SIGTERM and SIGHUP raise
:class:`~smimig.Terminated` as Ctrl-C raises ``KeyboardInterrupt``, so each command cleans up as for Ctrl-C
(a signal that was ignored, as ``nohup`` ignores SIGHUP, stays ignored); the previous handlers are put back.

Why argparse: the standard library, so the CLI adds no dependency to a package that lab nodes install next
to the driver, and sub-commands with shared options are all it needs.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import os
import shlex
import signal
import sys
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

import smimig
from smimig import interrupts
from smimig.errors import LeaseError, SmimigError, Terminated
from smimig.exit_codes import ExitCode, explain, job_exit_code

# Start-up is every command's cost (issue 17): what only some commands need is imported where they need it
# (json for --json, pathlib for file arguments, the ledger, jobs, the simulator, the planner), and names used
# only in annotations are imported for the type checker alone.
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path
    from typing import Any, TextIO

    from smimig.models import DestroyedComputeInstance, DestroyedGpuInstance

__all__ = [
    "EXIT_NVIDIA_SMI",
    "EXIT_OK",
    "EXIT_PARSE",
    "EXIT_PARTIAL",
    "EXIT_UNEXPECTED",
    "EXIT_USAGE",
    "ExitCode",
    "main",
]

# The names scripts and tests already use, for the members of ExitCode.
EXIT_OK = ExitCode.OK
EXIT_UNEXPECTED = ExitCode.UNEXPECTED
EXIT_USAGE = ExitCode.REFUSED
EXIT_NVIDIA_SMI = ExitCode.NVIDIA_SMI
EXIT_PARSE = ExitCode.PARSE
EXIT_PARTIAL = ExitCode.PARTIAL

_DESCRIPTION = """\
See and change NVIDIA MIG state. With no command, shows the status of every GPU: its MIG mode, GPU
instances with profile and placement, the compute instances inside them, each MIG device's UUID (what
goes into CUDA_VISIBLE_DEVICES) and the room left per profile.
"""
_EXAMPLES = """\
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
"""
_JOB_CODES = """\
  lease and run --each exit with the job's own code (run --each: the first non-zero), 128+N when signal N
  killed it
"""
_EPILOG = "\n".join([_EXAMPLES, "exit codes:", *(f"  {code.value:<4} {code.meaning}" for code in ExitCode), _JOB_CODES])


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


def _path(text: str) -> Path:
    from pathlib import Path  # noqa: PLC0415  # only the commands that take a file

    return Path(text)


def _columns() -> int:
    """The terminal's width as :func:`shutil.get_terminal_size` gives it ($COLUMNS, else the terminal of
    standard output, else 80), without importing shutil (with bz2, lzma, zlib: 2 ms of every command)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, told the terminal's width: argparse makes one for every argument added (to check
    its metavar), and each would import shutil to ask for the width."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
        **more: Any,  # noqa: ANN401  # what later Pythons add (color)
    ) -> None:
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width, **more)


class _RawDescriptionHelpFormatter(_HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """argparse's RawDescriptionHelpFormatter with :class:`_HelpFormatter`'s width."""


def _common(suppress: bool) -> argparse.ArgumentParser:
    """Options accepted before or after the command (``smimig --json gis`` and ``smimig gis --json``)."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser = argparse.ArgumentParser(add_help=False, formatter_class=_HelpFormatter)
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


class _Subcommand:
    """A sub-command's parser, made when argparse first uses it (the command was chosen, or its help asked for):
    the arguments ``_parser()`` gives it are kept until then. Making an ArgumentParser costs ~0.2 ms (argparse
    looks on disk for translations of its own words), so making all 22 took 4 ms of every command's start-up.
    argparse makes it through ``add_subparsers(parser_class=…)`` and reaches it only by its methods."""

    def __init__(self, **kwargs: Any) -> None:  # noqa: ANN401  # ArgumentParser's keyword arguments
        self._kwargs = kwargs
        self._arguments: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self._parser: argparse.ArgumentParser | None = None
        self.epilog: str | None = None

    def add_argument(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401  # as ArgumentParser's
        self._arguments.append((args, kwargs))

    def made(self) -> argparse.ArgumentParser:
        """The parser itself, made on the first call."""
        if self._parser is None:
            self._parser = argparse.ArgumentParser(**self._kwargs, epilog=self.epilog)
            for args, kwargs in self._arguments:
                self._parser.add_argument(*args, **kwargs)
        return self._parser

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401  # parse_known_args, format_help, …: the parser's
        return getattr(self.made(), name)


def _gpu_option(parser: _Subcommand, required: bool = False, many: bool = True) -> None:
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
        formatter_class=_RawDescriptionHelpFormatter,
        parents=[_common(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"smimig {smimig.__version__}")
    commands = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
        parser_class=_Subcommand,  # type: ignore[type-var]  # stands in for the ArgumentParser it makes
    )
    common = _common(suppress=True)

    def command(name: str, help_text: str) -> _Subcommand:
        parents = [common]  # ArgumentParser's own: the options every sub-command takes
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=parents,  # type: ignore[arg-type]
            formatter_class=_HelpFormatter,
        )

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

    sub = command("destroy-ci", "destroy compute instances (nvidia-smi mig -dci); none to destroy is fine")
    _gpu_option(sub)
    sub.add_argument("--gi", type=_ids, metavar="GI[,GI…]")
    sub.add_argument("--ci", type=_ids, metavar="CI[,CI…]")
    sub.add_argument(
        "--force", action="store_true", help="destroy them even if processes run on them or leases hold them"
    )

    sub = command(
        "destroy-gi", "destroy GPU instances, their compute instances first (nvidia-smi mig -dci, -dgi); none is fine"
    )
    _gpu_option(sub)
    sub.add_argument("--gi", type=_ids, metavar="GI[,GI…]")
    sub.add_argument(
        "--force", action="store_true", help="destroy them even if processes run on them or leases hold them"
    )

    for name, help_text in (
        ("plan", "show the steps that would bring the GPUs to a layout file"),
        ("apply", "bring the GPUs to a layout file (only the steps needed; again: no change)"),
    ):
        sub = command(name, help_text)
        sub.add_argument("file", type=_path, help="a layout (YAML or JSON), or a mig-parted config with --config")
        sub.add_argument("--config", metavar="NAME", help="which config of a mig-parted file")
        if name == "apply":
            sub.add_argument("--dry-run", action="store_true", help="plan only, change nothing")
            sub.add_argument(
                "--force",
                action="store_true",
                help="destroy instances even if processes run on them or leases hold them",
            )
    sub = command("export", "the current state as a layout file (apply it to get back here)")
    sub.add_argument("--format", choices=("yaml", "json", "mig-parted", "gpu-operator"), default="yaml")
    sub.add_argument("--name", default="smimig", help="the config name, with --format mig-parted or gpu-operator")
    sub = command("doctor", "pre-flight check: driver, MIG mode and why it is pending, rights, parsing")
    sub.add_argument("--save-dir", type=_path, metavar="DIR", help="where to save output smimig cannot parse")
    command("leases", "the leases in the ledger: each device, its holder, and whether the holder still runs")
    command("reclaim", "destroy the instances of orphaned leases (their holders no longer run), identity checked")
    sub = command("lease", "run a command on a fresh MIG device, destroyed when the command ends")
    sub.add_argument("profile", metavar="PROFILE", help="GPU instance profile, e.g. 1g.10gb")
    _gpu_option(sub, many=False)
    sub.add_argument("--ci-profile", metavar="CI", help="compute instance profile (default: full size)")
    sub.epilog = "the command comes last, after --: smimig lease 1g.10gb -i 1 -- python train.py"
    sub = command("run", "run a command on MIG devices with CUDA_VISIBLE_DEVICES set")
    sub.add_argument("--each", action="store_true", required=True, help="one process per MIG device")
    _gpu_option(sub)
    sub.epilog = "the command comes last, after --: smimig run --each -i 0 -- python train.py"
    return parser


def _client(options: argparse.Namespace) -> smimig.Smi:
    if options.simulate is not None:  # "" too: an unset variable in a script must not reach real GPUs
        from smimig.sim import simulated_node  # noqa: PLC0415  # only when simulating

        if options.host:
            raise ValueError("--simulate and --host name two different nodes: give one")
        try:
            runner = simulated_node(options.simulate, reset=options.reset_simulation)
        except ValueError as error:
            raise ValueError(f"{error} (smimig --simulate list describes the models)") from None
        return smimig.Smi(runner=runner)
    if options.reset_simulation:
        raise ValueError("--reset-simulation goes with --simulate")
    if options.host:
        user, _, rest = options.host.rpartition("@")
        host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
        if rest.count(":") == 1 and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"bad --host {options.host!r}: the port after ':' is a number from 1 to 65535")
        remote = smimig.SshRunner(
            host,
            user=user or None,
            port=int(port) if port else None,
            options=shlex.split(os.environ.get("SMIMIG_SSH_OPTIONS", "")),
            executable=os.environ.get("SMIMIG_NVIDIA_SMI", "nvidia-smi"),
            sudo=options.sudo,
        )
        return smimig.Smi(runner=remote)
    return smimig.Smi(sudo=options.sudo)


def _plain(value: object) -> object:
    """Any result as JSON data: attrs models as objects, mappings with string keys, enums by value, the rest
    (paths, exceptions) as their text. Nothing a command returns can make --json fail."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if attrs.has(type(value)):  # private fields are views of the others (a GPU's slice map), not data
        fields = attrs.asdict(value, recurse=False).items()  # type: ignore[arg-type]
        return {key: _plain(item) for key, item in fields if not key.startswith("_")}
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    return str(value)


class _Text(str):
    """Already formatted output (export): printed as it is, with or without --json."""

    __slots__ = ()


class _Nothing(_Text):
    """A note that there was nothing to do: ``[]`` with --json."""

    __slots__ = ()


def _show(result: object, as_json: bool, out: TextIO) -> None:
    if isinstance(result, _Nothing) and as_json:
        out.write("[]\n")
    elif isinstance(result, _Text):
        out.write(f"{result}\n")
    elif as_json:
        import json  # noqa: PLC0415  # only with --json

        json.dump(_plain(result), out, indent=2)
        out.write("\n")
    else:
        out.write(f"{result}\n")


# The changes the command line makes itself, each under the node lock (lease and apply take it themselves).
_CHANGES = ("mode", "create-gi", "create-ci", "destroy-ci", "destroy-gi")


def _leases_text(listing: smimig.Listing[Any]) -> _Text:
    lines = [str(record) for record in listing] or ["(no leases)"]
    return _Text("\n".join([*lines, *(f"!!  {problem}" for problem in listing.warnings)]))


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
        "destroy-ci": lambda: _destroy_cis(smi, gpu, options.gi, options.ci, force=options.force),
        "destroy-gi": lambda: _destroy_gis(smi, gpu, options.gi, force=options.force),
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
        if options.format == "gpu-operator":  # a ConfigMap for NVIDIA's GPU operator, and the node label to set
            return _Text(layout.to_gpu_operator_yaml(options.name).rstrip("\n"))
        return _Text(layout.to_yaml().rstrip("\n"))
    if command == "leases":
        listing = smi.leases()
        return {"leases": _plain(listing), "ignored": list(listing.warnings)} if options.json else _leases_text(listing)
    if command == "reclaim":
        report = smi.reclaim()
        return report if options.json else _Text(str(report))
    if command in _CHANGES:
        with smi.node_lock():
            return actions[command]()
    if command in ("profiles", "placements"):
        compute = options.ci or options.gi is not None
        if command == "profiles":
            return smi.list_ci_profiles(gpu, options.gi) if compute else smi.list_gi_profiles(gpu)
        return smi.list_ci_placements(gpu, options.gi) if compute else smi.list_gi_placements(gpu)
    return actions[command]()


def _in_the_way(smi: smimig.Smi, targets: set[tuple[int, int, int | None]]) -> smimig.InstanceBusy | None:
    """Processes running on, or live leases holding, the (GPU, GI, CI or None for all) ``targets``."""
    from smimig.ledger import live_leases  # noqa: PLC0415  # the ledger is read only when something would go

    def hit(gpu: int, gi: int | None, ci: int | None) -> bool:
        return any((gpu, gi) == (g, i) and (c is None or ci is None or c == ci) for g, i, c in targets)

    processes = [p for p in smi.list_processes() if p.gi is not None and hit(p.gpu, p.gi, p.ci)]
    leases = [record for record in live_leases(smi) if record.gi is not None and hit(record.gpu, record.gi, record.ci)]
    return smimig.InstanceBusy(processes, leases) if processes or leases else None


def _destroy_cis(
    smi: smimig.Smi, gpu: list[int] | None, gi: list[int] | None, ci: list[int] | None, *, force: bool
) -> object:
    """``destroy-ci``, as ``rm -f``: nothing to destroy is success (with a note); busy or leased ones are refused
    without --force."""
    targets = [c for c in smi.list_cis(gpu, gi) if ci is None or c.id in ci]
    if not targets:
        return _Nothing("nothing to destroy: no compute instance matches")
    busy = None if force else _in_the_way(smi, {(c.gpu, c.gi, c.id) for c in targets})
    if busy is not None:
        raise busy
    return smi.destroy_ci(gpu, gi, ci)


def _destroy_gis(smi: smimig.Smi, gpu: list[int] | None, gi: list[int] | None, *, force: bool) -> object:
    """``destroy-gi``: the GPU instances' compute instances first, then the GPU instances; nothing to destroy
    is success (with a note); busy or leased ones are refused without --force."""
    targets = [g for g in smi.list_gis(gpu) if gi is None or g.id in gi]
    if not targets:
        return _Nothing("nothing to destroy: no GPU instance matches")
    busy = None if force else _in_the_way(smi, {(g.gpu, g.id, None) for g in targets})
    if busy is not None:
        raise busy
    cis: list[DestroyedComputeInstance] = []
    gis: list[DestroyedGpuInstance] = []
    for index in sorted({g.gpu for g in targets}):
        own = [g.id for g in targets if g.gpu == index]
        if any(c.gi in own for c in smi.list_cis(index)):
            cis.extend(smi.destroy_ci(index, own))
        gis.extend(smi.destroy_gi(index, own))
    return _Teardown(compute_instances=smimig.Listing(cis), gpu_instances=smimig.Listing(gis))


class _Teardown(dict[str, object]):
    """What ``destroy-gi`` destroyed: the compute instances in the GPU instances first, then those; with --json
    one object of the two lists. A dict, not an attrs class: no class for every command to make at start-up."""

    def __str__(self) -> str:
        compute_instances, gpu_instances = self["compute_instances"], self["gpu_instances"]
        parts = [str(compute_instances)] if compute_instances else []
        return "\n\n".join([*parts, str(gpu_instances)])


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command line; return its exit code (:class:`~smimig.exit_codes.ExitCode`, or a job's own)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        # SIGTERM/SIGHUP are cleaned up after as after Ctrl-C; LeaseWarning prints as a smimig: line.
        with interrupts.raising(signal.SIGTERM, signal.SIGHUP), _warnings_to(err):
            return _command(argv, out, err)
    except BrokenPipeError:  # the reader of our output left: main_exit deals with it
        raise
    except (Exception, KeyboardInterrupt, Terminated) as error:  # every command's errors, by the one table
        code, lines = explain(error, argv)
        err.write("".join(f"{line}\n" for line in lines))
        if "--json" in _split_job(sys.argv[1:] if argv is None else argv)[0]:  # a script reads stdout
            failure = {"type": type(error).__name__, "message": "\n".join(lines), "exit_code": int(code)}
            if not isinstance(error, (KeyboardInterrupt, Terminated)):
                failure["details"] = _plain(_error_details(error))
            import json  # noqa: PLC0415  # only with --json

            json.dump({"error": failure}, out, indent=2)
            out.write("\n")
        return code


def _error_details(error: BaseException) -> dict[str, object]:
    """What an error carries for a script: its public attributes (the command, exit code, stdout …)."""
    return {
        name: value for name, value in vars(error).items() if not name.startswith("_") and name not in ("text", "args")
    }


@contextlib.contextmanager
def _warnings_to(err: TextIO) -> Iterator[None]:
    """A lease's warnings (a release that destroyed nothing, an orphan reclaimed) as ``smimig:`` lines."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        previous = warnings.showwarning

        def show(  # noqa: PLR0917  # warnings.showwarning's own signature
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            if category.__name__ == "LeaseWarning":
                err.write(f"smimig: {message}\n")
            else:
                previous(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def _split_job(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """smimig's own arguments, and the job's command after the first ``--`` (None when there is none), so
    options may come anywhere before it: ``lease 1g.10gb -i 1 -- CMD`` as well as ``lease -i 1 1g.10gb -- CMD``."""
    arguments = list(argv)
    if "--" not in arguments:
        return arguments, None
    at = arguments.index("--")
    return arguments[:at], arguments[at + 1 :]


def _command(argv: Sequence[str] | None, out: TextIO, err: TextIO) -> int:
    parser = _parser()
    own, job = _split_job(sys.argv[1:] if argv is None else argv)
    options = parser.parse_args(own)  # a usage error exits 2 from argparse itself
    options.cmd = job
    if job is not None and options.command not in ("lease", "run"):
        parser.error(f"'--' and a command after it go with lease and run --each, not {options.command or 'status'}")
    if (getattr(options, "simulate", None) or "").lower() in ("list", "help"):
        from smimig.sim.catalog import describe_models  # noqa: PLC0415  # only when asked

        out.write(describe_models())
        return ExitCode.OK
    if options.command == "run":
        return _run_each(options, parser, out)
    if options.command == "lease":
        return _lease(options, parser, err)
    if options.command == "doctor":
        return _doctor(options, out)
    _show(_run(options, _client(options)), options.json, out)
    return ExitCode.OK


def _job_command(options: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    command: list[str] | None = options.cmd
    if not command:
        parser.error(f"{'run --each' if options.command == 'run' else options.command} needs a command after --")
    return command


def _run_each(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    """The first non-zero exit code of the jobs (128+N for a job killed by signal N), else 0; 128+N when smimig
    itself received signal N (forwarded to the jobs, which it then waited for)."""
    from smimig.jobs import JobGroup  # noqa: PLC0415  # only the job commands start a user's process

    command = _job_command(options, parser)
    devices = _client(options).devices(options.gpu)
    if not devices:
        raise ValueError("no MIG devices to run on")
    with JobGroup() as jobs:
        for device in devices:
            if jobs.received is not None:  # stopped while starting them: start no more
                break
            jobs.start(command, smimig.device_env(device))
        returncodes = jobs.wait()
    codes = []
    for device, returncode in zip(devices, returncodes):
        code = job_exit_code(returncode)
        killed = f" (killed by {_signal_name(-returncode)})" if returncode < 0 else ""
        out.write(f"GPU {device.gpu} GI {device.gi} CI {device.ci} {device.uuid}: exit {code}{killed}\n")
        codes.append(code)
    if jobs.received is not None:
        return 128 + jobs.received
    return next((code for code in codes if code), ExitCode.OK)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _doctor(options: argparse.Namespace, out: TextIO) -> int:
    """0 when healthy; 1 when the report has something that needs attention (its answer, not a bug)."""
    report = _client(options).doctor(save_dir=options.save_dir)
    _show(report if options.json else _Text(str(report)), options.json, out)
    return ExitCode.OK if report.healthy else ExitCode.UNEXPECTED


def _lease(options: argparse.Namespace, parser: argparse.ArgumentParser, err: TextIO) -> int:
    """The job's own exit code (128+N when signal N killed it); 128+N when smimig itself received signal N
    while the job ran or its device was released (forwarded to the job, which it waited for, then released)."""
    from smimig.jobs import JobGroup  # noqa: PLC0415  # only the job commands start a user's process

    command = _job_command(options, parser)
    smi = _client(options)
    codes: list[int] = []
    with JobGroup() as jobs:  # before the job starts, a signal interrupts the lease as it would anyway
        try:
            with smi.lease(options.profile, options.gpu, ci_profile=options.ci_profile) as held:
                err.write(
                    f"smimig: leased {held.profile_name} on GPU {held.gpu} (GI {held.gi}, CI {held.ci}): {held.uuid}\n"
                )
                job = jobs.start(command, held.env)
                _record_job(smi, held, job.pid, err)
                codes.extend(job_exit_code(returncode) for returncode in jobs.wait())
        except LeaseError as error:
            if codes and error.left is not None:  # the job's own code would be lost behind exit code 5
                err.write(f"smimig: the command exited with code {codes[0]}; then releasing its device failed\n")
            raise
    if jobs.received is not None:
        err.write(f"smimig: {_received(jobs.received)}: passed on to the command, which ended; device released.\n")
        return 128 + jobs.received
    return codes[0]


def _record_job(smi: smimig.Smi, held: smimig.Lease, pid: int, err: TextIO) -> None:
    """Name the job in the lease's ledger entry (the lease then outlives a SIGKILL of smimig while the job
    runs); a ledger that cannot take it costs a warning, not the job."""
    from smimig.leasing import record_job  # noqa: PLC0415  # loaded with the lease already

    try:
        record_job(held, pid, smi=smi)
    except SmimigError as error:
        err.write(f"smimig: warning: the lease's ledger entry does not name the command ({error})\n")


def _received(number: int) -> str:
    return "interrupted" if number == signal.SIGINT else f"stopped by {_signal_name(number)}"


def main_exit() -> None:
    """The console script's entry point."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:  # closed by the caller (smimig gis >&-): written nowhere, as to a reader gone
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115  # for the process's life
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # "smimig gis | head": the reader left, which is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_OK
    except (KeyboardInterrupt, Terminated) as interruption:  # after main's own handler, or while flushing
        code, lines = explain(interruption)
        sys.stderr.write("".join(f"{line}\n" for line in lines))
    raise SystemExit(code)
