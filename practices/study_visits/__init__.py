"""Study-visit reports: written by a professional after a visit abroad, reviewed and published
by the National Point, and sent to the bodies they are addressed to.

They name their participants (personal data, kept on this node), so they have a workflow,
an audit and an export of their own beside the practice database.
"""
