"""Services: the database work behind every shell (HTTP, Slack, CLI, scheduler).

Each takes a :class:`incidentbot.db.Database` and plain values, and returns plain values.
"""
