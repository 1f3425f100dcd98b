"""The operator's tools: `taskgate admin ...` and the task tools the admin API shares."""
