"""Image preprocessing for the vision models: what happens between an image file and a
model's ``pixel_values`` (N, C, H, W) float32.

- resampling: Pillow-exact resizing (``resize``, ``resize_shortest_edge``; bilinear, bicubic,
  nearest, box, hamming, lanczos);
- transforms: ``center_crop``, ``rescale_and_normalize``, ``to_batch``;
- processor: ``ImageProcessor`` (a frozen dataclass) read from a checkpoint's
  ``preprocessor_config.json`` or timm ``pretrained_cfg``
  (``ImageProcessor.from_pretrained(model_dir)``);
- image_io: ``load_image(path)`` (needs Pillow: ``pip install 'fastattn[image]'``).

docs/vision.md says which behaviour is matched, to the pixel.
"""
from .image_io import as_image, load_image
from .processor import ImageProcessor
from .resampling import resize, resize_shortest_edge, shortest_edge_size
from .transforms import center_crop, rescale_and_normalize, to_batch

__all__ = ["ImageProcessor", "load_image", "as_image", "resize", "resize_shortest_edge",
           "shortest_edge_size", "center_crop", "rescale_and_normalize", "to_batch"]
