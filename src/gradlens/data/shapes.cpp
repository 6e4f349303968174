#include "gradlens/data/shapes.h"
#include <torch/types.h>
#include <ATen/Parallel.h>

#include <stb_image_write.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/data/rng.h"

namespace gradlens::data {

namespace fs = std::filesystem;

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kSuper = 4;  // supersampling per axis for antialiasing
constexpr double kNoiseSigma = 6.0;

enum ShapeKind { kCircle, kSquare, kTriangle, kStar, kCross, kRing, kHexagon, kEllipse };

struct Vec2 {
  double x, y;
};

std::vector<Vec2> regular_polygon(int n, double r_outer, double r_inner) {
  // r_inner > 0 alternates outer and inner vertices (a star with n points).
  std::vector<Vec2> v;
  const int count = r_inner > 0 ? 2 * n : n;
  for (int k = 0; k < count; ++k) {
    const double a = -kPi / 2 + 2 * kPi * k / count;
    const double r = (r_inner > 0 && k % 2 == 1) ? r_inner : r_outer;
    v.push_back({r * std::cos(a), r * std::sin(a)});
  }
  return v;
}

bool in_polygon(const std::vector<Vec2>& poly, double u, double v) {
  bool inside = false;
  for (size_t i = 0, j = poly.size() - 1; i < poly.size(); j = i++) {
    const Vec2& a = poly[i];
    const Vec2& b = poly[j];
    if ((a.y > v) != (b.y > v) && u < (b.x - a.x) * (v - a.y) / (b.y - a.y) + a.x) inside = !inside;
  }
  return inside;
}

/// Membership of the local point (u, v) (object frame, circumradius 1).
struct ShapeTest {
  ShapeKind kind;
  std::vector<Vec2> poly;
  explicit ShapeTest(ShapeKind k) : kind(k) {
    if (k == kTriangle) poly = regular_polygon(3, 1.0, 0.0);
    if (k == kHexagon) poly = regular_polygon(6, 1.0, 0.0);
    if (k == kStar) poly = regular_polygon(5, 1.0, 0.45);
  }
  bool inside(double u, double v) const {
    switch (kind) {
      case kCircle: return u * u + v * v <= 1.0;
      case kSquare: return std::abs(u) <= 0.70 && std::abs(v) <= 0.70;
      case kCross:
        return (std::abs(u) <= 0.95 && std::abs(v) <= 0.30) ||
               (std::abs(u) <= 0.30 && std::abs(v) <= 0.95);
      case kRing: {
        const double r2 = u * u + v * v;
        return r2 <= 1.0 && r2 >= 0.55 * 0.55;
      }
      case kEllipse: return u * u + (v / 0.55) * (v / 0.55) <= 1.0;
      default: return in_polygon(poly, u, v);
    }
  }
};

std::array<double, 3> hsv_to_rgb(double h, double s, double v) {
  const double c = v * s;
  const double hp = std::fmod(h * 6.0, 6.0);
  const double x = c * (1 - std::abs(std::fmod(hp, 2.0) - 1));
  double r = 0, g = 0, b = 0;
  if (hp < 1) r = c, g = x;
  else if (hp < 2) r = x, g = c;
  else if (hp < 3) g = c, b = x;
  else if (hp < 4) g = x, b = c;
  else if (hp < 5) r = x, b = c;
  else r = c, b = x;
  const double m = v - c;
  return {255 * (r + m), 255 * (g + m), 255 * (b + m)};
}

double luma(const std::array<double, 3>& c) { return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]; }

uint8_t to_u8(double v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0))); }

std::string id_name(int64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%05lld", static_cast<long long>(id));
  return buf;
}

void write_png(const fs::path& path, const torch::Tensor& hwc) {
  const int w = static_cast<int>(hwc.size(1));
  const int h = static_cast<int>(hwc.size(0));
  const int c = static_cast<int>(hwc.size(2));
  const int ok = stbi_write_png(path.c_str(), w, h, c, hwc.data_ptr<uint8_t>(), w * c);
  GRADLENS_CHECK(ok != 0, "cannot write ", path.string(),
                 " (disk full or directory not writable); choose another --out");
}

