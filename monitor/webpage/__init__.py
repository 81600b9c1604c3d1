"""The status page: statuspage.py (StatusPage: / and /api/status), status.py (the JSON dict),
page.py (the HTML frame), style.py (the stylesheet). The jobs' parts come from their cards."""
