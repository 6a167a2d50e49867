"""The risk domain: plain Python, no I/O, tested without a database."""
