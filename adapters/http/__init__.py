"""The HTTP API: a FastAPI application over an engine, bearer tokens, and its commands."""

from .app import create_app
from .auth import MemoryTokenStore, SQLTokenStore, TokenInfo, TokenStore, hash_token
from .commands import app_from_env, register_cli, served_app
from .problems import status_of

__all__ = [
    "MemoryTokenStore",
    "SQLTokenStore",
    "TokenInfo",
    "TokenStore",
    "app_from_env",
    "create_app",
    "hash_token",
    "register_cli",
    "served_app",
    "status_of",
]
