"""kopf handlers, one module per kind; each parses the CR, calls pure functions and sets status."""
