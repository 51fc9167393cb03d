"""Command line: `roomwire run` (development), `roomwire serve` (production processes)."""
