"""Start (or reuse) the demo's embedded PostgreSQL in .sqlmig-demo/ and print its URL.

The server keeps running after this script exits, so `make demo` can run twice on
the same database; `make demo-stop` stops it.
"""

import contextlib
import io
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")

import pgserver  # noqa: E402

data = Path(__file__).resolve().parent.parent / ".sqlmig-demo"
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    server = pgserver.get_server(data, cleanup_mode=None if "--stop" not in sys.argv else "stop")
if "--stop" in sys.argv:
    server.cleanup()
else:
    print(server.get_uri())
