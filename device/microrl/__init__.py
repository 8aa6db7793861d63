"""microrl: TD3 that learns Pendulum-v1 on a microcontroller, in MicroPython or CircuitPython."""

__version__ = "0.1.0"
