// Pixel operations on single decoded images, bit-compatible with what
// torchvision does to PIL images (Resize, CenterCrop, Grayscale), so that
// gradlens and a torchvision pipeline see the same pixels.
//
// Images here are CPU uint8 [H, W, C] tensors (the layout decoders produce).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <utility>

namespace gradlens::data {

/// Output (height, width) of torchvision's Resize(size) for an int `size`:
/// the shorter side becomes `size`, the longer int(size * long / short).
/// Throws c10::Error when a dimension is not positive.
std::pair<int64_t, int64_t> shorter_side_size(int64_t height, int64_t width, int64_t size);

/// Bilinear resize of uint8 [H, W, C] to [out_h, out_w, C], reproducing
/// Pillow's Image.resize(..., BILINEAR): a triangle filter whose support
/// widens by the scale factor when shrinking (antialiasing), 22-bit fixed-point
/// coefficients, a horizontal pass rounded to uint8 and then a vertical pass.
/// Returns a copy when the size is unchanged.
torch::Tensor resize_bilinear(const torch::Tensor& hwc, int64_t out_h, int64_t out_w);

/// Nearest-neighbour resize of uint8 [H, W, C], reproducing Pillow's
/// Image.resize(..., NEAREST): source index floor((i + 0.5) * in / out),
/// accumulated as Pillow does. Used for masks, whose values must not blend.
torch::Tensor resize_nearest(const torch::Tensor& hwc, int64_t out_h, int64_t out_w);

/// torchvision's CenterCrop on [H, W, C]: top = round((H - crop_h) / 2),
/// left = round((W - crop_w) / 2) with Python's round-half-to-even. Throws
/// c10::Error if the crop is larger than the image.
torch::Tensor center_crop(const torch::Tensor& hwc, int64_t crop_h, int64_t crop_w);

/// Resize(resize) followed by CenterCrop(crop): [H, W, C] -> [crop, crop, C],
/// bilinear (`nearest` = false) or nearest-neighbour; `resize` 0 means
/// `crop` (torchvision's Resize(S) + CenterCrop(S)). Throws c10::Error when
/// the crop is larger than the resized image.
torch::Tensor resize_center_crop(const torch::Tensor& hwc, int64_t crop, bool nearest = false,
                                 int64_t resize = 0);

/// resize_center_crop() of every image of a uint8 batch [N, C, H, W]
/// (bilinear), in parallel on LibTorch's intra-op threads.
torch::Tensor resize_center_crop_batch(const torch::Tensor& nchw, int64_t crop, int64_t resize = 0);

/// RGB [H, W, 3] to luminance [H, W, 1] as Pillow's convert("L"):
/// L = (19595 R + 38470 G + 7471 B + 32768) >> 16, i.e. R*299/1000 +
/// G*587/1000 + B*114/1000 rounded. A [H, W, 1] input is returned unchanged.
torch::Tensor rgb_to_gray(const torch::Tensor& hwc);

}  // namespace gradlens::data
