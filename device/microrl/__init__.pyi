# Type stubs of microrl's public device API, for editors; the board never reads them.
__version__: str
