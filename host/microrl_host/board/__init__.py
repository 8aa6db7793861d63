"""Talking to a board: serial transport, protocol link, virtual board, deploy, mpy, profiles."""
