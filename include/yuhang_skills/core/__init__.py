"""Settings, policy and the warehouse: what every stage of the pipeline shares."""
