"""Redis storage: key formats, the Lua script registry and connections."""
