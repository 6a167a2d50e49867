"""Referrals service.

Councils and partners refer residents here: the system of record for residents,
cases, consent, lifecycle and timeline.
"""