void check_options(const ShapesOptions& o) {
  GRADLENS_CHECK(o.classes >= 1 && o.classes <= 8, "--classes must be in [1, 8], got ", o.classes);
  GRADLENS_CHECK(o.per_class >= 1 && o.per_class <= 1000000, "--per-class must be in [1, 1000000], got ",
                 o.per_class);
  GRADLENS_CHECK(o.size >= 16 && o.size <= 1024, "--size must be in [16, 1024] pixels, got ", o.size);
  GRADLENS_CHECK(!o.out.empty(), "--out is required: the directory to write the data set to");
}

}  // namespace

const std::vector<std::string>& shape_class_names() {
  static const std::vector<std::string> kNames = {"circle", "square", "triangle", "star",
                                                  "cross",  "ring",   "hexagon",  "ellipse"};
  return kNames;
}

ShapeImage render_shape(int label, int64_t size, uint64_t seed, int64_t index) {
  GRADLENS_CHECK(label >= 0 && label < 8, "render_shape: label must be in [0, 8), got ", label);
  GRADLENS_CHECK(size >= 16 && size <= 1024, "--size must be in [16, 1024] pixels, got ", size);
  std::mt19937_64 gen(mix_seed(seed ^ mix_seed((static_cast<uint64_t>(label) << 40) ^
                                               static_cast<uint64_t>(index))));
  const double s = static_cast<double>(size);
  const int64_t n = size * size;
  std::vector<double> img(static_cast<size_t>(n * 3));

  // Background tone with a slight tint.
  const double level = uniform_real(gen, 40, 215);
  std::array<double, 3> bg{};
  for (auto& ch : bg) ch = std::clamp(level + uniform_real(gen, -25, 25), 0.0, 255.0);
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) img[static_cast<size_t>(3 * i + c)] = bg[static_cast<size_t>(c)];
  auto blend = [&](int64_t i, const std::array<double, 3>& col, double a) {
    for (int c = 0; c < 3; ++c) {
      double& p = img[static_cast<size_t>(3 * i + c)];
      p = p * (1 - a) + col[static_cast<size_t>(c)] * a;
    }
  };
  auto random_color = [&] {
    return std::array<double, 3>{uniform_real(gen, 0, 255), uniform_real(gen, 0, 255),
                                 uniform_real(gen, 0, 255)};
  };
  // Faint lines.
  const int lines = 2 + static_cast<int>(uniform_below(gen, 3));
  for (int l = 0; l < lines; ++l) {
    const Vec2 a{uniform_real(gen, 0, s), uniform_real(gen, 0, s)};
    const Vec2 b{uniform_real(gen, 0, s), uniform_real(gen, 0, s)};
    const double half_width = uniform_real(gen, 0.5, 1.2) * s / 64.0;
    const double alpha = uniform_real(gen, 0.15, 0.35);
    const auto col = random_color();
    const double dx = b.x - a.x, dy = b.y - a.y;
    const double len2 = std::max(dx * dx + dy * dy, 1e-9);
    for (int64_t y = 0; y < size; ++y) {
      for (int64_t x = 0; x < size; ++x) {
        const double px = x + 0.5, py = y + 0.5;
        const double t = std::clamp(((px - a.x) * dx + (py - a.y) * dy) / len2, 0.0, 1.0);
        const double ex = px - (a.x + t * dx), ey = py - (a.y + t * dy);
        const double d = std::sqrt(ex * ex + ey * ey);
        const double cover = std::clamp(half_width + 0.5 - d, 0.0, 1.0);
        if (cover > 0) blend(y * size + x, col, alpha * cover);
      }
    }
  }
  // Faint blobs.
  const int blobs = 1 + static_cast<int>(uniform_below(gen, 3));
  for (int k = 0; k < blobs; ++k) {
    const Vec2 c{uniform_real(gen, 0, s), uniform_real(gen, 0, s)};
    const double sigma = uniform_real(gen, 0.05, 0.15) * s;
    const double alpha = uniform_real(gen, 0.2, 0.35);
    const auto col = random_color();
    for (int64_t y = 0; y < size; ++y) {
      for (int64_t x = 0; x < size; ++x) {
        const double ex = x + 0.5 - c.x, ey = y + 0.5 - c.y;
        const double a = alpha * std::exp(-(ex * ex + ey * ey) / (2 * sigma * sigma));
        if (a > 1e-3) blend(y * size + x, col, a);
      }
    }
  }

  // The object.
  ShapeImage out;
  ShapeSample& info = out.info;
  info.label = label;
  info.radius = uniform_real(gen, 0.22, 0.38) * s;
  const double r = info.radius;
  info.cx = uniform_real(gen, r + 1, s - r - 1);
  info.cy = uniform_real(gen, r + 1, s - r - 1);
  info.angle = uniform_real(gen, 0, 2 * kPi);
  std::array<double, 3> col{};
  for (int attempt = 0;; ++attempt) {
    col = hsv_to_rgb(uniform_01(gen), uniform_real(gen, 0.6, 1.0), uniform_real(gen, 0.6, 1.0));
    if (std::abs(luma(col) - luma(bg)) >= 50.0) break;
    if (attempt == 20) {  // a dark object on a light background, or vice versa
      const double v = luma(bg) > 128 ? 0.25 : 1.0;
      for (auto& ch : col) ch *= v;
      break;
    }
  }
  for (int c = 0; c < 3; ++c) info.color[static_cast<size_t>(c)] = to_u8(col[static_cast<size_t>(c)]);
  const ShapeTest shape(static_cast<ShapeKind>(label));
  const double ca = std::cos(info.angle), sa = std::sin(info.angle);
  auto inside = [&](double px, double py) {
    const double ex = (px - info.cx) / r, ey = (py - info.cy) / r;
    // Rotate by -angle into the object frame.
    return shape.inside(ca * ex + sa * ey, -sa * ex + ca * ey);
  };
  out.mask = torch::zeros({size, size, 1}, torch::kUInt8);
  uint8_t* mask = out.mask.data_ptr<uint8_t>();
  const int64_t y0 = std::max<int64_t>(0, static_cast<int64_t>(info.cy - r) - 1);
  const int64_t y1 = std::min<int64_t>(size, static_cast<int64_t>(info.cy + r) + 2);
  const int64_t x0 = std::max<int64_t>(0, static_cast<int64_t>(info.cx - r) - 1);
  const int64_t x1 = std::min<int64_t>(size, static_cast<int64_t>(info.cx + r) + 2);
  for (int64_t y = y0; y < y1; ++y) {
    for (int64_t x = x0; x < x1; ++x) {
      int hits = 0;
      for (int sy = 0; sy < kSuper; ++sy)
        for (int sx = 0; sx < kSuper; ++sx)
          hits += inside(x + (sx + 0.5) / kSuper, y + (sy + 0.5) / kSuper) ? 1 : 0;
      if (hits > 0) blend(y * size + x, col, static_cast<double>(hits) / (kSuper * kSuper));
      if (inside(x + 0.5, y + 0.5)) {
        mask[y * size + x] = 255;
        ++info.mask_area;
      }
    }
  }

  // Sensor noise over everything.
  out.image = torch::empty({size, size, 3}, torch::kUInt8);
  uint8_t* dst = out.image.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n * 3; ++i)
    dst[i] = to_u8(img[static_cast<size_t>(i)] + kNoiseSigma * normal_01(gen));
  return out;
}

