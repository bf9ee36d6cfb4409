"""The recognition economy: what members may give (the allowance) and spend (the rewards shop)."""
