"""The practice database (practices, policies, tools, training kits, guides), study-visit
reports, and search over them."""
