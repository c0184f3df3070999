"""The judge's use cases: policy and attestor resources, evidence gathering, judging,
admission, the decision log, vouching, and what happens after admission (inventory,
notifications)."""
