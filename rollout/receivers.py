"""The promotion gate's answers to the registry's signals."""
