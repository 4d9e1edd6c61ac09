"""Generated outputs: creators and their plans, the outputs themselves, and usage events."""
