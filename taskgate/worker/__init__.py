"""arq workers: upstream calls, task finalisation, webhook delivery, periodic jobs."""
