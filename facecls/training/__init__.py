"""Training one variant: its config, the loop and its steps, augmentation, data-parallel runs."""
