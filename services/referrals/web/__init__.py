"""The council's reporting pages: server-rendered HTML of the outcome figures, rule
evaluation and reach for its managers and information governance, with SVG charts drawn on
the server (``charts.py``) and CSV of every table; the same use cases as the API's reports."""
