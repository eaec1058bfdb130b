"""Test scaffolding shared by tests/ and bench/, not shipped with the product: random-weight
model folders of the real architectures (models), generated photos, ordinary and hostile
(photos), and the coloured-shapes world with a CLIP trained on it (shapes)."""
