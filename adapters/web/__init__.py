"""The office console and the public progress page: server-rendered pages (Jinja2, htmx) served
beside the HTTP API by the same process, signing in with the API's tokens (see docs/console.md).
"""

from .context import ConsoleOptions, Pages
from .mount import STATIC_PATH, mount_console
from .ratings import EVENT_TYPE, RatingLimit
from .sessions import MemorySessionStore, SQLSessionStore

__all__ = [
    "EVENT_TYPE",
    "STATIC_PATH",
    "ConsoleOptions",
    "MemorySessionStore",
    "Pages",
    "RatingLimit",
    "SQLSessionStore",
    "mount_console",
]
