# Freezes the microrl package into a MicroPython firmware image, so its code runs from flash and
# costs no heap. Build a port with this file as its frozen manifest, e.g. for a Pico with ulab:
#   make -C ports/rp2 BOARD=RPI_PICO USER_C_MODULES=<ulab>/code/micropython.cmake \
#        FROZEN_MANIFEST=<microrl>/firmware/manifest.py
# See firmware/README.md. A board manifest of your own takes the package's manifest instead:
#   include("<microrl>/manifest.py")
include("$(PORT_DIR)/boards/manifest.py")  # keep the port's own frozen modules
include("../manifest.py")  # the microrl package (version and files), at the repository's root
