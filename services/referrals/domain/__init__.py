"""The referrals domain: plain Python, no I/O, tested without a database."""
