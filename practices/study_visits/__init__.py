"""Study-visit reports: written by a professional after a visit abroad, reviewed and published
by the National Point, and sent to the bodies they are addressed to.

They name their participants (personal data, kept on this node), so they have a workflow,
an audit and an export of their own beside the practice database.
"""

# The mails to a published report's addressees: its outbox job and sweep, registered with the
# study-visit reports wherever they are loaded (the server, the worker, the CLI).
from practices.study_visits import notify as notify
