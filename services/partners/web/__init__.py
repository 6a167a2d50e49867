"""The partner web inbox: server-rendered pages for partners without an IT team. Sign-in
by email link, the offers and their packets, answers and outcomes through the same use
cases as the API (``service_layer/offers.py``), and the organisation's services."""
