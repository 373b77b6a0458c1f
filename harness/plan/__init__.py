"""Layer: plan. From a config to the cells and units of a sweep, and what they will cost:
the estimate, the machine's crowding, earlier runs' noise, memory and disk, the input images."""
