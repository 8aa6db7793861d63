"""Shared pieces of the board link tests: a small learner, a deployed virtual board, the CLI."""

import subprocess
import sys
from contextlib import contextmanager

from microrl_host.board import deploy
from microrl_host.board.link import BoardLink
from microrl_host.board.transport import VirtualTransport
from microrl_host.board.vboard import VirtualBoard, profile_or_defaults

# Small enough that the pure-Python learner under `micropython` answers in milliseconds.
SMALL = {"actor_hidden": [8, 8], "critic_hidden": [8, 8], "batch_size": 8,
         "buffer_capacity": 1000, "learning_starts": 100, "eval_episodes": 1}
PROFILE = profile_or_defaults("unix")
HEAP_BYTES = 1024 * 1024


@contextmanager
def deployed_board(flash_dir=None, compiled=False, float_bits=None):
    """A virtual board with the learner deployed by mpremote and serving."""
    board = VirtualBoard(HEAP_BYTES, flash_dir=flash_dir, float_bits=float_bits).start()
    try:
        deploy.deploy(board.port, PROFILE, compiled=compiled, config=SMALL, log=lambda text: None)
        yield board
    finally:
        board.stop()


@contextmanager
def link_to(board, timeout_s=60.0):
    link = BoardLink(VirtualTransport(board=board), timeout_s=timeout_s)
    try:
        link.connect()
        yield link
    finally:
        link.close()


def cli_argv(command, *args):
    """argv running one `microrl COMMAND` the way cli.py does, without importing the others."""
    code = ("import argparse, importlib, sys\n"
            "from microrl_host.cli import COMMANDS\n"
            "module = importlib.import_module('microrl_host.' + COMMANDS[sys.argv[1]][0])\n"
            "parser = argparse.ArgumentParser(prog='microrl ' + sys.argv[1])\n"
            "module.add_arguments(parser)\n"
            "sys.exit(module.run(parser.parse_args(sys.argv[2:])))\n")
    return [sys.executable, "-c", code, command] + [str(a) for a in args]


def cli(command, *args, timeout_s=120, cwd=None):
    return subprocess.run(cli_argv(command, *args), capture_output=True, text=True,
                          timeout=timeout_s, cwd=cwd)
