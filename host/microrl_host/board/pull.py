"""`microrl pull`: fetch the trained actor and the checkpoint slots from a board to the host.

The serve loop lists its learner files (``files``: size and CRC-32 of the weights file, actor.bin
unless the settings name another, and of ckpt0.bin and ckpt1.bin); each present one is read with
``read_file`` (base64 chunks, each CRC-checked, then the whole file against the listing), its
format checked (a weights blob's header and size; a checkpoint's header and payload CRC, as the
board checks it before it loads one) and written to ``--out`` atomically. A checkpoint slot the
board does not have, or one it would skip (a write cut by a power loss), is reported; a missing
actor is an error (exit 1).
"""

import json
import os
import sys
import zlib
from pathlib import Path

from microrl_host.board import blobs, deploy
from microrl_host.board.link import BoardLink
from microrl_host.board.transport import LinkError, PortUnavailable, ProtocolViolation, \
    SerialTransport

SLOTS = ("ckpt0.bin", "ckpt1.bin")


def describe(name, data, is_weights):
    """(one line about a fetched file, its format check dict or None when it would not load)."""
    try:
        if is_weights:
            sizes, _, float_bytes = blobs.parse_weights(data)
            return ("actor %s, float%d" % ("x".join(map(str, sizes)), 8 * float_bytes),
                    {"sizes": list(sizes), "float_bytes": float_bytes})
        info = blobs.check_checkpoint(data)
        return ("checkpoint %d at step %d%s" % (info["seq"], info["steps"],
                                                 ", with the replay buffer" if info["replay"]
                                                 else ""), info)
    except blobs.FormatError as e:
        if is_weights:
            raise ProtocolViolation("%s on the board is not a weights file: %s" % (name, e))
        return "not loadable, the board skips it: %s" % e, None


def pull(link, out_dir, log=print):
    """Fetch the learner's files into ``out_dir``; returns the summary dict."""
    listing = link.files()
    weights = listing["weights"]
    out_dir = Path(out_dir)
    summary = {"out": str(out_dir), "weights": weights, "files": {}, "missing": []}
    for name in (weights,) + SLOTS:
        expected = listing["files"].get(name)
        if expected is None:
            summary["missing"].append(name)
            continue
        data = link.read_file(name)
        if [len(data), zlib.crc32(data)] != expected:
            raise ProtocolViolation("%s changed on the board while it was read (%d bytes now, "
                                    "%d listed)" % (name, len(data), expected[0]))
        text, info = describe(name, data, name == weights)
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / (name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, out_dir / name)
        summary["files"][name] = {"path": str(out_dir / name), "bytes": len(data),
                                  "crc32": expected[1], "format": info}
        log("%s: %d bytes, CRC32 %08x checked; %s" % (name, len(data), expected[1], text))
    return summary


def add_arguments(parser):
    parser.add_argument("--port", default=None, help="serial port (default: the first USB board)")
    parser.add_argument("--out", default=None,
                        help="output directory (default runs/board/PROFILE, the profile the "
                             "board was deployed with, as `microrl train` writes)")
    parser.add_argument("--timeout-s", type=float, default=60.0,
                        help="longest the board may stay silent, in seconds (default 60)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args):
    def log(text):
        print(text, file=sys.stderr if args.json else sys.stdout)
    try:
        port = args.port or deploy.find_port()
        with BoardLink(SerialTransport(port), timeout_s=args.timeout_s) as link:
            hello = link.connect()
            if "files" not in hello.get("commands", ()):
                raise ProtocolViolation("the board's serve loop has no files command (an older "
                                        "microrl): deploy this version first")
            out_dir = Path(args.out or Path("runs") / "board" / (hello.get("board") or "board"))
            summary = pull(link, out_dir, log)
    except PortUnavailable as e:
        print("microrl pull: %s" % e, file=sys.stderr)
        return 2
    except (LinkError, deploy.DeployError) as e:
        print("microrl pull: %s" % str(e).strip().splitlines()[0], file=sys.stderr)
        return 1
    no_actor = summary["weights"] in summary["missing"]
    if summary["missing"]:
        log("missing on the board: %s%s" % (", ".join(summary["missing"]), " (a run checkpoints "
                                             "with checkpoint_every > 0)" if not no_actor else ""))
    if args.json:
        print(json.dumps(summary))
    if no_actor:
        print("microrl pull: the board has no %s: `microrl train` saves it when a run ends"
              % summary["weights"], file=sys.stderr)
        return 1
    return 0
