"""Data: the synthetic face world, real-format readers and writers, datasets and transforms."""
