"""What rollout tells the layers above it, without knowing them.

- `evaluation_finished`: sent once an evaluation has succeeded and its metrics are committed,
  with `evaluation` (the Evaluation; its `version` and `dataset` are loaded). Monitoring profiles
  the dataset's rows as the version's reference. Receivers must not raise: the evaluation is
  done either way.
"""

from django.dispatch import Signal

evaluation_finished = Signal()
