"""The partners domain: plain Python, no I/O, tested without a database."""
