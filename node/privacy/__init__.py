"""Data protection across every domain (the composition root's part): data-subject requests
(find, export, erase), retention, and the record of processing activities."""
