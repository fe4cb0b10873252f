"""ALİM core: settings, errors, models, the knowledge index and the engine that runs one turn.

Importing this package is cheap: nothing here opens files, sockets or models at import time.
"""

__version__ = "0.1.0"
