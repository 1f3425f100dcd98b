"""HTTP pieces every role shares: the response envelope and the SSRF guard."""
