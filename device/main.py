# Runs at boot: microrl.app reads microrl.json, then trains on its own or serves the board protocol.
from microrl.app import main

main()
