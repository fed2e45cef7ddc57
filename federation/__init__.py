"""Signed sync: keys, canonical JSON, the shareable projection, the personal-data gate, feeds."""
