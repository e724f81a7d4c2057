"""Commands that span every check: check, history, config."""
