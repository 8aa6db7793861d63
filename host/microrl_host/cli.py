"""The `microrl` command: a table of subcommands, each a small module with add_arguments and run.

Only the chosen command's module is imported (with numpy, pyserial and whatever else it needs):
`microrl --help` and `microrl --version` import none of them.
"""

import argparse
import importlib
import sys

# name: (module under microrl_host, e.g. "bench.learn", one-line help)
COMMANDS = {
    "sim": ("sim.sim", "train on the desktop: the numpy mirror or the device code under "
            "MicroPython"),
    "bench-learn": ("bench.learn", "learning benchmark of the numpy mirror over several seeds"),
    "bench-peers": ("bench.peers", "the bench-learn job on the mirror and on RLtools (tinyrl), "
                    "one run"),
    "bench-boards": ("bench.boards", "learning benchmark of every board profile on the mirror"),
    "bench-sumtree": ("bench.sumtree", "speed of the K-ary sum tree: device code and mirror"),
    "deploy": ("board.deploy", "copy the learner to a board (or virtual board) and check it "
               "answers"),
    "train": ("board.train", "train on a board: deploy if needed, follow the run, keep run.json "
              "and curve.png; Ctrl-C stops the board's training"),
    "pull": ("board.pull", "fetch the trained actor and the checkpoint slots from a board"),
    "bench": ("bench.runner", "run a benchmark suite on a board over serial and collect results"),
    "vboard": ("board.vboard", "start a virtual board: the unix micropython, or a QEMU "
               "microcontroller (--qemu), behind a pseudo-terminal"),
    "mpy": ("board.mpy", "compile the device package to .mpy files with mpy-cross"),
    "bench-parity": ("bench.parity", "learning with compressed replay, int8 acting, prioritized "
                     "replay, each against plain TD3, on the mirror"),
    "export": ("sim.export", "a trained actor as a standalone int8 policy.py for a board"),
    "bench-qactor": ("bench.qactor", "acting cost of the int8 actor against the float actor"),
    "bench-mcu": ("bench.mcu", "instructions and heap of every board profile on its QEMU "
                  "microcontroller core"),
    "bench-checkpoint": ("bench.checkpoint", "checkpoint slot bytes and the instructions of a "
                         "save and a load, every board profile on its QEMU core"),
}


def version():
    """The installed microrl-host version, e.g. "0.1.0"."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("microrl-host")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser(command=None):
    """The parser; only ``command``'s arguments are added (its module imported), the others
    are listed by name and help."""
    parser = argparse.ArgumentParser(
        prog="microrl", description="microrl: TD3 that learns on a MicroPython board; the host "
        "side: simulator, numpy mirror, board link and benchmarks")
    parser.add_argument("--version", action="version", version="microrl %s" % version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        if name == command:
            importlib.import_module("microrl_host." + module_name).add_arguments(p)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    module = importlib.import_module("microrl_host." + args._module)
    try:
        return module.run(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
