"""The learner's files on flash for the host (``microrl train``, ``microrl pull``): sizes and
CRC-32s read through one small buffer, and a file sent in base64 chunks like ``get_weights``.
Imported by the serve loop's ``files`` and ``read_file`` commands only, so it costs no heap before.
"""

import os

from .weights import crc32, encode_chunk

_BUF_BYTES = 512


def _pieces(f, buf):
    """The rest of open file ``f`` read through ``buf``: ``buf`` itself each time, or a view of
    its first bytes at the end."""
    view = memoryview(buf)
    while True:
        n = f.readinto(buf)
        if not n:
            return
        yield buf if n == len(buf) else view[:n]


def file_crc(path, buf):
    """[bytes, crc32] of the file at ``path``, read through ``buf``; None when it cannot be
    opened (it does not exist)."""
    try:
        f = open(path, "rb")
    except OSError:
        return None
    size = 0
    crc = 0
    with f:
        for piece in _pieces(f, buf):
            crc = crc32(piece, crc)
            size += len(piece)
    return [size, crc]


def package_dir():
    """The folder the microrl package was imported from; None when it is frozen into the
    firmware (not a folder on the filesystem)."""
    import microrl

    path = getattr(microrl, "__path__", None)
    if isinstance(path, (list, tuple)):
        path = path[0] if path else None
    if path is None:
        name = getattr(microrl, "__file__", None)
        if not name:
            return None
        path = name.rsplit("/", 1)[0] if "/" in name else "."
    try:
        os.listdir(path)
    except OSError:
        return None
    return path


def listing(names):
    """{"files": {name: [bytes, crc32] or None (missing)}, "package": {module file: [bytes,
    crc32]} of the package folder, or None when the package is frozen}."""
    buf = bytearray(_BUF_BYTES)
    files = {}
    for name in names:
        files[name] = file_crc(name, buf)
    package = None
    folder = package_dir()
    if folder is not None:
        package = {}
        for entry in os.listdir(folder):
            package[entry] = file_crc(folder + "/" + entry, buf)
    return {"files": files, "package": package}


def send(path, chunk_bytes, out, request_id):
    """Send the file's bytes as ``chunk`` events (``index``, ``offset``, ``data`` base64,
    ``crc32``) on channel ``out``; returns (bytes, chunks, crc32 of the file), or None when the
    file cannot be opened."""
    try:
        f = open(path, "rb")
    except OSError:
        return None
    crc = 0
    offset = 0
    index = 0
    with f:
        for piece in _pieces(f, bytearray(chunk_bytes)):
            text, chunk_crc = encode_chunk(piece)
            out.event(request_id, "chunk", {"index": index, "offset": offset, "data": text,
                                            "crc32": chunk_crc})
            crc = crc32(piece, crc)
            offset += len(piece)
            index += 1
    return offset, index, crc
