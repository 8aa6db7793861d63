# The microrl package for a MicroPython manifest, micropython-lib style. A firmware build that
# freezes microrl adds one line to its own manifest:
#   include("<microrl>/manifest.py")
# or registers this checkout as a library (the folder must be named microrl, as `git clone` names it)
#   add_library("microrl", "<folder holding the microrl checkout>")
#   require("microrl", library="microrl")
# firmware/manifest.py is a whole-board manifest built on this one. The version is read from
# device/microrl/__init__.py, its one home; a manifest runs with its own folder as the working one.


def _version(path="device/microrl/__init__.py"):
    with open(path) as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=", 1)[1].strip().strip("\"'")
    raise ValueError("%s sets no __version__" % path)


metadata(version=_version(), description="TD3 reinforcement learning that trains on the board")
package("microrl", base_path="device")
