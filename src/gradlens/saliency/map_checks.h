// Input checks shared by the saliency metrics (internal to the area).
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace gradlens::saliency::detail {

/// Checks that `map` (argument `name` of function `fn`) is defined, real,
/// [N, H, W] or [H, W] with H * W >= 1, and returns it as [N, H, W] (a view).
/// Throws c10::Error otherwise.
torch::Tensor as_batch(const torch::Tensor& map, const char* fn, const char* name);

/// Throws c10::Error naming both shapes when `a` and `b` differ in shape, and
/// naming both devices when they live on different devices.
void check_same_shape(const torch::Tensor& a, const char* a_name, const torch::Tensor& b,
                      const char* b_name, const char* fn);

/// `batch` ([n, H, W] float64, images first_image.. of the caller's input)
/// must be finite; throws c10::Error naming the first bad image otherwise.
void check_finite(const torch::Tensor& batch, int64_t first_image, const char* fn,
                  const char* name);

/// `batch` ([n, H, W] float64) must be >= 0; throws c10::Error naming the
/// first negative image and its minimum otherwise.
void check_non_negative(const torch::Tensor& batch, int64_t first_image, const char* fn,
                        const char* name);

/// Number of images processed at once by the vectorised metrics (bounds the
/// float64 working memory to a few chunk-sized copies).
inline constexpr int64_t kChunkImages = 64;

}  // namespace gradlens::saliency::detail
