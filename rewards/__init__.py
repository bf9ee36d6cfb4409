"""nav-rewards core: the platform-neutral domain, catalogue, services and store.

Nothing in this package knows about chat platforms, aiohttp or the scheduler; the layers above
(`cards`, `dialogs`, `bots`) call into it.
"""

__version__ = "0.1.0"
