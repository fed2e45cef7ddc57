"""The kernel: what every domain may use. It imports no domain and no composition module."""
