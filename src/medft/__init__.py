"""medft: a benchmark of fine-tuning strategies for medical image classification."""

__version__ = "0.4.0"
