"""The node over HTTP: `aos serve` (MU, CU, SU and gateway endpoints on one origin, spec §2–§4)."""
