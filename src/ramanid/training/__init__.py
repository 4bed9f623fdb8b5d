"""Training: the loop, losses, augmentation, and scikit-learn-compatible estimators."""
