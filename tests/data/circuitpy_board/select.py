# A build without select (no asyncio): the import fails as on such a board. MicroPython resolves
# the alias "uselect" to its own select before looking at sys.path, so that name gets a module
# without poll, which the line reader treats as a port that cannot poll.
import sys


class _NoPoll:
    pass


sys.modules["uselect"] = _NoPoll
raise ImportError("no module named 'select'")
