"""kopf handlers: one module per kind (trainjob, compressjob, modelservice) describes its kind,
and `kinds.register` gives every kind the same handlers. What they share, one job a module:
bodies (plain data, the typed resource), indexes, apply (children), restore (children deleted or
edited by hand), status (the rules of a status write), finished (a finished job's end) and timers
(status timers without kopf's finalizer)."""
