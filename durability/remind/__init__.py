"""Customer backup reminders: customers, the pure planner, the outbox, mail and links."""
