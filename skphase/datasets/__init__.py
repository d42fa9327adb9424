"""Datasets: ``load_*`` read real data from local files, ``make_*`` generate synthetic tasks."""

from ._cifar10 import load_cifar10
from ._digits import load_digits_images
from ._fashion_mnist import CLASS_NAMES as FASHION_MNIST_CLASSES
from ._fashion_mnist import load_fashion_mnist
from ._home import get_data_home
from ._mnist import load_mnist
from ._scale_detection import make_scale_detection
from ._synthetic_images import make_noisy_frame_task, make_star_task, star_pattern

__all__ = [
    "FASHION_MNIST_CLASSES", "get_data_home", "load_cifar10", "load_digits_images", "load_fashion_mnist", "load_mnist",
    "make_noisy_frame_task", "make_scale_detection", "make_star_task", "star_pattern",
]
