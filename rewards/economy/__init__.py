"""The recognition economy: what people may give (the giving allowance) and spend."""
