#include "gradlens/data/image_ops.h"
#include <torch/types.h>

#include <ATen/Parallel.h>

#include <cmath>

#include "gradlens/core/check.h"

namespace gradlens::data {

namespace {

// Pillow's fixed-point precision for 8-bit resampling: 32 bits minus 8 for the
// value minus 2 for filter overshoot.
constexpr int kPrecisionBits = 32 - 8 - 2;

void check_hwc(const torch::Tensor& t, const char* fn) {
  GRADLENS_CHECK(t.defined() && t.scalar_type() == torch::kUInt8 && t.dim() == 3 &&
                     t.device().is_cpu(),
                 fn, ": expected a CPU uint8 [H, W, C] image, got ",
                 t.defined() ? t.sizes() : c10::IntArrayRef{});
}

/// Filter taps of one resampling pass: for output i, inputs
/// [bounds[2i], bounds[2i] + bounds[2i+1]) with fixed-point weights
/// coeffs[i * ksize + k].
struct Taps {
  int64_t ksize = 0;
  std::vector<int64_t> bounds;
  std::vector<int32_t> coeffs;
};

Taps bilinear_taps(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // triangle filter support 1
  Taps t;
  t.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.bounds.resize(static_cast<size_t>(out_size * 2));
  t.coeffs.assign(static_cast<size_t>(out_size * t.ksize), 0);
  std::vector<double> w(static_cast<size_t>(t.ksize));
  for (int64_t i = 0; i < out_size; ++i) {
    const double center = (static_cast<double>(i) + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int64_t lo = static_cast<int64_t>(center - support + 0.5);  // truncation, as Pillow
    if (lo < 0) lo = 0;
    int64_t hi = static_cast<int64_t>(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    const int64_t n = hi - lo;
    double sum = 0.0;
    for (int64_t k = 0; k < n; ++k) {
      double x = (static_cast<double>(k + lo) - center + 0.5) * ss;
      x = std::abs(x);
      const double v = x < 1.0 ? 1.0 - x : 0.0;
      w[static_cast<size_t>(k)] = v;
      sum += v;
    }
    for (int64_t k = 0; k < n; ++k) {
      const double v = sum != 0.0 ? w[static_cast<size_t>(k)] / sum : w[static_cast<size_t>(k)];
      const double fixed = v * static_cast<double>(1 << kPrecisionBits);
      t.coeffs[static_cast<size_t>(i * t.ksize + k)] =
          static_cast<int32_t>(v < 0 ? -0.5 + fixed : 0.5 + fixed);
    }
    t.bounds[static_cast<size_t>(2 * i)] = lo;
    t.bounds[static_cast<size_t>(2 * i + 1)] = n;
  }
  return t;
}

inline uint8_t clip8(int64_t acc) {
  const int64_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Pillow's COORD(): -1 for negative values, truncation otherwise.
inline int64_t coord(double v) { return v < 0.0 ? -1 : static_cast<int64_t>(v); }

std::vector<int64_t> nearest_table(int64_t in_size, int64_t out_size) {
  const double a = static_cast<double>(in_size) / static_cast<double>(out_size);
  std::vector<int64_t> tab(static_cast<size_t>(out_size));
  double pos = a * 0.5;
  for (int64_t i = 0; i < out_size; ++i) {
    int64_t s = coord(pos);
    tab[static_cast<size_t>(i)] = std::min(std::max<int64_t>(s, 0), in_size - 1);
    pos += a;
  }
  return tab;
}

// Python's round() for a multiple of 0.5: half to even.
int64_t round_half_even_div2(int64_t d) {
  if (d % 2 == 0) return d / 2;
  const int64_t k = d / 2;  // d/2 = k + 0.5
  return (k % 2 == 0) ? k : k + 1;
}

}  // namespace

std::pair<int64_t, int64_t> shorter_side_size(int64_t height, int64_t width, int64_t size) {
  GRADLENS_CHECK(height > 0 && width > 0, "cannot resize an empty ", height, "x", width, " image");
  GRADLENS_CHECK(size > 0, "resize size must be positive, got ", size);
  const bool w_short = width <= height;
  const int64_t shorter = w_short ? width : height;
  const int64_t longer = w_short ? height : width;
  const auto new_long = static_cast<int64_t>(static_cast<double>(size * longer) /
                                             static_cast<double>(shorter));
  return w_short ? std::make_pair(new_long, size) : std::make_pair(size, new_long);
}

torch::Tensor resize_bilinear(const torch::Tensor& hwc_in, int64_t out_h, int64_t out_w) {
  check_hwc(hwc_in, "resize_bilinear");
  GRADLENS_CHECK(out_h > 0 && out_w > 0, "resize_bilinear: output size must be positive, got ",
                 out_h, "x", out_w);
  const auto hwc = hwc_in.contiguous();
  const int64_t h = hwc.size(0), w = hwc.size(1), c = hwc.size(2);
  if (h == out_h && w == out_w) return hwc.clone();
  const bool need_h = out_w != w;
  const bool need_v = out_h != h;
  torch::Tensor cur = hwc;
  if (need_h) {
    const Taps t = bilinear_taps(w, out_w);
    auto tmp = torch::empty({h, out_w, c}, torch::kUInt8);
    const uint8_t* src = cur.data_ptr<uint8_t>();
    uint8_t* dst = tmp.data_ptr<uint8_t>();
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < out_w; ++x) {
        const int64_t lo = t.bounds[static_cast<size_t>(2 * x)];
        const int64_t n = t.bounds[static_cast<size_t>(2 * x + 1)];
        const int32_t* k = &t.coeffs[static_cast<size_t>(x * t.ksize)];
        for (int64_t ch = 0; ch < c; ++ch) {
          int64_t acc = int64_t{1} << (kPrecisionBits - 1);
          for (int64_t j = 0; j < n; ++j) acc += int64_t{src[(y * w + lo + j) * c + ch]} * k[j];
          dst[(y * out_w + x) * c + ch] = clip8(acc);
        }
      }
    }
    cur = tmp;
  }
  if (need_v) {
    const int64_t cw = cur.size(1);
    const Taps t = bilinear_taps(h, out_h);
    auto out = torch::empty({out_h, cw, c}, torch::kUInt8);
    const uint8_t* src = cur.data_ptr<uint8_t>();
    uint8_t* dst = out.data_ptr<uint8_t>();
    for (int64_t y = 0; y < out_h; ++y) {
      const int64_t lo = t.bounds[static_cast<size_t>(2 * y)];
      const int64_t n = t.bounds[static_cast<size_t>(2 * y + 1)];
      const int32_t* k = &t.coeffs[static_cast<size_t>(y * t.ksize)];
      for (int64_t x = 0; x < cw * c; ++x) {
        int64_t acc = int64_t{1} << (kPrecisionBits - 1);
        for (int64_t j = 0; j < n; ++j) acc += int64_t{src[(lo + j) * cw * c + x]} * k[j];
        dst[y * cw * c + x] = clip8(acc);
      }
    }
    cur = out;
  }
  return cur;
}

torch::Tensor resize_nearest(const torch::Tensor& hwc_in, int64_t out_h, int64_t out_w) {
  check_hwc(hwc_in, "resize_nearest");
  GRADLENS_CHECK(out_h > 0 && out_w > 0, "resize_nearest: output size must be positive, got ",
                 out_h, "x", out_w);
  const auto hwc = hwc_in.contiguous();
  const int64_t h = hwc.size(0), w = hwc.size(1), c = hwc.size(2);
  if (h == out_h && w == out_w) return hwc.clone();
  const auto ty = nearest_table(h, out_h);
  const auto tx = nearest_table(w, out_w);
  auto out = torch::empty({out_h, out_w, c}, torch::kUInt8);
  const uint8_t* src = hwc.data_ptr<uint8_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  for (int64_t y = 0; y < out_h; ++y)
    for (int64_t x = 0; x < out_w; ++x)
      for (int64_t ch = 0; ch < c; ++ch)
        dst[(y * out_w + x) * c + ch] = src[(ty[static_cast<size_t>(y)] * w + tx[static_cast<size_t>(x)]) * c + ch];
  return out;
}

torch::Tensor center_crop(const torch::Tensor& hwc, int64_t crop_h, int64_t crop_w) {
  check_hwc(hwc, "center_crop");
  const int64_t h = hwc.size(0), w = hwc.size(1);
  GRADLENS_CHECK(crop_h > 0 && crop_w > 0 && crop_h <= h && crop_w <= w, "center_crop: cannot crop ",
                 crop_h, "x", crop_w, " out of a ", h, "x", w, " image");
  const int64_t top = round_half_even_div2(h - crop_h);
  const int64_t left = round_half_even_div2(w - crop_w);
  return hwc.narrow(0, top, crop_h).narrow(1, left, crop_w).contiguous();
}

torch::Tensor resize_center_crop(const torch::Tensor& hwc, int64_t crop, bool nearest, int64_t resize) {
  check_hwc(hwc, "resize_center_crop");
  const auto [nh, nw] = shorter_side_size(hwc.size(0), hwc.size(1), resize > 0 ? resize : crop);
  const auto resized = nearest ? resize_nearest(hwc, nh, nw) : resize_bilinear(hwc, nh, nw);
  return center_crop(resized, crop, crop);
}

torch::Tensor resize_center_crop_batch(const torch::Tensor& nchw, int64_t crop, int64_t resize) {
  GRADLENS_CHECK(nchw.defined() && nchw.scalar_type() == torch::kUInt8 && nchw.dim() == 4,
                 "resize_center_crop_batch: expected uint8 [N, C, H, W], got ",
                 nchw.defined() ? nchw.sizes() : c10::IntArrayRef{});
  const int64_t n = nchw.size(0);
  auto out = torch::empty({n, nchw.size(1), crop, crop}, torch::kUInt8);
  const auto in = nchw.contiguous();
  at::parallel_for(0, n, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      out[i].copy_(resize_center_crop(in[i].permute({1, 2, 0}).contiguous(), crop, false, resize).permute({2, 0, 1}));
  });
  return out;
}

torch::Tensor rgb_to_gray(const torch::Tensor& hwc_in) {
  check_hwc(hwc_in, "rgb_to_gray");
  if (hwc_in.size(2) == 1) return hwc_in;
  GRADLENS_CHECK(hwc_in.size(2) == 3, "rgb_to_gray: expected 1 or 3 channels, got ", hwc_in.size(2));
  const auto hwc = hwc_in.contiguous();
  const int64_t n = hwc.size(0) * hwc.size(1);
  auto out = torch::empty({hwc.size(0), hwc.size(1), 1}, torch::kUInt8);
  const uint8_t* s = hwc.data_ptr<uint8_t>();
  uint8_t* d = out.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t v = uint32_t{s[3 * i]} * 19595u + uint32_t{s[3 * i + 1]} * 38470u +
                       uint32_t{s[3 * i + 2]} * 7471u + 0x8000u;
    d[i] = static_cast<uint8_t>(v >> 16);
  }
  return out;
}

}  // namespace gradlens::data
