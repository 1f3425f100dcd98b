"""The HTTP API (aiohttp): GoAPI-compatible task and account API, admin API, metrics, health."""
