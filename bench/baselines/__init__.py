"""Other systems built for the same job, run against the same simulator, faults and oracle."""
