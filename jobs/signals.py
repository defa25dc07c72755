"""What the job tracker announces, so the apps above it can act without jobs knowing them.

jobs is a bottom layer: registry, features and batch report their work to it, and it imports
none of them. Where a job's kind has state of its own (batch scoring's chunks, parts and staged
input), the owning app connects a receiver in its `AppConfig.ready()`.
"""

from django.dispatch import Signal

# Sent inside `job_cancel`'s transaction once a job is marked cancelled; `job` is the Job.
# Receivers stop the work of their kind (e.g. batch marks queued chunks cancelled).
job_cancelled = Signal()

# Sent by `job_files_remove` for a failed or cancelled job; `job` is the Job. Receivers delete
# what work of their kind left in storage and return how many files they deleted.
job_leftovers_remove = Signal()

# Sent by the periodic expiry; receivers return the ids of failed or cancelled jobs of their kind
# that still hold files in storage (each then gets `job_leftovers_remove`).
job_leftovers_find = Signal()

# Sent when a job's page or progress fragment is drawn; `job` is the Job. Receivers return a
# dict of extra template context for jobs of their kind (e.g. batch's chunk counts), or None.
job_page_context = Signal()
