"""The catalogue: plans, units, models, task types, prices, input models, the prompt checker."""
