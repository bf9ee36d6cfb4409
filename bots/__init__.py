"""Every I/O edge of nav-rewards: the command line, the aiohttp server, platform adapters, the REST
API and the scheduler. This is the composition root: the only layer that wires things together."""
