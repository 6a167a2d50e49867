"""Risk service.

Flags residents at risk of crisis with simple, transparent, versioned rules over
data signals.
"""
