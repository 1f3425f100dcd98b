"""`taskgate dev` and `taskgate demo`: every role in one process, the demo's run, workload and report."""
