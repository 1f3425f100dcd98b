"""The task lifecycle: create (freeze + queue), read, cancel, and the worker's fenced updates."""
