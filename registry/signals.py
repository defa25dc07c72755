"""What the registry tells the layers above it, without knowing them.

- `alias_moving`: sent by `services.alias_set` and `services.alias_rollback` before an alias
  points at a different version, with `model`, `alias`, `version` (the ModelVersion it will
  point at), `previous` (the one it points at now, or None), `user`, `reason` (the caller's
  override reason, or "") and `kind` ("set" or "rollback"). A receiver refuses the move by
  raising an `ApplicationError` (the promotion gate answers 409 with the rules that failed); it
  may return `{"override": True}` when it let the move through only because of the reason, and
  the audit trail then records an override.
- `version_ready`: sent once a version's validation has made it ready (after the commit), with
  `version`.
"""

from django.dispatch import Signal

alias_moving = Signal()
version_ready = Signal()
