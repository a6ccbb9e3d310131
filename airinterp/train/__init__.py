"""Training: the reference recipe (spec 2), resumable, CPU to multi-GPU. Analysis never imports this."""
