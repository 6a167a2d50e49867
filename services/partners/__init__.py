"""Partners service.

The directory of support partners (Open Referral UK), their capacity, and the
routing of each case to the right partner.
"""
