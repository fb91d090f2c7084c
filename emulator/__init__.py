"""livepeer-emulator: a local, faithful emulator of the Livepeer Studio Assets API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Settings", "__version__", "create_app"]

if TYPE_CHECKING:
    from emulator.app import create_app
    from emulator.settings import Settings


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package (e.g. by the pytest plugin) costs nothing.
    if name == "create_app":
        from emulator.app import create_app

        return create_app
    if name == "Settings":
        from emulator.settings import Settings

        return Settings
    raise AttributeError(name)
