"""Indicators: the reference tables from the policy, the integrity checks and the SQL models built over staging."""
