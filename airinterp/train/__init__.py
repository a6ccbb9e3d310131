"""Training: the reference recipe (spec 2), resumable, CPU to multi-GPU. Analysis never imports this;
this imports analysis only for its one outcome function (:mod:`airinterp.analysis.outcome`)."""
