"""Everything that stands in for the world on one machine: brokers, link faults, scenes, pilot."""