ShapesSummary make_shapes(const ShapesOptions& opts, const core::ProgressFn& progress) {
  check_options(opts);
  const auto start = std::chrono::steady_clock::now();
  fs::path out = fs::absolute(fs::path(opts.out)).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();  // drop a trailing '/'
  GRADLENS_CHECK(out.has_filename() && out != out.root_path(), "--out ", opts.out,
                 ": not usable as an output directory; name a new directory");
  const fs::path parent = out.parent_path();
  std::error_code ec;
  if (fs::exists(out, ec)) {
    GRADLENS_CHECK(fs::is_directory(out, ec), "--out ", out.string(),
                   " exists and is not a directory; choose another --out");
    GRADLENS_CHECK(opts.overwrite || fs::is_empty(out, ec), "--out ", out.string(),
                   " already exists and is not empty; remove it, choose another directory, or "
                   "pass --overwrite");
  }
  core::ensure_writable_dir(parent, "--out (parent directory)");

  core::remove_stale_temporaries(parent);
  const fs::path tmp = core::temporary_sibling(parent / out.filename(), "partial");
  fs::create_directory(tmp, ec);
  GRADLENS_CHECK(!ec, "--out ", out.string(), ": cannot create the temporary directory ",
                 tmp.string(), " (", ec.message(), "); choose a writable location");

  ShapesSummary sum;
  const auto& all_names = shape_class_names();
  sum.class_names.assign(all_names.begin(), all_names.begin() + opts.classes);
  sum.per_class = opts.per_class;
  sum.size = opts.size;
  sum.seed = opts.seed;
  sum.images = opts.classes * opts.per_class;
  sum.samples.resize(static_cast<size_t>(sum.images));
  try {
    for (const auto& name : sum.class_names) {
      fs::create_directory(tmp / name, ec);
      GRADLENS_CHECK(!ec, "--out ", out.string(), ": cannot create ", (tmp / name).string(), " (",
                     ec.message(), ")");
    }
    // Files inside `tmp` are written directly: the rename of the whole
    // directory below is the atomic step.
    const int64_t chunk = 64;
    for (int64_t c0 = 0; c0 < sum.images; c0 += chunk) {
      const int64_t c1 = std::min(sum.images, c0 + chunk);
      at::parallel_for(c0, c1, 1, [&](int64_t b, int64_t e) {
        for (int64_t g = b; g < e; ++g) {
          const int label = static_cast<int>(g / opts.per_class);
          const int64_t id = g % opts.per_class;
          ShapeImage im = render_shape(label, opts.size, opts.seed, id);
          const std::string cls = sum.class_names[static_cast<size_t>(label)];
          im.info.path = cls + "/" + id_name(id) + ".png";
          im.info.mask_path = cls + "/" + id_name(id) + ".mask.png";
          write_png(tmp / im.info.path, im.image);
          write_png(tmp / im.info.mask_path, im.mask);
          sum.samples[static_cast<size_t>(g)] = im.info;
        }
      });
      core::ProgressEvent ev;
      ev.stage = "make-shapes";
      ev.done = c1;
      ev.total = sum.images;
      ev.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      ev.stage_end = c1 == sum.images;
      core::report(progress, ev);
    }
    nlohmann::json meta;
    meta["generator"] = "gradlens make-shapes";
    meta["seed"] = opts.seed;
    meta["size"] = opts.size;
    meta["per_class"] = opts.per_class;
    meta["classes"] = sum.class_names;
    meta["samples"] = nlohmann::json::array();
    for (const auto& smp : sum.samples) {
      meta["samples"].push_back({{"path", smp.path},
                                 {"mask", smp.mask_path},
                                 {"class", sum.class_names[static_cast<size_t>(smp.label)]},
                                 {"cx", smp.cx},
                                 {"cy", smp.cy},
                                 {"radius", smp.radius},
                                 {"angle", smp.angle},
                                 {"color", smp.color},
                                 {"mask_area", smp.mask_area}});
    }
    core::write_text_atomically(tmp / "shapes.json", meta.dump(1) + "\n");

    // Swap the finished directory in.
    fs::path old;
    if (fs::exists(out, ec)) {
      old = core::temporary_sibling(parent / out.filename(), "partial");
      fs::rename(out, old, ec);
      GRADLENS_CHECK(!ec, "--out ", out.string(), ": cannot move the existing directory aside (",
                     ec.message(), ")");
    }
    fs::rename(tmp, out, ec);
    if (ec && !old.empty()) {
      std::error_code ec2;
      fs::rename(old, out, ec2);  // put the previous data set back
    }
    GRADLENS_CHECK(!ec, "--out ", out.string(), ": cannot rename ", tmp.string(), " to it (",
                   ec.message(), ")");
    if (!old.empty()) fs::remove_all(old, ec);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  sum.out = out.string();
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return sum;
}

}  // namespace gradlens::data
