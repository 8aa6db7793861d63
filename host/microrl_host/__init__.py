"""Host side of microrl: the numpy mirror, the board link, benchmarks and the desktop simulator."""
