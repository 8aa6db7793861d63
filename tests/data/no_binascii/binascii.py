# A build without binascii: the import fails as on such a board.
raise ImportError("no module named 'binascii'")
